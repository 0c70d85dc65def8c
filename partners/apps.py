from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "partners"
    verbose_name = _("Partners")

    def ready(self) -> None:
        # Loaded with the apps, not at import: partners' modules import coupons' models.
        from coupons.services.issue import register_partner_code_claim
        from partners.claims import claim_partner_code

        register_partner_code_claim(claim_partner_code)
