"""The deterministic simulation (tests/simulation/vopr.py) over thousands of seeds, and checks of the simulator itself.

    VOPR_SEEDS=20000 .venv/bin/python -m pytest -q tests/simulation     # more seeds than CI's 2000
    VOPR_SEED=1234 .venv/bin/python -m pytest -q tests/simulation -k replay   # one seed, its trace tail if it fails
    make soak SEEDS=100000                                                # many more, with progress

A failing seed prints its violations, the tail of its trace and the command that replays it exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.simulation.vopr import run_seed
from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.limits import Breach
from wallet.money.memory import MemoryStore, _slot
from wallet.money.mover import Authorize
from wallet.money.protocol import Movement
from wallet.money.sessions import SessionRecord
from wallet.money.store import WriteOutcome
from wallet.money.wallet import Wallet

SEEDS = int(os.environ.get("VOPR_SEEDS", "2000"))
BATCHES = 8
ROOT = Path(__file__).resolve().parents[2]


def _run_seeds(seeds: range) -> None:
    for seed in seeds:
        result = run_seed(seed)
        if not result.ok:
            pytest.fail(result.report(), pytrace=False)


@pytest.mark.parametrize("batch", range(BATCHES))
def test_seeds(batch: int) -> None:
    """Seeds 0..VOPR_SEEDS-1, in batches: every reply fits the rules, the audit is clean after every write."""
    per_batch = -(-SEEDS // BATCHES)
    _run_seeds(range(batch * per_batch, min(SEEDS, (batch + 1) * per_batch)))


def test_replay_one_seed() -> None:
    """VOPR_SEED=N replays one seed (0 by default)."""
    _run_seeds(range(int(os.environ.get("VOPR_SEED", "0")), int(os.environ.get("VOPR_SEED", "0")) + 1))


def test_a_seed_gives_the_same_trace_and_the_same_store() -> None:
    for seed in (7, 1234, 99_991):
        first, second = run_seed(seed), run_seed(seed)
        assert first.ok and second.ok
        assert first.trace == second.trace
        assert first.digest == second.digest


def test_a_seed_gives_the_same_trace_in_another_process() -> None:
    """Nothing depends on the process (hash randomization, the real clock, the global random state)."""
    outputs = []
    for hash_seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        completed = subprocess.run(
            [sys.executable, "-m", "tests.simulation.vopr", "--seed", "31337", "--trace"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        outputs.append(completed.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") > 50


def test_the_workload_reaches_what_it_is_meant_to() -> None:
    """Over a few hundred seeds the simulation really does exercise the faults and the rules it checks."""
    trace = "\n".join(line for seed in range(300) for line in run_seed(seed).trace)
    for needle in (
        "!timeout_after_commit",
        "!timeout_before_commit",
        "!throttled",
        "!contended",
        "!no_item",
        "(duplicate)",
        "(duplicate conflict)",
        "-> not_enough_money",
        "-> session_not_found",
        "(zero_win)",
        "(bet_and_win)",
        "do:cross_bet",
        "scoped",
        "do:twin",
        "-> 5xx",
        "get_session",
        "end_session",
        "->suspended",
        "->closed",
        "deposits are refused",
        "no new session",
        "used before for a different movement",
        "clock +",
    ):
        assert needle in trace, needle


# --- the simulator finds planted bugs (a simulator that cannot fail proves nothing) ---------------------------


class OverwritingStore(MemoryStore):
    """Forgets the entry's slot on a write: a replay after a timeout moves the money a second time."""

    def record(
        self, entry: LedgerEntry, expected: Account, new_status: PlayerStatus | None = None, **options: Any
    ) -> WriteOutcome:
        self._entries.pop(_slot(entry), None)
        return super().record(entry, expected, new_status, **options)


class BlindReplayStore(MemoryStore):
    """Never finds the entry on the read: a replay goes through the session and money checks again."""

    def get_account_and_entry(
        self, player_id: str, source: Source, key: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        account, _ = super().get_account_and_entry(player_id, source, key, scoped_to)
        return account, None


class ForgetfulSessionsStore(MemoryStore):
    """Keeps no session record: money owed on a replaced or revoked session is refused."""

    def get_session(self, player_id: str, token_hash: str) -> SessionRecord | None:  # noqa: ARG002
        return None


class LostUpdateStore(MemoryStore):
    """Does not check the account's version: a write based on a stale read lands, and what changed since is lost."""

    def record(
        self, entry: LedgerEntry, expected: Account, new_status: PlayerStatus | None = None, **options: Any
    ) -> WriteOutcome:
        account = self._accounts.get(entry.player_id)
        if account is not None and _slot(entry) not in self._entries:
            self._accounts[entry.player_id] = replace(account, version=expected.version, balance=entry.balance_before)
        return super().record(entry, expected, new_status, **options)


class CounterlessStore(MemoryStore):
    """Moves the money but drops the limits' counters: bets then get past a limit."""

    def record(
        self, entry: LedgerEntry, expected: Account, new_status: PlayerStatus | None = None, **options: Any
    ) -> WriteOutcome:
        options.pop("counters", None)
        return super().record(entry, expected, new_status, **options)


class LimitlessWallet(Wallet):
    """Never refuses a movement for a limit (the limits are kept and counted, just not enforced)."""

    def _limit_breach(self, *_: Any) -> Breach | None:
        return None


class LaxSessionsWallet(Wallet):
    """Takes a bet on any session it issued, not only the live one."""

    def _session_allows(self, token: str, movement: Movement) -> Authorize:
        if movement.minus > 0:
            owed = self._owed_money_allowed(token)
            return lambda account: account.is_active and owed(account)
        return super()._session_allows(token, movement)


@pytest.mark.parametrize(
    ("store", "wallet"),
    [
        (OverwritingStore, Wallet),
        (BlindReplayStore, Wallet),
        (ForgetfulSessionsStore, Wallet),
        (LostUpdateStore, Wallet),
        (MemoryStore, LaxSessionsWallet),
        (CounterlessStore, Wallet),
        (MemoryStore, LimitlessWallet),
    ],
    ids=[
        "overwriting",
        "blind-replay",
        "forgetful-sessions",
        "lost-update",
        "lax-sessions",
        "counterless",
        "limitless",
    ],
)
def test_the_simulator_finds_a_planted_bug(store: type[MemoryStore], wallet: type[Wallet]) -> None:
    for seed in range(300):
        if not run_seed(seed, store_factory=store, wallet_class=wallet).ok:
            return
    pytest.fail(f"300 seeds and no violation with {store.__name__} / {wallet.__name__}")
