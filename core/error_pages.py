"""The console's own 403, 404 and 500 pages (issue #20): styled like every console page, in the reader's language.

Django's fallbacks are a bare, English "403 Forbidden" when no ``403.html`` exists; here each error renders
``templates/console_error.html`` (the console's frame) with the admin site's context, so the header, the
navigation the user may open and the language switcher are there. The 500 page must not fail itself: when the
admin context cannot be built (the database is what failed), it renders without it.
"""
from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.contrib import admin
from django.http import JsonResponse
from pathlib import Path

logger = logging.getLogger(__name__)


def _render(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    context: dict = {"title": title, "message": message, "status": status, "is_error_page": True}
    try:
        context.update(admin.site.each_context(request))
        context["title"] = title
    except Exception:  # noqa: BLE001 - a page about a failure must not fail
        logger.warning("error page without the console context", exc_info=True)
    body: str
    try:
        body = loader.render_to_string("console_error.html", context, request=request)
    except Exception:  # noqa: BLE001
        logger.exception("the console error page could not be rendered")
        body = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{message}</p>"
    return HttpResponse(body, status=status)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "permission_denied", "message": _("You do not have permission to do this."),
                             "details": {}}, status=403)
    return _render(request, 403, _("You may not open this page"),
                   _("Your account does not have the permission this page needs. Ask an administrator of your "
                     "company to give it to you if you need it."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, 404, _("Page not found"),
                   _("There is no page at this address. It may have been deleted, or the link may be wrong."))


def server_error(request: HttpRequest) -> HttpResponse:
    return _render(request, 500, _("Something went wrong"),
                   _("The page could not be shown because of an error on our side. It has been logged; please try "
                     "again in a moment."))


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, 400, _("Bad request"), _("The request could not be understood."))


_FAVICON = None


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: browsers ask for it on every page; without it every console page logged a 404 (issue #20)."""
    global _FAVICON
    if _FAVICON is None:
        _FAVICON = (Path(__file__).resolve().parent / "static" / "core" / "favicon.ico").read_bytes()
    response = HttpResponse(_FAVICON, content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response
