"""The console's own pages beside the model admins: one registry, one navigation bar (R-OPS).

Design: docs/design/console-and-i18n.md#core-console.
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
    # A count shown beside the label (e.g. approvals waiting for the user); None = no count.
    badge: Callable[[HttpRequest], int | None] | None = None

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
                  order: int = 100, badge: Callable[[HttpRequest], int | None] | None = None) -> None:
    """Add (or replace, keyed by url_name) a page in the console navigation; ``badge(request)`` gives a count to show
    beside its label on every console page (one cheap query: it runs on each page view)."""
    _pages[url_name] = ConsolePage(label=label, url_name=url_name, permission=permission, order=order, badge=badge)


def pages_for(request: HttpRequest) -> list[dict[str, Any]]:
    items = []
    for page in sorted(_pages.values(), key=lambda p: (p.order, str(p.label))):
        if not page.allowed(request):
            continue
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            continue
        items.append({"label": page.label, "url": url, "active": request.path.startswith(url),
                      "badge": page.badge(request) if page.badge is not None else None,
                      "key": page.url_name.replace(":", "-")})
    return items


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: ``console_pages`` for admin pages only (cheap elsewhere)."""
    if not request.path.startswith("/admin/"):
        return {}
    return {"console_pages": pages_for(request)}
