"""The draw algorithm (R-DRAW-2), pure and deterministic: anyone with the participant list and the revealed seed
gets the same winners.

Design: docs/design/events-and-draws.md#draws-algorithm.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SEED_BYTES = 32
_SPACE = 1 << 64


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def seed_hash(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def participants_digest(participants: Sequence[str]) -> str:
    """sha256 of the sorted eligible list joined by newlines (UTF-8): compare it with your own copy of the list."""
    return hashlib.sha256("\n".join(participants).encode()).hexdigest()


def sort_participants(member_ids: list[str]) -> list[str]:
    # Python orders str by code point, which is the order of their UTF-8 bytes.
    return sorted(member_ids)


class HmacStream:
    def __init__(self, seed: bytes) -> None:
        self._key = seed
        self.counter = 0

    def below(self, m: int) -> int:
        if m < 1:
            raise ValueError("m must be positive")
        limit = _SPACE - (_SPACE % m)
        while True:
            block = hmac.new(self._key, self.counter.to_bytes(8, "big"), hashlib.sha256).digest()
            self.counter += 1
            value = int.from_bytes(block[:8], "big")
            if value < limit:
                return value % m


def pick(seed: bytes, participants: Sequence[str], k: int) -> list[str]:
    """The first ``k`` members of the seeded partial Fisher–Yates shuffle; the list is not copied (the swaps are kept
    in a dict), so a million participants cost only the list itself."""
    n = len(participants)
    k = min(k, n)
    stream = HmacStream(seed)
    moved: dict[int, int] = {}
    picked = []
    for i in range(k):
        j = i + stream.below(n - i)
        at_i, at_j = moved.get(i, i), moved.get(j, j)
        moved[j] = at_i
        moved[i] = at_j
        picked.append(participants[at_j])
    return picked


def winners(seed: bytes, participants: Sequence[str], tiers: Sequence[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """``(tier key, rank, member_id)`` for tiers given as ``(key, winners)`` in position order."""
    picked = pick(seed, participants, sum(count for _, count in tiers))
    result: list[tuple[int, int, str]] = []
    cursor = 0
    for key, count in tiers:
        for rank in range(1, count + 1):
            if cursor >= len(picked):
                return result
            result.append((key, rank, picked[cursor]))
            cursor += 1
    return result
