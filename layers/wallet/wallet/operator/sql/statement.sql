-- A player's statement: the player's entries with created_at in [since, until) (ISO strings; a bare date such as
-- 2026-12-01 works as a bound too, the times sort as text), in the order they happened to the account.
SELECT
    entry_id,
    source,
    trx_id,
    player_id,
    kind,
    currency,
    minus,
    plus,
    balance_before,
    balance_after,
    game_uuid,
    game_id,
    game_type,
    tag,
    created_at,
    account_version,
    chain_hash
FROM {{ entries_where("CAST(player_id AS VARCHAR) = " ~ param("player_id")) }} AS e
WHERE
    created_at >= {{ param("since") }}
    AND created_at < {{ param("until") }}
ORDER BY account_version, entry_id
