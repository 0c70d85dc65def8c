from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = _("Dashboard")

    def ready(self) -> None:
        from core import console

        # First link of the console navigation (R-REP-3): every staff user may open it; it shows their tenant only.
        console.register_page(_("Dashboard"), "dashboard:index", order=0)
