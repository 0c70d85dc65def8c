"""Queries that name their tenant (issue #23): with tables distributed by tenant (Citus), a statement routes to one
node only when every tenant table in it is constrained by ``tenant_id``, joined tables too, and single-row writes
too. tests/tenant_queries.py checks the member API paths for it."""
from __future__ import annotations

from typing import Any

from django.db import models


def joined_in_tenant(tenant: Any, *paths: str) -> dict[str, Any]:
    """Filter keywords putting each related table reached by ``paths`` (``"inventory"``, ``"inventory__policy"``) in
    ``tenant`` (a Tenant or its id). A related row is always in its owner's tenant, so the result is unchanged; the
    predicate lands on the join Django already makes for the path (select_related or a filter)."""
    tenant_id = getattr(tenant, "pk", tenant)
    return {f"{path}__tenant_id": tenant_id for path in paths}


def save_in_tenant(obj: models.Model, *fields: str) -> None:
    """``obj.save(update_fields=fields)`` as ``UPDATE … WHERE tenant_id = %s AND id = %s`` (no signals: none are
    connected to the models this is used on). The row must exist; callers hold it locked."""
    updated = type(obj)._default_manager.filter(tenant_id=obj.tenant_id, pk=obj.pk).update(  # type: ignore[attr-defined]
        **{name: getattr(obj, name) for name in fields})
    if updated != 1:
        raise models.Model.DoesNotExist(f"{type(obj).__name__} {obj.pk} of tenant {obj.tenant_id} is gone")  # type: ignore[attr-defined]
