"""gunicorn settings for metrics in multiprocess mode: ``gunicorn -c python:core.gunicorn_conf …``.

A gunicorn worker that exits leaves its metric files in PROMETHEUS_MULTIPROC_DIR; marking it dead drops its live
gauges (counters and histograms keep counting, as Prometheus expects).
"""
from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
