"""`wallet`: the operator's command line, against AWS or a local endpoint.

It reads the same settings as the Lambdas: WALLET_TABLE, WALLET_SESSION_KEY or WALLET_SESSION_KEY_PARAMETER, and
boto3's own AWS_ENDPOINT_URL_DYNAMODB / AWS_REGION. Every command prints JSON and exits non-zero on an error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from wallet.bootstrap import MissingSecret, build_wallet
from wallet.money.amounts import format_number
from wallet.money.ledger import Account, PlayerStatus
from wallet.money.mover import BillingContended, MoveResult
from wallet.money.operator_moves import OperatorError
from wallet.money.sessions import InvalidPlayerId
from wallet.money.store import StoreUnavailable
from wallet.money.wallet import Wallet
from wallet.operator.audit import AuditReport, audit_store, report_store
from wallet.settings import Settings


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "player": account.player_id,
        "balance": _number(account.balance),
        "currency": account.currency,
        "status": account.status.value,
        "version": account.version,
        "created_at": account.created_at,
        "session_expires_at": account.session_expires_at,
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


def _player_create(wallet: Wallet, args: argparse.Namespace) -> Any:
    return _account_json(wallet.create_player(args.player, args.currency, args.balance))


def _deposit(wallet: Wallet, args: argparse.Namespace) -> Any:
    return _move_json(wallet.deposit(args.player, args.amount, args.ref))


def _withdraw(wallet: Wallet, args: argparse.Namespace) -> Any:
    return _move_json(wallet.withdraw(args.player, args.amount, args.ref))


def _player_status(wallet: Wallet, args: argparse.Namespace) -> Any:
    result = wallet.set_status(args.player, args.status, args.reason, args.by or _operator_name(), args.ref)
    assert result.account is not None
    return {**_account_json(result.account), "entry": result.entry.as_json() if result.entry else None}


def _operator_name() -> str:
    """Who made an operator change, for the ledger: WALLET_OPERATOR, else the login name."""
    try:
        return os.environ.get("WALLET_OPERATOR") or getpass.getuser()
    except OSError:  # no login name (a container without a passwd entry)
        return "unknown"


def _session_new(wallet: Wallet, args: argparse.Namespace) -> Any:
    issued = wallet.new_session(args.player)
    return {"player": issued.player_id, "session": issued.token, "expires_at": issued.expires_at}


def _session_revoke(wallet: Wallet, args: argparse.Namespace) -> Any:
    return {"player": args.player, "revoked": wallet.revoke_session(args.player)}


def _balance(wallet: Wallet, args: argparse.Namespace) -> Any:
    return _account_json(wallet.account(args.player))


def _history(wallet: Wallet, args: argparse.Namespace) -> Any:
    return [entry.as_json() for entry in wallet.history(args.player, args.limit)]


def _round(wallet: Wallet, args: argparse.Namespace) -> Any:
    return [entry.as_json() for entry in wallet.round(args.game_uuid)]


def _audit(wallet: Wallet, args: argparse.Namespace) -> Any:
    del args
    return audit_store(wallet.store)


def _report(wallet: Wallet, args: argparse.Namespace) -> Any:
    if args.open_minutes < 0:
        raise OperatorError("--open-minutes must not be negative")
    now = datetime.fromtimestamp(wallet.clock(), UTC)
    return report_store(wallet.store, now, timedelta(minutes=args.open_minutes))


def build_parser(more_commands: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wallet", description="Seamless-wallet operator CLI")
    commands = parser.add_subparsers(dest="command", required=True)

    _add_player_and_session_commands(commands)

    for name, run, help_text in (("deposit", _deposit, "credit a player"), ("withdraw", _withdraw, "debit a player")):
        sub = commands.add_parser(name, help=f"{help_text}; idempotent by --ref")
        sub.add_argument("player")
        sub.add_argument("amount")
        sub.add_argument("--ref", required=True, help="the operator's unique reference (idempotency key)")
        sub.set_defaults(run=run)

    balance = commands.add_parser("balance", help="a player's balance and status")
    balance.add_argument("player")
    balance.set_defaults(run=_balance)

    history = commands.add_parser("history", help="a player's ledger, newest first")
    history.add_argument("player")
    history.add_argument("--limit", type=int, default=100)
    history.set_defaults(run=_history)

    round_ = commands.add_parser("round", help="a round's entries by game_uuid")
    round_.add_argument("game_uuid")
    round_.set_defaults(run=_round)

    audit = commands.add_parser("audit", help="check every money invariant over the table; exit 1 on a violation")
    audit.set_defaults(run=_audit)

    report = commands.add_parser("report", help="open rounds and GGR per day and game")
    report.add_argument("--open-minutes", type=int, default=60, help="a bet with nothing after it for this long")
    report.set_defaults(run=_report)

    games = commands.add_parser("games", help="the games catalogue").add_subparsers(dest="games_command", required=True)
    sync = games.add_parser("sync", help="fetch games_config, publish it to S3 if changed, invalidate CloudFront")
    sync.add_argument("--url", help="games_config URL (default: WALLET_GAMES_CONFIG_URL)")
    sync.set_defaults(run=None, games_sync=True)
    for add in more_commands:  # e.g. `wallet local`, which only a source checkout (the local stack) adds
        add(commands)
    return parser


def _add_player_and_session_commands(commands: Any) -> None:
    player = commands.add_parser("player", help="players").add_subparsers(dest="player_command", required=True)
    create = player.add_parser("create", help="create a player account")
    create.add_argument("player")
    create.add_argument("--currency", default="FUN")
    create.add_argument("--balance", default="0", help="opening balance (recorded in the ledger)")
    create.set_defaults(run=_player_create)
    status = player.add_parser(
        "status", help="set a player's status (recorded in the ledger); only active players can play"
    )
    status.add_argument("player")
    status.add_argument("status", choices=[s.value for s in PlayerStatus])
    status.add_argument("--reason", required=True, help="why (kept in the player's history)")
    status.add_argument("--by", help="who (default: WALLET_OPERATOR or the login name)")
    status.add_argument("--ref", help="a reference for this change: run again with it, it is recorded once")
    status.set_defaults(run=_player_status)

    session = commands.add_parser("session", help="game sessions").add_subparsers(dest="session_command", required=True)
    new = session.add_parser("new", help="issue a session (replaces the previous one; wins on that still land)")
    new.add_argument("player")
    new.set_defaults(run=_session_new)
    revoke = session.add_parser("revoke", help="end the live session (log-out); wins on it still land")
    revoke.add_argument("player")
    revoke.set_defaults(run=_session_revoke)


def main(
    argv: Sequence[str] | None = None,
    wallet_factory: Callable[[], Wallet] = build_wallet,
    more_commands: Sequence[Callable[[Any], None]] = (),
) -> int:
    """Run one command. A command added by `more_commands` sets `run_alone` (a callable of its args -> exit code)."""
    args = build_parser(more_commands).parse_args(argv)
    if getattr(args, "run_alone", None) is not None:
        return int(args.run_alone(args))
    if getattr(args, "games_sync", False):
        return _games_sync(args.url)
    try:
        wallet = wallet_factory()
        result = args.run(wallet, args)
    except ValidationError as exc:
        fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        return _fail(f"invalid settings ({fields}): set WALLET_TABLE and the secrets' variables")
    except (OperatorError, InvalidPlayerId, MissingSecret) as exc:
        return _fail(str(exc))
    except StoreUnavailable as exc:
        return _fail(f"database unavailable: {exc}")
    except BillingContended:
        return _fail("the player's account is busy (many movements at this moment): nothing changed, try again")
    if isinstance(result, AuditReport):
        json.dump(result.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if result.clean else 1
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


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
