"""Four-eyes approvals (issue #20): what waits for an approver, across apps, without apps importing each other.

Each app that has something to approve registers a kind once (``register_kind`` in its ``AppConfig.ready()``):
coupons its policies and grants, partners its distributions. The approvals inbox and the console header count read
every kind from here, so a lower app (coupons) shows what a higher one (partners) has waiting.

The rules every kind shares: only a user with the kind's approve permission decides; never the one who asked
(``RequesterCannotDecide``; the models keep a CHECK ``decided_by <> requested_by`` as the database's part); a decision
is a compare-and-set on the status, so two approvals of one request carry it out once (``AlreadyDecided``); a
rejection needs a reason.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.exceptions import InvalidInput, InvalidState, PermissionDenied


class ApproverRoleRequired(PermissionDenied):
    code = "approver_role_required"
    default_message = _("You need the approver role to approve or reject this.")


class RequesterCannotDecide(PermissionDenied):
    code = "self_approval"
    default_message = _("Whoever asked for this cannot approve or reject it: another approver must decide.")


class AlreadyDecided(InvalidState):
    code = "already_decided"
    default_message = _("This request was already decided; nothing was changed.")


class ReasonRequired(InvalidInput):
    code = "reason_required"
    default_message = _("Say why it is rejected.")


def needs_approval(threshold: int | None, size: int) -> bool:
    """A request of ``size`` (codes, members) needs an approver when the tenant set a threshold and it is reached."""
    return threshold is not None and size >= threshold


def check_decider(*, user: Any, permission: str, requested_by_id: int | None) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.has_perm(permission):
        raise ApproverRoleRequired()
    if requested_by_id is not None and requested_by_id == user.pk:
        raise RequesterCannotDecide()


def decide(*, waiting: QuerySet[Any], status: str, to: str, user: Any, permission: str,
           requested_by_id: int | None, **changes: Any) -> None:
    """Compare-and-set ``status`` → ``to`` on the one request in ``waiting`` (filtered by pk and tenant), recording
    the decider: of two concurrent decisions one changes the row, the other (blocked on the row lock until the first
    commits) finds it decided → ``AlreadyDecided``."""
    check_decider(user=user, permission=permission, requested_by_id=requested_by_id)
    if not waiting.filter(status=status).update(status=to, decided_by=user, decided_at=timezone.now(), **changes):
        raise AlreadyDecided()


def reason_of(reason: Any) -> str:
    text = (reason or "").strip() if isinstance(reason, str) or reason is None else ""
    if not text:
        raise ReasonRequired(details={"field": "reason"})
    return text[:2000]


@dataclass(frozen=True)
class WaitingItem:
    """One row of the approvals inbox."""

    kind: str
    pk: int
    what: str
    size: str
    requested_by: str
    requested_by_id: int | None
    requested_at: Any
    decide_url: str
    tenant: str


@dataclass(frozen=True)
class ApprovalKind:
    key: str
    label: Any  # plural heading in the inbox, e.g. "Partner distributions"
    order: int
    permission: str  # e.g. "partners.approve_distribution"
    waiting: Callable[[int | None], QuerySet]  # tenant id (None = all) → what waits, oldest first
    requester_field: str  # the user column of whoever asked, e.g. "created_by_id"
    items: Callable[[QuerySet], list[WaitingItem]]


_kinds: dict[str, ApprovalKind] = {}


def register_kind(kind: ApprovalKind) -> None:
    _kinds[kind.key] = kind


def kinds() -> list[ApprovalKind]:
    return sorted(_kinds.values(), key=lambda k: (k.order, k.key))


def waiting_count(*, user: Any, tenant_id: int | None) -> int:
    """What waits for ``user`` across every kind they may decide: everyone's requests but their own. One count per
    kind (each on an index of tenant and status)."""
    total = 0
    for kind in kinds():
        if not user.has_perm(kind.permission):
            continue
        total += kind.waiting(tenant_id).exclude(**{kind.requester_field: getattr(user, "pk", None)}).count()
    return total
