"""Helpers for tests that race real requests over real database connections."""
from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections

# PostgreSQL on these machines allows 100 connections in all; a race uses at most this many at once.
MAX_THREADS = 64


def race(fn: Callable[[Any], Any], args: Iterable[Any], *, threads: int = 32) -> list[Any]:
    """Run fn(arg) for every arg from up to MAX_THREADS threads released together by a barrier. Each thread works on
    its own database connection, closed when the race is over."""
    items = list(args)
    threads = min(threads, MAX_THREADS, len(items))
    barrier = threading.Barrier(threads)
    local = threading.local()
    wrappers = []

    def run(arg: Any) -> Any:
        if not getattr(local, "started", False):
            local.started = True
            wrappers.append(connections["default"])  # this thread's own connection wrapper
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
        return fn(arg)

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(run, items))
    finally:
        for wrapper in wrappers:  # the threads are gone; close their connections from here
            if wrapper.connection is not None:
                wrapper.connection.close()


def rendezvous(fn: Callable[..., Any], *, parties: int = 2, key: Callable[..., Hashable] | None = None,
               timeout: float = 10.0) -> Callable[..., Any]:
    """Wrap fn so that its first `parties` calls (per `key(*args)`, if given), each once fn has returned, wait for
    one another before going on: all of them have read before any of them writes.

    The twin tests remove a guard and show the violation appear. Without this, whether it appears depends on the
    scheduler: on a loaded machine the racing requests can run one after another and the read-then-write window
    the guard closes never opens (a CI run once saw exactly that). With it the window is certain to be open.
    Later calls do not wait; a party that never comes frees the others after `timeout` seconds."""
    lock = threading.Lock()
    calls: Counter = Counter()
    barriers: dict[Hashable, threading.Barrier] = {}

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        k = key(*args, **kwargs) if key is not None else None
        with lock:
            calls[k] += 1
            barrier = barriers.setdefault(k, threading.Barrier(parties)) if calls[k] <= parties else None
        if barrier is not None:
            try:
                barrier.wait(timeout=timeout)
            except threading.BrokenBarrierError:
                pass
        return result

    return wrapped


@contextmanager
def constraint_dropped(table: str, name: str, definition: str):
    """Temporarily remove a database guard (for the tests that prove the guard is what holds)."""
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
        cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            # the violating rows must go before the guard can come back; the test's flush empties the tables anyway
            cursor.execute(f"TRUNCATE {table} CASCADE")
            cursor.execute(definition)


def race_rounds(fn: Callable[[int, int], Any], *, rounds: int, per_round: int, threads: int = 50) -> list[list[Any]]:
    """`rounds` races of `per_round` calls fn(round, i), from one set of threads (and connections) for all rounds:
    every thread waits at a barrier at the start of each round, then makes its share of that round's calls."""
    threads = min(threads, MAX_THREADS, per_round)
    barrier = threading.Barrier(threads)
    results: list[list[Any]] = [[] for _ in range(rounds)]
    lock = threading.Lock()

    def worker(t: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=60)
                for i in range(t, per_round, threads):
                    outcome = fn(r, i)
                    with lock:
                        results[r].append(outcome)
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return results
