"""DynamoDB calls per request, counted with botocore's `before-call` hook on a Wallet over DynamoDB Local."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench.common import BET, CallCounter, do_body, local_wallet, slot_tag

# scenario -> (target from the issue, expected reply status)
TARGETS: dict[str, tuple[int, str]] = {
    "bet": (2, "OK"),
    "win": (2, "OK"),
    "balance": (1, "OK"),
    "duplicate trx": (2, "OK"),
    # Two reads: a refusal on the balance is confirmed by reading the trx_id's slot again (wallet.money.mover,
    # Mover._confirmed: a twin that landed between the two halves of the first read is a replay, not a refusal).
    "not_enough_money": (2, "not_enough_money"),
    "session_not_found": (1, "session_not_found"),
    "bad sign": (0, "sign_not_found"),
}


def count_calls(endpoint: str, table: str) -> list[dict[str, Any]]:
    wallet = local_wallet(endpoint, table)
    counter = CallCounter(wallet.store.client)
    player = f"calls-{uuid.uuid4().hex[:8]}"
    wallet.create_player(player, "FUN", BET * 10)
    revoked = wallet.new_session(player).token
    session = wallet.new_session(player).token  # revokes the first
    round_id = uuid.uuid4().hex[:12]
    bet = do_body(session, f"bet-{round_id}", minus=BET, tag=slot_tag(round_id))
    bodies = {
        "bet": bet,
        "win": do_body(session, f"win-{round_id}", plus=BET * 2, tag=slot_tag(round_id)),
        "balance": do_body(session, f"bal-{round_id}"),
        "duplicate trx": bet,
        "not_enough_money": do_body(session, f"big-{round_id}", minus=BET * 1000, tag=slot_tag(round_id)),
        "session_not_found": do_body(revoked, f"old-{round_id}", minus=BET, tag=slot_tag(round_id)),
        "bad sign": json.dumps({**json.loads(bet), "trx_id": f"forged-{round_id}"}),
    }
    counter.take()
    rows = []
    for scenario, body in bodies.items():
        target, expected = TARGETS[scenario]
        outcome = wallet.handle_do(body)
        calls = counter.take()
        rows.append(
            {
                "scenario": scenario,
                "target": target,
                "measured": len(calls),
                "calls": calls,
                "reply": outcome.reply.status,
                "reply_as_expected": outcome.reply.status == expected,
                "met": len(calls) <= target and outcome.reply.status == expected,
            }
        )
    return rows
