"""Configuration kept per process for ``COUPON_CONFIG_CACHE_SECONDS`` (inventories, daily-limit rules): read on every
claim or use, changed by an operator now and then. Another host sees a change within that bound
(docs/design/hosts.md); 0 turns the cache off (the test suite does)."""
from __future__ import annotations

import time
from typing import Generic, TypeVar

from django.conf import settings

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 10_000  # past this the whole cache is dropped: bounded memory without bookkeeping per entry


class ConfigCache(Generic[K, V]):
    def __init__(self) -> None:
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        return found[0] if found is not None and found[1] > time.monotonic() else None

    def put(self, key: K, value: V) -> None:
        ttl = settings.COUPON_CONFIG_CACHE_SECONDS
        if ttl <= 0:
            return
        if len(self._entries) > MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + ttl)

    def clear(self) -> None:
        self._entries.clear()
