"""503 instead of 500 when PostgreSQL or Redis is not answering (issue #18).

The API's own exception handler (core/api/errors.py) answers in the error shape for everything raised inside an API
view; this middleware covers the rest — console pages, the schema, anything outside DRF — with the same 503,
``Retry-After`` and, under ``/api/``, the same JSON shape.
"""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


class DependencyOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from core.api.errors import dependency_outage

        outage = dependency_outage(exception)
        if outage is None:
            return None
        retry_after = str(outage.details["retry_after"])
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(outage.as_dict(), status=503)
        else:
            response = HttpResponse(outage.message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = retry_after
        return response
