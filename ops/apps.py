from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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
        from core.roles import register_group_label
        from ops.permissions import JOB_OPERATORS_GROUP

        # Shown wherever groups are listed, in the reader's language (issue #20).
        register_group_label(JOB_OPERATORS_GROUP, pgettext_lazy("role", "job operators"))
