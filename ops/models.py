"""The ops app stores nothing of its own (jobs live in Redis); this model only carries its permissions."""
from django.db import models
from django.utils.translation import gettext_lazy as _


class JobsAccess(models.Model):
    class Meta:
        managed = False  # no table
        verbose_name = _("background jobs access")
        verbose_name_plural = _("background jobs access")
        default_permissions = ()
        permissions = [
            ("view_jobs", "Can see queues, workers and failed jobs"),
            ("manage_jobs", "Can re-queue and discard failed jobs"),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)  # no rows: the model only carries permissions
