"""Console roles (R-TEN-3) as Django groups, kept in step with the models after every migrate.

- viewer: sees everything of its tenant, changes nothing.
- operator: runs the day-to-day work (events, draft policies, inventories, batches, API clients).
- approver: sees everything and approves or rejects policies, large partner distributions and large grants (never
  their own request; see core.approvals, issue #20).
"""
from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.utils.translation import pgettext_lazy

TENANT_APPS = ["core", "events", "coupons", "partners", "draws", "rewards", "exports", "risk"]
# Models whose rows only a superuser or the system may create or change.
SYSTEM_MODELS = {"tenant", "auditlog", "idempotencyrecord", "user"}

ROLE_VIEWER = "viewer"
ROLE_OPERATOR = "operator"
ROLE_APPROVER = "approver"
ROLES = [ROLE_VIEWER, ROLE_OPERATOR, ROLE_APPROVER]
# The groups keep their English names (code and scripts find them by name); people read them in their language
# wherever a group is shown (issue #20): lists, filters, the user form, breadcrumbs — see ``group_label``.
ROLE_LABELS: dict[str, object] = {ROLE_VIEWER: pgettext_lazy("role", "viewer"), ROLE_OPERATOR: pgettext_lazy("role", "operator"),
               ROLE_APPROVER: pgettext_lazy("role", "approver")}


def register_group_label(name: str, label: object) -> None:
    """An app's own group (e.g. ops' job operators) read in the reader's language too."""
    ROLE_LABELS[name] = label


def group_label(name: str) -> str:
    """A group's display name: a role's in the reader's language, any other group's as named."""
    label = ROLE_LABELS.get(name)
    return str(label) if label is not None else name


def _group_str(group: Group) -> str:
    return group_label(group.name)


def install_group_labels() -> None:
    """Every ``str(group)`` — admin lists, filters, pickers, breadcrumbs, history — shows the role's display name."""
    Group.__str__ = _group_str  # type: ignore[method-assign,assignment]



APPROVE_CODENAMES = {"approve_couponpolicy", "approve_distribution", "approve_coupongrant"}


def _permissions() -> dict[str, list[Permission]]:
    perms = list(Permission.objects.filter(content_type__app_label__in=TENANT_APPS).select_related("content_type"))
    view = [p for p in perms if p.codename.startswith("view_")]
    operate = [p for p in perms if p.codename.split("_", 1)[0] in ("add", "change")
               and p.content_type.model not in SYSTEM_MODELS]
    approve = [p for p in perms if p.codename in APPROVE_CODENAMES]
    return {ROLE_VIEWER: view, ROLE_OPERATOR: view + operate, ROLE_APPROVER: view + approve}


def ensure_roles(**_: object) -> None:
    for name, perms in _permissions().items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.set(perms)
