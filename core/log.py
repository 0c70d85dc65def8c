"""Request context for log records: every line carries the request id and the tenant id (README "Logs").

Kept free of model imports: LOGGING instantiates these classes before the apps are loaded.
"""
from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("coupon_request", default=None)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("coupon_request_id", default="-")

# A caller-supplied id (a proxy's, a client's) is kept if it is short and plain, so logs can be joined across hops.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str:
    return _request_id.get()


def _tenant_id(request: Any) -> Any:
    if request is None:
        return None
    tenant = getattr(request, "tenant", None)  # set by some API views
    if tenant is not None:
        return getattr(tenant, "pk", None)
    user = request.__dict__.get("user")  # never force the lazy console user (a query) from a log call
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or type(wrapped).__name__ == "object":  # SimpleLazyObject not yet evaluated
        return None
    return getattr(wrapped, "tenant_id", None)


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``tenant_id`` to every record (``-`` / None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs the response after the middleware returned: it passes the request along.
        request = getattr(record, "request", None) or _request.get()
        record.request_id = getattr(request, "request_id", None) or _request_id.get()
        try:
            record.tenant_id = _tenant_id(request)
        except Exception:  # a log line must never fail because of its context
            record.tenant_id = None
        return True


class RequestIdMiddleware:
    """Gives each request an id (the caller's ``X-Request-ID`` if plain, else a new one), echoed in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token_id = _request_id.set(request_id)
        token_req = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token_id)
            _request.reset(token_req)
        response["X-Request-ID"] = request_id
        return response
