"""One error shape for the whole API: ``{"code", "message", "details"}`` (API.md, Conventions)."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied, RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.exceptions import DomainError
from django.db import InterfaceError, OperationalError
from core import redis as core_redis
from django.http import JsonResponse
from core.error_pages import page_not_found

logger = logging.getLogger("coupons.api")

_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid",
}


def error_response(code: str, message: str, http_status: int, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response({"code": code, "message": message, "details": details or {}}, status=http_status, headers=headers)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        retry = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else None
        return error_response(exc.code, exc.message, exc.status, exc.details, retry)
    if isinstance(exc, RequestDataTooBig):  # a chunked body past DATA_UPLOAD_MAX_MEMORY_SIZE (core.api.bodies)
        limit = settings.COUPON_API_MAX_BODY_BYTES
        return error_response("request_too_large", _("The request body is larger than %(limit)s bytes.")
                              % {"limit": f"{limit:,}"}, 413, {"max_bytes": limit})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code = getattr(exc, "api_code", None) or _CODES.get(type(exc), "error")
        headers: dict[str, str] = {}
        details: dict[str, Any]
        if isinstance(exc, exceptions.ValidationError):
            details = {"fields": exc.detail} if isinstance(exc.detail, dict) else {"errors": exc.detail}
            # Message in the request's language (Accept-Language, issue #11); ``code`` never changes with it.
            message = _("The request is not valid — %(error)s") % {"error": _first_message(exc.detail)}
        else:
            details = {}
            message = str(exc.detail)
        wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]  # not in the stubs
        if wait is not None:
            headers["Retry-After"] = str(int(wait) + 1)
            details["retry_after"] = int(wait) + 1
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        return error_response(code, message, exc.status_code, details, headers or None)
    outage = dependency_outage(exc)
    if outage is not None:
        return error_response(outage.code, outage.message, outage.status, outage.details,
                              {"Retry-After": str(outage.details["retry_after"])})
    # Unexpected: log with the traceback, answer in the same shape rather than an HTML page.
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__ if context.get("view") else "?")
    return error_response("server_error", _("An internal error occurred. It has been logged."),
                          status.HTTP_500_INTERNAL_SERVER_ERROR)


def dependency_outage(exc: BaseException) -> DomainError | None:
    """The 503 answer for an exception that means PostgreSQL or Redis is not answering (issue #18), else None.

    Such a request changed nothing (its transaction never committed), so the client may simply retry; a 500 would
    say "our bug". Lock-wait and serialization failures are not outages and keep their own handling."""
    if core_redis.is_outage(exc):
        core_redis.mark_down(exc)
        logger.warning("Redis is not answering: %s", exc)
        return core_redis.DependencyUnavailable(dependency="redis")
    if isinstance(exc, (OperationalError, InterfaceError)):
        cause = getattr(exc, "__cause__", None)
        sqlstate = getattr(cause, "sqlstate", None) or ""
        # Class 08 = connection exception; no sqlstate = the client library could not reach or lost the server;
        # 57P01..57P03 = the server is shutting down or not accepting connections yet.
        if not sqlstate or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
            logger.warning("PostgreSQL is not answering: %s", exc)
            return core_redis.DependencyUnavailable(
                dependency="database", retry_after=int(getattr(settings, "COUPON_DB_RETRY_AFTER_SECONDS", 5)))
    return None


def not_found_view(request, exception=None):
    """404 for unknown URLs: the API error shape under /api/, the console's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": _("No such API endpoint."), "details": {}}, status=404)
    return page_not_found(request, exception)
