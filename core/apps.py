from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def keep_prepared_statements(sender: Any, connection: Any, **kwargs: Any) -> None:
    """psycopg keeps ``DB_PREPARED_MAX`` prepared statements per connection (settings: one set per tenant served)."""
    if connection.vendor == "postgresql":
        connection.connection.prepared_max = settings.DB_PREPARED_MAX


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from core import metrics  # noqa: F401  (registers the Prometheus collectors once per process)
        from core.api import authentication  # noqa: F401  (registers the OpenAPI auth extension)
        from core.roles import ensure_roles, install_group_labels

        connection_created.connect(keep_prepared_statements, dispatch_uid="core.keep_prepared_statements")
        install_group_labels()  # role groups read in the console's language (issue #20)

        # Runs after the last app's migrations so every permission exists; idempotent.
        post_migrate.connect(ensure_roles, dispatch_uid="core.ensure_roles")
