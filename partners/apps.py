from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _distribution_items(qs: Any) -> list[Any]:
    from django.urls import reverse
    from django.utils.translation import gettext

    from core.approvals import WaitingItem

    items = []
    for dist in qs.select_related("partner", "inventory", "batch", "tenant"):
        items.append(WaitingItem(
            kind="distribution", pk=dist.pk,
            what=gettext("%(inventory)s → %(partner)s") % {"inventory": dist.inventory.name,
                                                          "partner": dist.partner.name}
            + (f" · {dist.batch.batch_code}" if dist.batch_id else ""),
            size=gettext("%(count)s codes") % {"count": f"{dist.quantity:,}"}, requested_by=dist.actor_label,
            requested_by_id=dist.created_by_id, requested_at=dist.created_at,
            decide_url=reverse("admin:partners_distribution_decide", args=[dist.pk]), tenant=dist.tenant.name))
    return items


def _waiting(tenant_id: int | None) -> Any:
    from partners.distribution import distributions_waiting

    return distributions_waiting(tenant_id)


class PartnersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "partners"
    verbose_name = _("Partners")

    def ready(self) -> None:
        # Loaded with the apps, not at import: partners' modules import coupons' models.
        from coupons.services.issue import register_partner_code_claim
        from partners.claims import claim_partner_code

        register_partner_code_claim(claim_partner_code)

        from core.approvals import ApprovalKind, register_kind

        # Large distributions wait for an approver (issue #20): listed in the approvals inbox, counted in the header.
        register_kind(ApprovalKind(key="distribution", label=_("Partner distributions waiting for approval"),
                                   order=20, permission="partners.approve_distribution", waiting=_waiting,
                                   requester_field="created_by_id", items=_distribution_items))
