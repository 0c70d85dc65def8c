"""``manage.py bench <name> [options]``: the project's benchmarks, each printing one JSON object.

Benchmarks live in the apps (``<app>/bench.py``) and register themselves here, so a later issue adds
``bench claim`` or ``bench export`` without touching this file::

    from core.management.commands.bench import register

    @register("generate", help="...", arguments=lambda parser: parser.add_argument("--n", type=int))
    def bench_generate(options: dict) -> dict: ...

Results are recorded by hand in ``bench/RESULTS.md`` (machine, date, figures).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.module_loading import autodiscover_modules

from core.commands import BaseCommand


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


class Command(BaseCommand):
    help = "Run a benchmark and print its result as one JSON object (see bench/RESULTS.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        autodiscover_modules("bench")  # every installed app's bench.py registers its benchmarks
        subparsers = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
        for benchmark in sorted(REGISTRY.values(), key=lambda b: b.name):
            sub = subparsers.add_parser(benchmark.name, help=benchmark.help, description=benchmark.help)
            if benchmark.arguments:
                benchmark.arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        benchmark = REGISTRY.get(options["benchmark"])
        if benchmark is None:
            raise CommandError(f"Unknown benchmark {options['benchmark']!r}; known: {', '.join(sorted(REGISTRY))}")
        result = benchmark.run(options)
        self.stdout.write(json.dumps(result, default=str))
