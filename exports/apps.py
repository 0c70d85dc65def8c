from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "exports"
    verbose_name = _("Exports")

    def ready(self) -> None:
        from core import console

        console.register_page(_("Exports"), "admin:exports_export_changelist", permission="exports.view_export",
                              order=30)
