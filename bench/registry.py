"""The benchmarks ``manage.py bench`` knows: each module of this package registers its own with ``@register``.

Design: docs/design/benchmarks.md#bench-registry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandParser


@dataclass(frozen=True)
class Benchmark:
    name: str
    help: str
    run: Callable[[dict[str, Any]], dict[str, Any]]
    arguments: Callable[[CommandParser], None] | None


REGISTRY: dict[str, Benchmark] = {}


def register(name: str, *, help: str, arguments: Callable[[CommandParser], None] | None = None,
             ) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], Callable[[dict[str, Any]], dict[str, Any]]]:
    def decorate(run: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        if name in REGISTRY and REGISTRY[name].run is not run:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = Benchmark(name=name, help=help, run=run, arguments=arguments)
        return run

    return decorate
