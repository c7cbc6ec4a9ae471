"""The fixed batch shapes and the stable prompt slots (pure Python)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softprompt.core.serving.shapes import (
    bucket_for,
    capacity_for,
    length_buckets,
    row_buckets,
    rows_for,
)
from softprompt.core.serving.slots import PromptSlots


def test_buckets():
    assert row_buckets(32) == (1, 2, 4, 8, 16, 32)
    assert row_buckets(12) == (1, 2, 4, 8, 12)
    assert row_buckets(1) == (1,)
    assert length_buckets(256) == (4, 8, 16, 32, 64, 128, 256)
    assert length_buckets(3) == (3,)
    assert [rows_for(n, row_buckets(12)) for n in (1, 2, 3, 5, 9, 12)] == [1, 2, 4, 8, 12, 12]
    assert [capacity_for(n) for n in (0, 1, 2, 3, 4, 5, 64, 65)] == [1, 1, 2, 4, 4, 8, 64, 128]
    with pytest.raises(ValueError, match="over the largest bucket"):
        bucket_for(13, row_buckets(12))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.sampled_from("abcdefghij"), max_size=10), min_size=1, max_size=8))
def test_slots_stay_put(rounds):
    slots = PromptSlots()
    previous: dict[str, int] = {}
    capacity = 0
    for names in rounds:
        now = slots.assign(names)
        assert set(now) == names
        assert len(set(now.values())) == len(now)  # one task per slot
        assert all(0 <= i < slots.capacity for i in now.values())
        assert slots.capacity >= capacity  # the variable never shrinks
        capacity = slots.capacity
        for name in names & set(previous):
            assert now[name] == previous[name]  # a served task keeps its slot
        previous = now
