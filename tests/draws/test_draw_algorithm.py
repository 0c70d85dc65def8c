"""R-DRAW-2: the pure algorithm — deterministic, unbiased indices, no duplicates, tiers in order."""
from __future__ import annotations

import hashlib
import hmac
from collections import Counter

from draws import algorithm

SEED = bytes(range(32))
MEMBERS = [f"m-{i:05d}" for i in range(10_000)]


def test_same_seed_and_participants_give_identical_winners_over_100_reruns():
    first = algorithm.winners(SEED, MEMBERS, [(1, 10), (2, 90)])
    assert len(first) == 100
    for _ in range(100):
        assert algorithm.winners(SEED, MEMBERS, [(1, 10), (2, 90)]) == first


def test_winners_are_never_duplicated_even_when_everyone_wins():
    picked = algorithm.pick(SEED, MEMBERS[:500], 500)
    assert sorted(picked) == MEMBERS[:500]
    assert max(Counter(algorithm.pick(SEED, MEMBERS, 1000)).values()) == 1


def test_tiers_are_filled_in_order_with_ranks_from_one():
    result = algorithm.winners(SEED, MEMBERS, [(7, 2), (3, 3)])
    assert [(tier, rank) for tier, rank, _ in result] == [(7, 1), (7, 2), (3, 1), (3, 2), (3, 3)]
    assert [m for _, _, m in result] == algorithm.pick(SEED, MEMBERS, 5)


def test_fewer_participants_than_prizes_fill_the_first_tiers_only():
    assert algorithm.winners(SEED, ["a", "b", "c"], [(1, 2), (2, 5)]) == [
        (1, 1, algorithm.pick(SEED, ["a", "b", "c"], 3)[0]), (1, 2, algorithm.pick(SEED, ["a", "b", "c"], 3)[1]),
        (2, 1, algorithm.pick(SEED, ["a", "b", "c"], 3)[2])]
    assert algorithm.winners(SEED, [], [(1, 2)]) == []


def test_the_first_pick_follows_the_published_recipe():
    # Recomputed by hand from the README: block 0 = HMAC-SHA256(seed, 0 as 8 bytes), first 8 bytes big-endian.
    n = len(MEMBERS)
    value = int.from_bytes(hmac.new(SEED, (0).to_bytes(8, "big"), hashlib.sha256).digest()[:8], "big")
    assert value < (1 << 64) - ((1 << 64) % n)
    assert algorithm.pick(SEED, MEMBERS, 1) == [MEMBERS[value % n]]


def test_rejection_sampling_skips_blocks_above_the_limit():
    stream = algorithm.HmacStream(SEED)
    # m = 2**63 + 1 rejects about half of all blocks: over 200 draws some must have been skipped, none biased high.
    values = [stream.below((1 << 63) + 1) for _ in range(200)]
    assert stream.counter > 200
    assert all(0 <= v <= (1 << 63) for v in values)


def test_a_different_seed_gives_a_different_order():
    assert algorithm.pick(SEED, MEMBERS, 20) != algorithm.pick(bytes(32), MEMBERS, 20)


def test_each_member_is_picked_about_equally_often():
    counts = Counter()
    members = ["a", "b", "c", "d"]
    for i in range(4000):
        counts[algorithm.pick(i.to_bytes(32, "big"), members, 1)[0]] += 1
    assert all(850 <= counts[m] <= 1150 for m in members), counts


def test_participants_sort_by_utf8_bytes():
    members = ["b", "a", "Z", "é", "가", "aa", "😀"]
    assert algorithm.sort_participants(members) == sorted(members, key=lambda m: m.encode())
