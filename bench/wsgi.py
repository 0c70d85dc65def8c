"""WSGI application of the benchmark server (``manage.py bench claim|redeem``): the product's application with the
framework floor mounted (``bench.urls``), through the same middleware, settings and gunicorn configuration."""
from __future__ import annotations

import os

from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coupon_project.settings")


class BenchHandler(WSGIHandler):
    def get_response(self, request):  # type: ignore[no-untyped-def]
        request.urlconf = "bench.urls"  # per request: the product's settings (ROOT_URLCONF) stay untouched
        return super().get_response(request)


def _application() -> BenchHandler:
    import django  # noqa: PLC0415 - set up before the handler loads the middleware, as get_wsgi_application does

    django.setup(set_prefix=False)
    return BenchHandler()


application = _application()
