-- What the audit covered, for its summary: players (latest account rows), entries (deduplicated) and the sum of the
-- players' latest balances.
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
    (SELECT COUNT(*) FROM {{ entries }} AS e) AS entries,
    (SELECT COALESCE(SUM(balance), CAST(0 AS DECIMAL(38, 8))) FROM latest_accounts) AS total_balance
