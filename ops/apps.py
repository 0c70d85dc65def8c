from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ops"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from core import console
        from ops.permissions import can_view_jobs, ensure_job_operators_group

        console.register_page(_("Jobs"), "ops:jobs", permission=can_view_jobs, order=10)
        console.register_page(_("Failed jobs"), "ops:failed_jobs", permission=can_view_jobs, order=11)
        post_migrate.connect(ensure_job_operators_group, dispatch_uid="ops.ensure_job_operators_group")
