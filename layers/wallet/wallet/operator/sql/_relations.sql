{#-
  The relations every report and the audit read through (ledger_sql.py renders these macros and hands the results to
  the templates as {{ entries }}, {{ accounts }} and {{ entry_copies }}). `raw` is the engine's own table: a Glue table
  on Athena, read_parquet(...) on DuckDB.

  The archive can hold a row more than once (a stream batch retried with other boundaries), so nothing reads `raw`
  directly. Every column is cast to the design's type, so a file written with a narrower type (INT32 versions,
  DECIMAL(20, 8) amounts) or an empty table reads the same.
-#}

{% macro typed_entries(raw, where=none) -%}
SELECT
    CAST(entry_id AS VARCHAR) AS entry_id,
    CAST(source AS VARCHAR) AS source,
    CAST(trx_id AS VARCHAR) AS trx_id,
    CAST(player_id AS VARCHAR) AS player_id,
    CAST(kind AS VARCHAR) AS kind,
    CAST(currency AS VARCHAR) AS currency,
    CAST(minus AS DECIMAL(38, 8)) AS minus,
    CAST(plus AS DECIMAL(38, 8)) AS plus,
    CAST(balance_before AS DECIMAL(38, 8)) AS balance_before,
    CAST(balance_after AS DECIMAL(38, 8)) AS balance_after,
    CAST(game_uuid AS VARCHAR) AS game_uuid,
    CAST(game_id AS VARCHAR) AS game_id,
    CAST(game_type AS VARCHAR) AS game_type,
    CAST(tag AS VARCHAR) AS tag,
    CAST(created_at AS VARCHAR) AS created_at,
    CAST(account_version AS BIGINT) AS account_version,
    CAST(chain_hash AS VARCHAR) AS chain_hash
FROM {{ raw }}{% if where %}
WHERE {{ where }}{% endif %}
{%- endmacro %}

{#- One row per entry_id. Identical copies collapse; if the copies differ (the audit's entry_rewritten) one of them is
    kept, the same one on every run. `where` (a condition on the raw columns) keeps only some rows before the
    deduplication: an engine cannot push a filter below the ranking by entry_id itself, so a player's statement would
    otherwise rank the whole archive. -#}
{% macro entries(raw, where=none) -%}
(
    SELECT
        entry_id, source, trx_id, player_id, kind, currency, minus, plus, balance_before, balance_after,
        game_uuid, game_id, game_type, tag, created_at, account_version, chain_hash,
        SUBSTR(created_at, 1, 10) AS day
    FROM (
        SELECT
            typed.*,
            ROW_NUMBER() OVER (
                PARTITION BY entry_id
                ORDER BY created_at, chain_hash, account_version, balance_after, minus, plus, tag
            ) AS copy_rank
        FROM ({{ typed_entries(raw, where) }}) AS typed
    ) AS ranked
    WHERE copy_rank = 1
)
{%- endmacro %}

{#- Every distinct content an entry_id was archived with: more than one row for an entry_id is a rewritten entry. -#}
{% macro entry_copies(raw) -%}
(
    SELECT DISTINCT
        entry_id, source, trx_id, player_id, kind, currency, minus, plus, balance_before, balance_after,
        game_uuid, game_id, game_type, tag, created_at, account_version, chain_hash
    FROM ({{ typed_entries(raw) }}) AS typed
)
{%- endmacro %}

{#- One row per (player_id, version): an account item changes without a new version too (a session issued or
    revoked), so the latest change of each version is kept. The latest account is the row with the highest version. -#}
{% macro accounts(raw) -%}
(
    SELECT player_id, version, balance, currency, status, chain_head, changed_at
    FROM (
        SELECT
            typed.*,
            ROW_NUMBER() OVER (
                PARTITION BY player_id, version
                ORDER BY changed_at DESC, chain_head DESC, balance DESC, status DESC
            ) AS copy_rank
        FROM (
            SELECT
                CAST(player_id AS VARCHAR) AS player_id,
                CAST(version AS BIGINT) AS version,
                CAST(balance AS DECIMAL(38, 8)) AS balance,
                CAST(currency AS VARCHAR) AS currency,
                CAST(status AS VARCHAR) AS status,
                COALESCE(CAST(chain_head AS VARCHAR), '') AS chain_head,
                CAST(changed_at AS VARCHAR) AS changed_at
            FROM {{ raw }}
        ) AS typed
    ) AS ranked
    WHERE copy_rank = 1
)
{%- endmacro %}
