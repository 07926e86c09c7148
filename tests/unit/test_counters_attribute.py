"""The account's limit counters as DynamoDBStore stores them: one packed string attribute (compact JSON), read back to
the last digit, and the map form that accounts written before it hold still read."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from wallet.money import dynamodb
from wallet.money.limits import SLOTS, Counter, Counters

AMOUNTS = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15, places=2)
COUNTERS = st.dictionaries(
    st.sampled_from(SLOTS), st.builds(Counter, st.sampled_from(["2026-12-04", "2026-W49", "2026-12"]), AMOUNTS)
).map(Counters)


@given(COUNTERS)
def test_the_packed_string_reads_back_exactly(counters: Counters) -> None:
    value = dynamodb._counters_value(counters)
    assert set(value) == {"S"}  # one string attribute, not a map of maps
    back = dynamodb._counters_from_value(value)
    assert back.by_slot == counters.by_slot
    for slot, counter in counters.by_slot.items():
        assert str(back.by_slot[slot].amount) == str(counter.amount)  # the same digits, never through float


def test_it_is_compact_json_keyed_like_the_map_was() -> None:
    counters = Counters({SLOTS[0]: Counter("2026-12-04", Decimal("-12.50"))})
    packed = dynamodb._counters_value(counters)["S"]
    name = dynamodb._slot_name(SLOTS[0])
    assert json.loads(packed) == {name: ["2026-12-04", "-12.50"]}
    assert " " not in packed


def test_an_account_written_with_the_map_form_still_reads() -> None:
    name = dynamodb._slot_name(SLOTS[1])
    legacy = {"M": {name: {"M": {"period": {"S": "2026-W49"}, "amount": {"N": "200"}}}}}
    assert dynamodb._counters_from_value(legacy).by_slot == {SLOTS[1]: Counter("2026-W49", Decimal(200))}
