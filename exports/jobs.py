"""RQ entry point of the ``exports`` queue: takes an id, calls the service (STYLE.md)."""
from __future__ import annotations

from exports.services import export_tenant, export_write


def export_run(export_id: int, tenant_id: int | None = None) -> None:
    """``tenant_id``: passed by every job queued since issue #23; looked up for one queued before."""
    export_write(export_id=export_id, tenant_id=export_tenant(export_id) if tenant_id is None else tenant_id)
