from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RiskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "risk"
    verbose_name = _("Risk control")

    def ready(self) -> None:
        from core import console

        console.register_page(_("Risk alarms"), "admin:risk_alarm_changelist", permission="risk.view_alarm", order=60)
