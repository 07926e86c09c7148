-- Per game and currency over the whole archive: bets, wins, GGR, how many players played it and how many rounds.
SELECT
    game_id,
    currency,
    SUM(minus) AS bets,
    SUM(plus) AS wins,
    SUM(minus) - SUM(plus) AS ggr,
    COUNT(DISTINCT player_id) AS players,
    COUNT(DISTINCT game_uuid) AS rounds
FROM (
    SELECT COALESCE(NULLIF(game_id, ''), '?') AS game_id, currency, minus, plus, player_id, game_uuid
    FROM {{ entries }} AS e
    WHERE source = 'game' AND kind IN ('bet', 'win', 'bet_and_win', 'zero_win')
) AS game_entries
GROUP BY game_id, currency
ORDER BY game_id, currency
