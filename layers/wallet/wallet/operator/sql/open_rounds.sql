-- Rounds left open: a player's part of a round whose last entry (by created_at) is a bet with no plus, made at or
-- before the cutoff (an ISO time in the archive's format, e.g. now - 60 minutes). Nothing came after it: no win,
-- cancel or zero win, so the provider never settled it. `bet` is everything the player bet in that round, in
-- `currency` (the player's).
WITH rounds AS (
    SELECT
        game_uuid,
        player_id,
        game_id,
        currency,
        minus,
        plus,
        created_at,
        SUM(minus) OVER (PARTITION BY player_id, game_uuid) AS bet,
        ROW_NUMBER() OVER (
            PARTITION BY player_id, game_uuid ORDER BY created_at DESC, account_version DESC
        ) AS from_last
    FROM {{ entries }} AS e
    WHERE source = 'game' AND game_uuid IS NOT NULL AND game_uuid <> ''
)
SELECT
    game_uuid,
    player_id,
    COALESCE(game_id, '') AS game_id,
    currency,
    bet,
    created_at AS last_bet_at
FROM rounds
WHERE from_last = 1 AND minus > 0 AND plus = 0 AND created_at <= {{ param("cutoff") }}
ORDER BY last_bet_at, game_uuid, player_id
