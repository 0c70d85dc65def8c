"""Who may see and act on background jobs in the console (R-OPS-1).

- Superusers: every queue, worker and failed job.
- Members of the ``job operators`` group (or anyone granted ``ops.view_jobs`` / ``ops.manage_jobs``): a tenant's staff
  see only failed jobs whose ``meta["tenant_id"]`` is their tenant (``core.jobs.enqueue(..., tenant_id=…)``); jobs
  without a tenant, queue totals and workers are platform-wide and shown to superusers only.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.contrib.auth.models import Group, Permission

JOB_OPERATORS_GROUP = "job operators"


def can_view_jobs(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and (user.is_superuser or user.has_perm("ops.view_jobs")))


def can_manage_jobs(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and (user.is_superuser or user.has_perm("ops.manage_jobs")))


def job_visible_to(user: Any, meta: dict | None) -> bool:
    """A tenant user sees a job only when it carries their tenant id; a job without one is superuser-only."""
    if user.is_superuser:
        return True
    tenant_id = (meta or {}).get("tenant_id")
    return tenant_id is not None and getattr(user, "tenant_id", None) is not None and int(tenant_id) == user.tenant_id


def ensure_job_operators_group(**_: object) -> None:
    perms = Permission.objects.filter(content_type__app_label="ops", codename__in=["view_jobs", "manage_jobs"])
    if not perms.exists():  # the ops migration has not run yet
        return
    group, _created = Group.objects.get_or_create(name=JOB_OPERATORS_GROUP)
    group.permissions.add(*perms)
