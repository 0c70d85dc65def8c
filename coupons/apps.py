from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _approvals_badge(request: Any) -> Any:
    from coupons.admin import approvals_badge  # imported when a page is drawn, not while apps load

    return approvals_badge(request)


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
