"""The operator's reading side: the reports and the audit as SQL over the ledger archive, on DuckDB or Athena.

The SQL lives in wallet/operator/sql/, one Jinja2 template per query, in the Trino (Athena) dialect that DuckDB also
runs. A template sees these hooks and nothing else that differs between the engines:
  {{ entries }}, {{ accounts }}, {{ entry_copies }}  the deduplicated relations (sql/_relations.sql) over the
      engine's raw tables: one row per entry_id, one per (player_id, version), every distinct copy of an entry
  {{ entries_where("condition") }}  {{ entries }} of the raw rows matching the condition (filtered before the
      deduplication, so a player's statement reads only that player's rows)
  {{ sha256_hex("expr") }}  lowercase hex SHA-256 of a VARCHAR expression, in the engine's own functions
  {{ param("name") }}       a bound `?` parameter; run(name, **params) passes the values in order, never in the text
Templates: ggr_daily, game_totals, open_rounds (cutoff), statement (player_id, since, until), audit, audit_totals.

Engines (`run(name, **params) -> list[dict]`; amounts are Decimal, versions and counts int, never float):
  DuckDBEngine(archive_dir)  read_parquet over <archive_dir>/entries/**/*.parquet and accounts/**/*.parquet (hive
      partitions day=YYYY-MM-DD); a table with no file yet reads as empty, with its columns.
  AthenaEngine(workgroup, database, client)  the Glue tables `entries` and `accounts`; start_query_execution with
      ExecutionParameters, a bounded wait, every page of get_query_results typed by its column metadata.

report(engine, now, open_minutes) returns the dict `wallet report` prints and wallet.operator.html_report draws. Its
keys (kept stable; amounts are exact decimal strings such as "12.5", never floats):
  "generated_at"  the ISO time of `now` (2026-12-02T10:00:00.000000Z)
  "open_minutes"  the --open-minutes the open rounds were found with
  "ggr"           ggr_daily rows: day, game_id, currency, bets, wins, ggr
  "games"         game_totals rows: game_id, currency, bets, wins, ggr, players, rounds
  "open_rounds"   open_rounds rows: game_uuid, player_id, game_id, currency, bet, last_bet_at, plus today's `player`
                  (the same id) and `open_minutes` (how long it has been open at `now`)
audit(engine) returns a wallet.operator.audit.AuditReport: the same JSON as the whole-table audit (clean, players,
entries, total_balance, violations as sentences, warnings) and the same exit code in `wallet audit`.

The billing never imports this module; duckdb and jinja2 (the `analytics` extra, not in the Lambda layer) are imported
only when a query is rendered or run.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from wallet.money.amounts import format_number
from wallet.money.ledger import utc_now_iso
from wallet.operator.audit import AuditReport

if TYPE_CHECKING:
    import jinja2

SQL_DIR = Path(__file__).parent / "sql"
QUERIES = ("ggr_daily", "game_totals", "open_rounds", "statement", "audit", "audit_totals")

ARCHIVE_DIR_VARIABLE = "WALLET_ARCHIVE_DIR"
WORKGROUP_VARIABLE = "WALLET_ATHENA_WORKGROUP"
DATABASE_VARIABLE = "WALLET_ATHENA_DATABASE"
ENGINES = ("duckdb", "athena")

# The archive's columns and their types (the design's schema), for a table with no file yet.
ENTRY_COLUMNS = {
    "entry_id": "VARCHAR",
    "source": "VARCHAR",
    "trx_id": "VARCHAR",
    "player_id": "VARCHAR",
    "kind": "VARCHAR",
    "currency": "VARCHAR",
    "minus": "DECIMAL(38, 8)",
    "plus": "DECIMAL(38, 8)",
    "balance_before": "DECIMAL(38, 8)",
    "balance_after": "DECIMAL(38, 8)",
    "game_uuid": "VARCHAR",
    "game_id": "VARCHAR",
    "game_type": "VARCHAR",
    "tag": "VARCHAR",
    "created_at": "VARCHAR",
    "account_version": "BIGINT",
    "chain_hash": "VARCHAR",
}
ACCOUNT_COLUMNS = {
    "player_id": "VARCHAR",
    "version": "BIGINT",
    "balance": "DECIMAL(38, 8)",
    "currency": "VARCHAR",
    "status": "VARCHAR",
    "chain_head": "VARCHAR",
    "changed_at": "VARCHAR",
}


class EngineError(Exception):
    """A query could not run: a bad setting, a missing package, the engine refused it or gave up."""


@dataclass(frozen=True)
class Dialect:
    """What differs in the SQL text between the engines: the raw tables and the SHA-256 function."""

    raw_entries: str
    raw_accounts: str
    sha256_hex: Callable[[str], str]


def duckdb_sha256(expression: str) -> str:
    return f"sha256({expression})"


def athena_sha256(expression: str) -> str:
    return f"lower(to_hex(sha256(to_utf8({expression}))))"


@dataclass(frozen=True)
class RenderedQuery:
    sql: str
    parameters: tuple[str, ...]  # the names of the `?` placeholders, in the order they appear

    def values(self, given: Mapping[str, Any]) -> list[Any]:
        """The values for the placeholders, in order; a parameter missing or not used is a mistake, not a default."""
        missing = sorted(set(self.parameters) - set(given))
        unused = sorted(set(given) - set(self.parameters))
        if missing or unused:
            raise EngineError(f"query parameters: missing {missing}, not used {unused}")
        return [given[name] for name in self.parameters]


def render(name: str, dialect: Dialect) -> RenderedQuery:
    """One SQL file rendered for an engine: the text with `?` placeholders and their names."""
    if name not in QUERIES:
        raise EngineError(f"no query {name!r}; the queries are {', '.join(QUERIES)}")
    environment = _environment()
    relations: Any = environment.get_template("_relations.sql").module
    parameters: list[str] = []

    def param(parameter: str) -> str:
        parameters.append(parameter)
        return "?"

    sql = environment.get_template(f"{name}.sql").render(
        entries=relations.entries(dialect.raw_entries),
        entries_where=lambda where: relations.entries(dialect.raw_entries, where),
        accounts=relations.accounts(dialect.raw_accounts),
        entry_copies=relations.entry_copies(dialect.raw_entries),
        sha256_hex=dialect.sha256_hex,
        param=param,
    )
    return RenderedQuery(sql, tuple(parameters))


@cache
def _environment() -> jinja2.Environment:
    templates = _import("jinja2")
    # SQL, not HTML: escaping would corrupt it. Values never go into the text (param() binds them).
    environment: jinja2.Environment = templates.Environment(
        loader=templates.FileSystemLoader(SQL_DIR),
        undefined=templates.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    return environment


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EngineError(f"{module} is not installed: pip install 'wallet[analytics]'") from None


class Engine(Protocol):
    def run(self, name: str, **params: Any) -> list[dict[str, Any]]: ...


# --- DuckDB over a local folder ---------------------------------------------------------------------------------------


class DuckDBEngine:
    """The SQL files on DuckDB over the archive in a local folder (the exporter writes it under WALLET_ARCHIVE_DIR)."""

    def __init__(self, archive_dir: Path) -> None:
        self.archive_dir = Path(archive_dir)

    def dialect(self) -> Dialect:
        return Dialect(
            raw_entries=self._table("entries", ENTRY_COLUMNS),
            raw_accounts=self._table("accounts", ACCOUNT_COLUMNS),
            sha256_hex=duckdb_sha256,
        )

    def _table(self, name: str, columns: Mapping[str, str]) -> str:
        folder = self.archive_dir / name
        if not any(folder.rglob("*.parquet")):  # read_parquet refuses a pattern matching no file
            typed = ", ".join(f"CAST(NULL AS {kind}) AS {column}" for column, kind in columns.items())
            return f"(SELECT {typed} WHERE 1 = 0)"
        pattern = str(folder / "**" / "*.parquet").replace("'", "''")
        # union_by_name: a file from before a column existed reads it as NULL; the day partition is kept as text.
        return (
            f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true, "
            "hive_types = {'day': VARCHAR})"
        )

    def run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        query = render(name, self.dialect())
        values = query.values(params)
        duckdb = _import("duckdb")
        try:
            with duckdb.connect() as connection:
                # Every query ends in its own ORDER BY: the order rows are read in need not be kept (less memory and
                # a freer plan on DuckDB).
                connection.execute("SET preserve_insertion_order = false")
                cursor = connection.execute(query.sql, values)
                columns = [column[0] for column in cursor.description]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.Error as exc:
            raise EngineError(f"duckdb: {name}: {exc}") from exc


# --- Athena -----------------------------------------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER_TYPES = {"tinyint", "smallint", "integer", "int", "bigint"}
_EXACT_TYPES = {"decimal", "double", "real", "float"}  # a double too, read as the Decimal of its text: never a float
_FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED"}


class AthenaEngine:
    """The same SQL files on Athena, over the Glue tables of the archive bucket, in the operator's workgroup (its
    result location and bytes-scanned limit apply)."""

    def __init__(
        self,
        workgroup: str,
        database: str,
        client: Any,
        *,
        entries_table: str = "entries",
        accounts_table: str = "accounts",
        timeout_seconds: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for table in (entries_table, accounts_table):
            if not _IDENTIFIER.fullmatch(table):
                raise EngineError(f"not a table name: {table!r}")
        self.workgroup = workgroup
        self.database = database
        self.client = client
        self.entries_table = entries_table
        self.accounts_table = accounts_table
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep
        self.clock = clock

    def dialect(self) -> Dialect:
        return Dialect(
            raw_entries=f'"{self.entries_table}"', raw_accounts=f'"{self.accounts_table}"', sha256_hex=athena_sha256
        )

    def run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        query = render(name, self.dialect())
        values = query.values(params)
        try:
            execution_id = self._start(query.sql, values)
            self._wait(name, execution_id)
            return list(self._rows(execution_id))
        except (BotoCoreError, ClientError) as exc:
            raise EngineError(f"athena: {name}: {exc}") from exc

    def _start(self, sql: str, values: list[Any]) -> str:
        request: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.workgroup,
            "QueryExecutionContext": {"Database": self.database},
        }
        if values:  # Athena refuses an empty list
            request["ExecutionParameters"] = [athena_literal(value) for value in values]
        execution_id: str = self.client.start_query_execution(**request)["QueryExecutionId"]
        return execution_id

    def _wait(self, name: str, execution_id: str) -> None:
        deadline = self.clock() + self.timeout_seconds
        pause = 0.1
        while True:
            status = self.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in _FINISHED:
                reason = status.get("StateChangeReason", "no reason given")
                raise EngineError(f"athena: {name}: query {execution_id} {state}: {reason}")
            if self.clock() >= deadline:
                self.client.stop_query_execution(QueryExecutionId=execution_id)
                raise EngineError(
                    f"athena: {name}: query {execution_id} still {state} after {self.timeout_seconds:g} s; stopped"
                )
            self.sleep(pause)
            pause = min(pause * 2, 2.0)

    def _rows(self, execution_id: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
        first_page = True
        while True:
            page = self.client.get_query_results(**request)
            result_set = page["ResultSet"]
            columns = result_set["ResultSetMetadata"]["ColumnInfo"]
            rows = result_set.get("Rows", [])
            if first_page and rows:  # a SELECT's first row is the header: the column names
                rows = rows[1:]
            first_page = False
            for row in rows:
                yield {
                    column["Name"]: athena_value(column["Type"], cell.get("VarCharValue"))
                    for column, cell in zip(columns, row["Data"], strict=True)
                }
            token = page.get("NextToken")
            if not token:
                return
            request["NextToken"] = token


def athena_literal(value: Any) -> str:
    """An execution parameter as Athena takes it: the SQL literal of the value (a string quoted, its quotes doubled).
    Athena substitutes it as one literal, so a value with a quote in it stays a value."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise EngineError(f"query parameter of type {type(value).__name__}: give a str, int or Decimal")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Decimal):
        return f"DECIMAL '{value}'"
    return str(value)


def athena_value(kind: str, text: str | None) -> Any:
    """One cell of a result, typed by its column's type: Athena gives every value as text (and NULL as none)."""
    if text is None:
        return None
    base = kind.lower().split("(", 1)[0].strip()
    if base in _EXACT_TYPES:
        return Decimal(text)
    if base in _INTEGER_TYPES:
        return int(text)
    if base == "boolean":
        return text == "true"
    return text


# --- choosing the engine ----------------------------------------------------------------------------------------------


def open_engine(
    engine: str | None = None,
    archive_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    athena_client: Callable[[], Any] | None = None,
) -> Engine:
    """The engine a command asked for, else Athena when WALLET_ATHENA_WORKGROUP is set, else DuckDB over
    WALLET_ARCHIVE_DIR (or `archive_dir`)."""
    env = os.environ if environ is None else environ
    workgroup = env.get(WORKGROUP_VARIABLE, "").strip()
    if engine is None:
        engine = "athena" if workgroup and archive_dir is None else "duckdb"
    if engine == "athena":
        if archive_dir is not None:
            raise EngineError("--archive is the local folder for duckdb; athena reads the Glue tables")
        if not workgroup:
            raise EngineError(f"--engine athena: set {WORKGROUP_VARIABLE} (and {DATABASE_VARIABLE})")
        database = env.get(DATABASE_VARIABLE, "").strip()
        if not database:
            raise EngineError(f"--engine athena: set {DATABASE_VARIABLE} to the archive's Glue database")
        try:
            client = (athena_client or _athena_client)()
        except BotoCoreError as exc:  # no region, no credentials
            raise EngineError(f"athena: {exc}") from exc
        return AthenaEngine(workgroup, database, client)
    if engine != "duckdb":
        raise EngineError(f"no engine {engine!r}; the engines are {', '.join(ENGINES)}")
    folder = archive_dir or (Path(text) if (text := env.get(ARCHIVE_DIR_VARIABLE, "").strip()) else None)
    if folder is None:
        raise EngineError(
            f"no archive to read: set {ARCHIVE_DIR_VARIABLE} (or --archive DIR) for duckdb, "
            f"or {WORKGROUP_VARIABLE} for athena"
        )
    if not folder.is_dir():
        raise EngineError(f"the archive folder {folder} does not exist")
    return DuckDBEngine(folder)


def _athena_client() -> Any:
    import boto3

    return boto3.client("athena")


# --- what the CLI prints ----------------------------------------------------------------------------------------------


def report(engine: Engine, now: datetime, open_minutes: int) -> dict[str, Any]:
    """GGR per day and per game and the rounds open for `open_minutes` or more at `now` (keys in the docstring)."""
    cutoff = utc_now_iso((now - timedelta(minutes=open_minutes)).timestamp())
    open_rounds = []
    for row in engine.run("open_rounds", cutoff=cutoff):
        opened = datetime.fromisoformat(row["last_bet_at"].replace("Z", "+00:00"))
        open_rounds.append(
            {
                **_exact(row),
                "player": row["player_id"],
                "open_minutes": int((now - opened).total_seconds() // 60),
            }
        )
    return {
        "generated_at": utc_now_iso(now.timestamp()),
        "open_minutes": open_minutes,
        "ggr": [_exact(row) for row in engine.run("ggr_daily")],
        "games": [_exact(row) for row in engine.run("game_totals")],
        "open_rounds": open_rounds,
    }


def audit(engine: Engine) -> AuditReport:
    """The audit's violations and totals over the archive, as the whole-table audit reports them."""
    summary = engine.run("audit_totals")
    if len(summary) != 1:
        raise EngineError(f"audit_totals gave {len(summary)} rows, not one")
    [totals] = summary
    found = AuditReport(
        players=int(totals["players"]),
        entries=int(totals["entries"]),
        total_balance=Decimal(format_number(Decimal(totals["total_balance"]))),
    )
    for row in engine.run("audit"):
        found.violations.append(
            f"player {row['player_id']} version {row['account_version']}: {row['kind']}: {row['detail']}"
        )
    return found


def _exact(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for JSON: amounts as exact decimal strings ("12.5"), the rest as they are."""
    return {key: format_number(value) if isinstance(value, Decimal) else value for key, value in row.items()}
