-- What the audit covered, for its summary: players (latest account rows), entries (deduplicated: one per entry_id)
-- and the sum of the players' latest balances. The entries are counted as the distinct ids of the distinct copies:
-- the number of rows the deduplicated entries have, without the ranking that picks one copy (a third of the time).
WITH latest_accounts AS (
    SELECT player_id, balance
    FROM (
        SELECT
            a.*,
            ROW_NUMBER() OVER (PARTITION BY player_id ORDER BY version DESC) AS from_latest
        FROM {{ accounts }} AS a
    ) AS ranked
    WHERE from_latest = 1
)

SELECT
    (SELECT COUNT(*) FROM latest_accounts) AS players,
    (SELECT COUNT(DISTINCT COALESCE(entry_id, '')) FROM {{ entry_copies }} AS c) AS entries,
    (SELECT COALESCE(SUM(balance), CAST(0 AS DECIMAL(38, 8))) FROM latest_accounts) AS total_balance
