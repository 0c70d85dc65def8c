"""RQ entry point of the ``exports`` queue: takes an id, calls the service (STYLE.md)."""
from __future__ import annotations

from exports.services import export_write


def export_run(export_id: int) -> None:
    export_write(export_id=export_id)
