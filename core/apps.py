from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Platform"

    def ready(self) -> None:
        from core.api import authentication  # noqa: F401  (registers the OpenAPI auth extension)
