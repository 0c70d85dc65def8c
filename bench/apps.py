from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmarks (``manage.py bench <name>``): developer tooling on top of every app, imported by none (#22)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "bench"
    verbose_name = "Benchmarks"
