-- GGR per day, game and currency: bets - wins over the game entries (a cancel's refund is a win, a returned bet).
-- Operator entries (deposits, withdrawals, opening balances, status and limits changes) are not gaming revenue.
SELECT
    day,
    game_id,
    currency,
    SUM(minus) AS bets,
    SUM(plus) AS wins,
    SUM(minus) - SUM(plus) AS ggr
FROM (
    SELECT day, COALESCE(NULLIF(game_id, ''), '?') AS game_id, currency, minus, plus
    FROM {{ entries }} AS e
    WHERE source = 'game' AND kind IN ('bet', 'win', 'bet_and_win', 'zero_win')
) AS game_entries
GROUP BY day, game_id, currency
ORDER BY day, game_id, currency
