"""Console login throttling (issue #17) with django-axes, per (username, address) pair.

Design: docs/design/claims-and-limits.md#core-login-throttle.
"""
from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext
from django.contrib import admin


class ThrottledLoginBackend(AxesStandaloneBackend):
    """axes' backend, except that an ``authenticate()`` call without a request (a shell, a management command, the
    test client's ``login``) is not a login form and is left to the next backend instead of raising. Every login
    page passes its request, so the console's login is always throttled."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_response(request: Any, original_response: Any = None, credentials: Any = None) -> Any:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = gettext("Too many failed logins for this account from your address. Try again in %(minutes)d minutes, "
                      "or ask your tenant administrator to unlock it.") % {"minutes": minutes}

    context = {**admin.site.each_context(request), "message": message, "title": gettext("Login locked")}
    return render(request, "admin/lockout.html", context, status=429)
