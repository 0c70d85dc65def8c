"""Console actions that change money or access ask first (R-OPS console polish).

``@confirm_action()`` under ``@admin.action(...)`` makes an action show a confirmation page listing what it will act
on; only the page's "Yes" (a POST carrying ``confirm=yes`` and the same selection) runs it. The action itself still
reports what it did with a message. The selection is re-read through the admin's tenant-scoped queryset on the
confirming POST, so the page can never widen it.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

SHOWN = 50  # objects listed on the page; the count says how many in all


def confirm_action(question: Any = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> Any:
            if request.POST.get("confirm") == "yes":
                return func(modeladmin, request, queryset)
            opts = modeladmin.model._meta
            total = queryset.count()
            description = getattr(wrapper, "short_description", func.__name__)
            context = {
                **modeladmin.admin_site.each_context(request),
                "title": _("Are you sure?"),
                "subtitle": None,
                "opts": opts,
                "app_label": opts.app_label,
                "action_name": func.__name__,
                "action_description": description,
                "question": question,
                "objects": list(queryset[:SHOWN]),
                "total": total,
                "more": max(total - SHOWN, 0),
                "selected_ids": [str(pk) for pk in queryset.values_list("pk", flat=True)],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": modeladmin.media,
            }
            return TemplateResponse(request, "admin/confirm_action.html", context)

        return wrapper

    return decorator
