from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _approvals_badge(request: Any) -> Any:
    from coupons.admin import approvals_badge  # imported when a page is drawn, not while apps load

    return approvals_badge(request)


def _grant_items(qs: Any) -> list[Any]:
    from django.urls import reverse
    from django.utils.translation import gettext

    from core.approvals import WaitingItem

    items = []
    for grant in qs.select_related("inventory", "operator", "client", "tenant"):
        items.append(WaitingItem(
            kind="grant", pk=grant.pk, what=grant.inventory.name,
            size=gettext("%(count)s members") % {"count": f"{grant.total:,}"},
            requested_by=str(grant.operator or grant.client or "—"), requested_by_id=grant.operator_id,
            requested_at=grant.created_at, decide_url=reverse("admin:coupons_coupongrant_decide", args=[grant.pk]),
            tenant=grant.tenant.name))
    return items


def _grants_waiting(tenant_id: Any) -> Any:
    from coupons.services.grant import grants_waiting

    return grants_waiting(tenant_id)


class CouponsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "coupons"
    verbose_name = _("Coupons")

    def ready(self) -> None:
        from core import console

        # The approvals inbox (issue #20): in the console header of everyone who may approve, with the count of
        # policies waiting for them (0 included, so an approver sees the inbox is empty rather than wonder).
        console.register_page(_("Approvals"), "admin:coupons_couponpolicy_approvals",
                              permission="coupons.approve_couponpolicy", order=1, badge=_approvals_badge)
        from core.approvals import ApprovalKind, register_kind

        # Large grants wait for an approver (issue #20): listed in the same inbox and counted in the same badge.
        register_kind(ApprovalKind(key="grant", label=_("Grants to members waiting for approval"), order=10,
                                   permission="coupons.approve_coupongrant", waiting=_grants_waiting,
                                   requester_field="operator_id", items=_grant_items))
