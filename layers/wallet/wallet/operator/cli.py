"""`wallet`: the operator's command line, against AWS or a local endpoint.

It reads the same settings as the Lambdas: WALLET_TABLE, WALLET_SESSION_KEY or WALLET_SESSION_KEY_PARAMETER, and
boto3's own AWS_ENDPOINT_URL_DYNAMODB / AWS_REGION. Every command prints JSON and exits non-zero on an error.

With WALLET_API_URL set, the player, session, deposit, withdraw, balance, history and round commands go through the
operator API (SigV4 with boto3's credentials; wallet.operator.remote) and print the same JSON; without it they talk
to the table directly, the operator's break-glass path. `audit`, `report` and `games sync` always work directly.
`wallet api METHOD PATH [JSON]` sends one signed request of your own (or prints it as a curl command).

`wallet report` and `wallet audit` read the ledger archive, not the live table: SQL on Athena when
WALLET_ATHENA_WORKGROUP (and WALLET_ATHENA_DATABASE) is set, else on DuckDB over the local archive in
WALLET_ARCHIVE_DIR (`--engine` and `--archive` choose; wallet.operator.ledger_sql). `wallet audit --scan` is the
whole-table check of the live table instead, for a small table or a restored copy.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import os
import shlex
import sys
import urllib.error
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from botocore.awsrequest import AWSRequest
from pydantic import ValidationError

from wallet.bootstrap import MissingSecret, build_wallet
from wallet.money.amounts import InvalidAmount, format_number, parse_amount
from wallet.money.ledger import Account, PlayerStatus, json_ready
from wallet.money.limits import SLOTS, Slot, parse_limit_changes
from wallet.money.mover import BillingContended, MoveResult
from wallet.money.operator_moves import OperatorError
from wallet.money.sessions import InvalidPlayerId
from wallet.money.store import StoreUnavailable
from wallet.money.wallet import Wallet
from wallet.operator import ledger_sql
from wallet.operator.api import parse_json
from wallet.operator.audit import AuditReport, audit_store
from wallet.operator.client import ApiError, OperatorClient
from wallet.operator.remote import API_URL_VARIABLE, ApiFailure, ApiWallet
from wallet.settings import Settings

# What the player, session, money and ledger commands run on: the table (Wallet) or the operator API (ApiWallet).
Operations = Wallet | ApiWallet
REMOVE = "none"  # `--loss-day none`: remove that limit


def _account_json(account: Account, now: float) -> dict[str, Any]:
    return {
        "player": account.player_id,
        "balance": _number(account.balance),
        "currency": account.currency,
        "status": account.status.value,
        "version": account.version,
        "created_at": account.created_at,
        "session_expires_at": account.session_expires_at,
        "limits": json_ready(account.limits.as_json(now)),
    }


def _number(value: Decimal) -> int | str:
    text = format_number(value)
    return int(text) if "." not in text else text


def _move_json(result: MoveResult) -> dict[str, Any]:
    assert result.entry is not None
    return {
        "status": result.status.value,
        "balance": _number(result.balance),
        "currency": result.account.currency if result.account else None,
        "entry": result.entry.as_json(),
    }


def _player_create(wallet: Operations, args: argparse.Namespace) -> Any:
    return _account_json(wallet.create_player(args.player, args.currency, args.balance), wallet.clock())


def _deposit(wallet: Operations, args: argparse.Namespace) -> Any:
    return _move_json(wallet.deposit(args.player, args.amount, args.ref))


def _withdraw(wallet: Operations, args: argparse.Namespace) -> Any:
    return _move_json(wallet.withdraw(args.player, args.amount, args.ref))


def _player_status(wallet: Operations, args: argparse.Namespace) -> Any:
    if isinstance(wallet, ApiWallet):  # the API records who signed: --by is refused there
        result = wallet.set_status(args.player, args.status, args.reason, args.by, args.ref)
    else:
        result = wallet.set_status(args.player, args.status, args.reason, args.by or _operator_name(), args.ref)
    return _change_json(wallet, result)


def _player_limits(wallet: Operations, args: argparse.Namespace) -> Any:
    changes = limit_changes({slot: getattr(args, _limit_dest(slot)) for slot in SLOTS})
    if isinstance(wallet, ApiWallet):
        result = wallet.set_limits(args.player, changes, args.by, args.ref)
    else:
        result = wallet.set_limits(args.player, changes, args.by or _operator_name(), args.ref)
    return _change_json(wallet, result)


def _change_json(wallet: Operations, result: MoveResult) -> dict[str, Any]:
    assert result.account is not None
    entry = _in_wallet_order(result.entry.as_json()) if result.entry else None
    return {**_account_json(result.account, wallet.clock()), "entry": entry}


# The order the wallet writes a status or limits entry's tag in (operator_moves.py). The table gives a map's keys back
# in an order of its own, so an entry read back (a retry with --ref, or through the API) is put in this order: the
# command prints the same bytes whichever way the entry came.
_TAG_ORDER = {"status": ("operator", "status", "reason", "by"), "limits": ("operator", "limits", "by")}


def _in_wallet_order(entry: dict[str, Any]) -> dict[str, Any]:
    order = _TAG_ORDER.get(entry["kind"])
    if order is None:
        return entry
    tag = entry["tag"]
    ordered = {key: tag[key] for key in order if key in tag} | tag  # then any other key, in its order
    if isinstance(ordered.get("limits"), dict):  # kinds and periods sorted, as set_limits writes them
        ordered["limits"] = {
            kind: dict(sorted(periods.items())) if isinstance(periods, dict) else periods
            for kind, periods in sorted(ordered["limits"].items())
        }
    return {**entry, "tag": ordered}


def limit_changes(options: dict[Slot, str | None]) -> dict[Slot, Decimal | None]:
    """`--loss-day 100 --wager-week none` as {(LOSS, DAY): 100, (WAGER, WEEK): None}: an exact amount (>= 0), or
    `none` to remove the limit; options not given are left as they are."""
    raw: dict[str, dict[str, Decimal | None]] = {}
    for (kind, period), text in options.items():
        if text is None:
            continue
        option = f"--{kind.value}-{period.value}"
        try:
            amount = None if text.strip().lower() == REMOVE else parse_amount(text.strip(), option)
        except InvalidAmount as exc:
            raise OperatorError(f"{exc} (or {REMOVE} to remove the limit)") from None
        raw.setdefault(kind.value, {})[period.value] = amount
    if not raw:
        raise OperatorError(
            "limits: nothing to change; give one or more of "
            + ", ".join(f"--{kind.value}-{period.value}" for kind, period in SLOTS)
        )
    try:
        return parse_limit_changes(raw)
    except ValueError as exc:  # pragma: no cover - the options only name known kinds and periods
        raise OperatorError(str(exc)) from None


def _limit_dest(slot: Slot) -> str:
    return f"limit_{slot[0].value}_{slot[1].value}"


def _operator_name() -> str:
    """Who made an operator change, for the ledger: WALLET_OPERATOR, else the login name."""
    try:
        return os.environ.get("WALLET_OPERATOR") or getpass.getuser()
    except OSError:  # no login name (a container without a passwd entry)
        return "unknown"


def _session_new(wallet: Operations, args: argparse.Namespace) -> Any:
    issued = wallet.new_session(args.player)
    return {"player": issued.player_id, "session": issued.token, "expires_at": issued.expires_at}


def _session_revoke(wallet: Operations, args: argparse.Namespace) -> Any:
    return {"player": args.player, "revoked": wallet.revoke_session(args.player)}


def _balance(wallet: Operations, args: argparse.Namespace) -> Any:
    return _account_json(wallet.account(args.player), wallet.clock())


def _history(wallet: Operations, args: argparse.Namespace) -> Any:
    return [entry.as_json() for entry in wallet.history(args.player, args.limit)]


def _round(wallet: Operations, args: argparse.Namespace) -> Any:
    return [entry.as_json() for entry in wallet.round(args.game_uuid)]


def _audit(args: argparse.Namespace, wallet: Callable[[], Operations]) -> Any:
    if args.scan:
        if args.engine or args.archive:
            raise OperatorError("--scan checks the live table: it takes no --engine or --archive")
        live = wallet()
        assert isinstance(live, Wallet)  # audit and report are never remote
        return audit_store(live.store)
    return ledger_sql.audit(_engine(args))


def _report(args: argparse.Namespace, wallet: Callable[[], Operations]) -> Any:
    del wallet  # the report reads the archive, never the live table
    if args.open_minutes < 0:
        raise OperatorError("--open-minutes must not be negative")
    result = ledger_sql.report(_engine(args), datetime.now(UTC), args.open_minutes)
    if args.html is not None:
        try:  # by name: the page's charting library is in the `analytics` extra, like the engines
            html_report = importlib.import_module("wallet.operator.html_report")
        except ImportError as exc:
            raise OperatorError(f"--html: the HTML report is not available here: {exc}") from None
        html_report.write_html_report(args.html, result)
    return result


def _engine(args: argparse.Namespace) -> ledger_sql.Engine:
    """DuckDB or Athena as the options and the environment say (duckdb and jinja2 load only when a query runs)."""
    return ledger_sql.open_engine(args.engine, args.archive)


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=["duckdb", "athena"],
        help="where the SQL runs (default: athena when WALLET_ATHENA_WORKGROUP is set, else duckdb)",
    )
    parser.add_argument(
        "--archive", type=Path, metavar="DIR", help="duckdb: the local archive folder (default: WALLET_ARCHIVE_DIR)"
    )


def build_parser(more_commands: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wallet", description="Seamless-wallet operator CLI")
    commands = parser.add_subparsers(dest="command", required=True)

    _add_player_and_session_commands(commands)

    for name, run, help_text in (("deposit", _deposit, "credit a player"), ("withdraw", _withdraw, "debit a player")):
        sub = commands.add_parser(name, help=f"{help_text}; idempotent by --ref")
        sub.add_argument("player")
        sub.add_argument("amount")
        sub.add_argument("--ref", required=True, help="the operator's unique reference (idempotency key)")
        sub.set_defaults(run=run, remote=True)

    balance = commands.add_parser("balance", help="a player's balance, status and limits")
    balance.add_argument("player")
    balance.set_defaults(run=_balance, remote=True)

    history = commands.add_parser("history", help="a player's ledger, newest first")
    history.add_argument("player")
    history.add_argument("--limit", type=int, default=100)
    history.set_defaults(run=_history, remote=True)

    round_ = commands.add_parser("round", help="a round's entries by game_uuid")
    round_.add_argument("game_uuid")
    round_.set_defaults(run=_round, remote=True)

    audit = commands.add_parser(
        "audit", help="check every money invariant and the chain over the ledger archive; exit 1 on a violation"
    )
    _add_engine_options(audit)
    audit.add_argument(
        "--scan", action="store_true", help="check the live table with a whole-table scan instead (small tables only)"
    )
    audit.set_defaults(run_reading=_audit)

    report = commands.add_parser("report", help="GGR per day and game, games, open rounds (from the ledger archive)")
    _add_engine_options(report)
    report.add_argument("--open-minutes", type=int, default=60, help="a bet with nothing after it for this long")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write the report as one page with charts")
    report.set_defaults(run_reading=_report)

    games = commands.add_parser("games", help="the games catalogue").add_subparsers(dest="games_command", required=True)
    sync = games.add_parser("sync", help="fetch games_config, publish it to S3 if changed, invalidate CloudFront")
    sync.add_argument("--url", help="games_config URL (default: WALLET_GAMES_CONFIG_URL)")
    sync.set_defaults(run=None, games_sync=True)

    _add_api_command(commands)
    for add in more_commands:  # e.g. `wallet local`, which only a source checkout (the local stack) adds
        add(commands)
    return parser


def _add_player_and_session_commands(commands: Any) -> None:
    player = commands.add_parser("player", help="players").add_subparsers(dest="player_command", required=True)
    create = player.add_parser("create", help="create a player account")
    create.add_argument("player")
    create.add_argument("--currency", default="FUN")
    create.add_argument("--balance", default="0", help="opening balance (recorded in the ledger)")
    create.set_defaults(run=_player_create, remote=True)
    status = player.add_parser(
        "status", help="set a player's status (recorded in the ledger); only active players can play"
    )
    status.add_argument("player")
    status.add_argument("status", choices=[s.value for s in PlayerStatus])
    status.add_argument("--reason", required=True, help="why (kept in the player's history)")
    status.add_argument("--by", help="who (default: WALLET_OPERATOR or the login name)")
    status.add_argument("--ref", help="a reference for this change: run again with it, it is recorded once")
    status.set_defaults(run=_player_status, remote=True)
    limits = player.add_parser(
        "limits",
        help="set or remove a player's loss, wager and deposit limits per UTC day, ISO week or month (recorded)",
        description="Lowering a limit or setting a new one takes effect at once; raising or removing one after 24 "
        "hours (shown as pending in `wallet balance`). Options not given stay as they are.",
    )
    limits.add_argument("player")
    for kind, period in SLOTS:
        limits.add_argument(
            f"--{kind.value}-{period.value}",
            dest=_limit_dest((kind, period)),
            metavar=f"AMOUNT|{REMOVE}",
            help=f"{kind.value} limit per {period.value}",
        )
    limits.add_argument("--by", help="who (default: WALLET_OPERATOR or the login name)")
    limits.add_argument("--ref", help="a reference for this change: run again with it, it is recorded once")
    limits.set_defaults(run=_player_limits, remote=True)

    session = commands.add_parser("session", help="game sessions").add_subparsers(dest="session_command", required=True)
    new = session.add_parser("new", help="issue a session (replaces the previous one; wins on that still land)")
    new.add_argument("player")
    new.set_defaults(run=_session_new, remote=True)
    revoke = session.add_parser("revoke", help="end the live session (log-out); wins on it still land")
    revoke.add_argument("player")
    revoke.set_defaults(run=_session_revoke, remote=True)


def _add_api_command(commands: Any) -> None:
    api = commands.add_parser(
        "api",
        help="send one SigV4-signed request to the operator API (WALLET_API_URL) and print the reply's JSON",
        description='e.g. wallet api POST /operator/players \'{"player_id":"p2","currency":"FUN"}\'; '
        "wallet api GET '/operator/players/p2/history?limit=5'. Signed with boto3's credentials and region.",
    )
    api.add_argument("method", type=str.upper, choices=["GET", "POST", "PATCH", "PUT", "DELETE"])
    api.add_argument("path", help="e.g. /operator/players/alice, with a ?query if any")
    api.add_argument("body", nargs="?", help="the JSON body (amounts exact: numbers or decimal strings); - reads stdin")
    api.add_argument("--url", help=f"the API's base URL (default: {API_URL_VARIABLE})")
    api.add_argument(
        "--print-curl",
        action="store_true",
        help="print a ready-to-run curl command with the signed headers instead of sending (valid for 5 minutes)",
    )
    api.set_defaults(run_alone=_api)


def _api(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get(API_URL_VARIABLE, "").strip()
    if not url:
        return _fail(f"set {API_URL_VARIABLE} (or --url) to the operator API's URL")
    path, _, query_text = args.path.partition("?")
    if not path.startswith("/"):
        return _fail("PATH must start with /, e.g. /operator/players/alice")
    query = dict(parse_qsl(query_text, keep_blank_values=True)) or None
    body = None
    if args.body is not None:
        try:
            body = parse_json(sys.stdin.read() if args.body == "-" else args.body)
        except ValueError as exc:
            return _fail(f"the body is not JSON: {exc}")
    try:
        client = OperatorClient(url)
    except ValueError as exc:  # not an http(s) URL, or no credentials
        return _fail(str(exc))
    if args.print_curl:
        print(curl_command(client.signed_request(args.method, path, body, query)))
        return 0
    try:
        reply = client.call(args.method, path, body, query)
    except ApiError as exc:
        refused = {"error": f"{exc.code}: {exc.message}", "status": exc.status, "reply": json_ready(exc.body)}
        print(json.dumps(refused), file=sys.stderr)
        return 2
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return _fail(f"operator API at {url} does not answer: {reason}")
    if isinstance(reply.body, str):
        print(reply.body)
    elif reply.body is not None:  # nothing for a 204
        json.dump(json_ready(reply.body), sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def curl_command(request: AWSRequest) -> str:
    """The signed request as a curl command line: the same method, URL, signed headers and body bytes."""
    words = ["curl", "-sS", "-X", str(request.method), str(request.url)]
    for name, value in request.headers.items():
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        words += ["-H", f"{name}: {text}"]
    body = request.body
    if body:
        words += ["--data-binary", body.decode("utf-8") if isinstance(body, bytes) else str(body)]
    return " ".join(shlex.quote(word) for word in words)


def main(
    argv: Sequence[str] | None = None,
    wallet_factory: Callable[[], Wallet] | None = None,
    more_commands: Sequence[Callable[[Any], None]] = (),
    api_factory: Callable[[str], ApiWallet] | None = None,
) -> int:
    """Run one command. A command added by `more_commands` sets `run_alone` (a callable of its args -> exit code).

    The player, session, money and ledger commands run on `api_factory(WALLET_API_URL)` (default: ApiWallet over
    OperatorClient) when WALLET_API_URL is set, else on `wallet_factory()` (default: build_wallet). A caller that
    passes its own `wallet_factory` and no `api_factory` (a test) always gets its wallet."""
    args = build_parser(more_commands).parse_args(argv)
    if getattr(args, "run_alone", None) is not None:
        return int(args.run_alone(args))
    if getattr(args, "games_sync", False):
        return _games_sync(args.url)
    try:
        if getattr(args, "run_reading", None) is not None:  # audit, report: the live table only for `audit --scan`
            result = args.run_reading(args, lambda: _wallet_for(args, wallet_factory, api_factory))
        else:
            result = args.run(_wallet_for(args, wallet_factory, api_factory), args)
    except ValidationError as exc:
        fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        return _fail(f"invalid settings ({fields}): set WALLET_TABLE and the secrets' variables")
    except (OperatorError, InvalidPlayerId, MissingSecret, ApiFailure) as exc:
        return _fail(str(exc))
    except StoreUnavailable as exc:
        return _fail(f"database unavailable: {exc}")
    except ledger_sql.EngineError as exc:
        return _fail(str(exc))
    except BillingContended:
        return _fail("the player's account is busy (many movements at this moment): nothing changed, try again")
    if isinstance(result, AuditReport):
        json.dump(result.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if result.clean else 1
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _wallet_for(
    args: argparse.Namespace,
    wallet_factory: Callable[[], Wallet] | None,
    api_factory: Callable[[str], ApiWallet] | None,
) -> Operations:
    url = os.environ.get(API_URL_VARIABLE, "").strip()
    if getattr(args, "remote", False) and url and (api_factory is not None or wallet_factory is None):
        try:
            return (api_factory or ApiWallet.from_url)(url)
        except ValueError as exc:  # not an http(s) URL, or no credentials
            raise ApiFailure(f"{API_URL_VARIABLE}: {exc}") from None
    return (wallet_factory or build_wallet)()


def _games_sync(url: str | None) -> int:
    from wallet.bootstrap import build_catalogue_store
    from wallet.catalogue.games import CatalogueError
    from wallet.catalogue.s3_store import StoreUnavailable as CatalogueUnavailable
    from wallet.catalogue.sync import sync_games_config
    from wallet.settings import CatalogueSettings

    try:
        settings = CatalogueSettings.from_env()
        result = sync_games_config(settings, build_catalogue_store(settings), url)
    except ValidationError:
        return _fail("invalid settings: set WALLET_CATALOGUE_BUCKET (and WALLET_DISTRIBUTION_ID to invalidate)")
    except (CatalogueError, CatalogueUnavailable) as exc:
        return _fail(f"games_config not published, the last good copy stays: {exc}")
    print(json.dumps({"changed": result.changed, "invalidation": result.invalidation_id, "games": result.games}))
    return 0


def _fail(message: str) -> int:
    print(json.dumps({"error": message}), file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["Settings", "build_parser", "main"]
