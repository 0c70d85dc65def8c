"""``manage.py bench <name> [options]``: the project's benchmarks, each printing one JSON object.

Benchmarks live in the top-level ``bench`` package (``bench/<name>.py``) and register themselves with
``bench.registry.register``; a new one is a module there plus its import below. Results are recorded by hand in
``bench/RESULTS.md`` (machine, date, figures).
"""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

# Importing a module registers its benchmarks.
from bench import api, best, dashboard, draws, exports, generate, guess, layouts, partners, profile, scale  # noqa: F401
from bench.registry import REGISTRY
from core.commands import BaseCommand


class Command(BaseCommand):
    help = "Run a benchmark and print its result as one JSON object (see bench/RESULTS.md)."

    def add_arguments(self, parser: CommandParser) -> None:
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
