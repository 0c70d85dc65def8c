"""503 instead of 500 when PostgreSQL or Redis is not answering (issue #18).

The API's own exception handler (core/api/errors.py) answers in the error shape for everything raised inside an API
view; this middleware covers other views — console pages, the schema, anything outside DRF — and ``handler500``
(``server_error_view``) whatever escapes elsewhere (a middleware), with the same 503, ``Retry-After`` and, under
``/api/``, the same JSON shape.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from core.api.errors import dependency_outage
from core.error_pages import server_error
from django.utils.translation import gettext


class DependencyOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return outage_response(request, exception)


def outage_response(request: HttpRequest, exception: BaseException | None) -> HttpResponse | None:
    """The 503 for an exception that means a dependency is not answering, else None."""
    outage = dependency_outage(exception) if exception is not None else None
    if outage is None:
        return None
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(outage.as_dict(), status=503)
    else:
        response = HttpResponse(outage.message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(outage.details["retry_after"])
    return response


def server_error_view(request: HttpRequest) -> HttpResponse:
    """``handler500``: Django calls it for an exception nothing else handled — also one raised in a middleware (the
    console's language middleware reads the user from the database). A dependency outage answers 503 instead."""
    response = outage_response(request, sys.exc_info()[1])
    if response is not None:
        return response
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "message": gettext("An internal error occurred. It has been "
                                                                         "logged."), "details": {}}, status=500)
    return server_error(request)
