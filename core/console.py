"""The console's own pages beside the model admins: one registry, one navigation bar (R-OPS).

An app with custom console pages (jobs, exports, dashboard, risk alarms, …) registers each page once, usually in
its ``AppConfig.ready()``::

    from core import console
    console.register_page("Jobs", "ops:jobs", permission="ops.view_jobs", order=10)

and mounts its views under ``/admin/<app>/`` in coupon_project/urls.py, each wrapped by ``admin.site.admin_view``
(login, staff and CSRF as for every admin page). The ``console`` context processor gives every template the pages
the user may open; ``templates/admin/base_site.html`` shows them as the navigation bar.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class ConsolePage:
    label: Any  # str or a lazy translation
    url_name: str
    permission: str | Callable[[HttpRequest], bool] | None = None
    order: int = 100

    def allowed(self, request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_active or not user.is_staff:
            return False
        if self.permission is None:
            return True
        if callable(self.permission):
            return bool(self.permission(request))
        return user.has_perm(self.permission)


_pages: dict[str, ConsolePage] = {}


def register_page(label: Any, url_name: str, *, permission: str | Callable[[HttpRequest], bool] | None = None,
                  order: int = 100) -> None:
    """Add (or replace, keyed by url_name) a page in the console navigation."""
    _pages[url_name] = ConsolePage(label=label, url_name=url_name, permission=permission, order=order)


def pages_for(request: HttpRequest) -> list[dict[str, Any]]:
    items = []
    for page in sorted(_pages.values(), key=lambda p: (p.order, str(p.label))):
        if not page.allowed(request):
            continue
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        items.append({"label": page.label, "url": url, "active": request.path.startswith(url)})
    return items


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: ``console_pages`` for admin pages only (cheap elsewhere)."""
    if not request.path.startswith("/admin/"):
        return {}
    return {"console_pages": pages_for(request)}
