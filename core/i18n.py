"""Languages and time zones of the console (issue #11): which language a request is answered in, and the switcher.

Design: docs/design/console-and-i18n.md#core-i18n.
"""
from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.audit import Actor, audit_record
from core.exceptions import InvalidInput

if TYPE_CHECKING:
    from core.models import User

CONSOLE_PREFIX = "/admin/"


def language_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def console_language(user: Any) -> str | None:
    """The console language of a signed-in user: their preference, else their tenant's; None = Accept-Language."""
    if getattr(user, "language", ""):
        return user.language
    tenant = getattr(user, "tenant", None) if getattr(user, "tenant_id", None) else None
    if tenant is not None and tenant.language in language_codes():
        return tenant.language
    return None


class ConsoleLocaleMiddleware:
    """After ``AuthenticationMiddleware``: language and time zone of console pages (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None) if request.path.startswith(CONSOLE_PREFIX) else None
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        language = console_language(user)
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        tenant = user.tenant if user.tenant_id else None
        if tenant is not None:
            try:
                timezone.activate(zoneinfo.ZoneInfo(tenant.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()  # a bad value saved before validation existed: the server's zone
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def user_language_set(*, user: Any, language: str, actor: Actor) -> Any:
    """Set (or clear, with ``""``) a console user's language. Empty = follow the tenant's language."""
    if language not in ("", *language_codes()):
        raise InvalidInput(_("Unknown language “%(language)s”.") % {"language": language},
                           details={"language": language})
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        before = locked.language
        if before != language:
            locked.language = language
            locked.save(update_fields=["language"])
            audit_record(tenant=locked.tenant, actor=actor, action="user.language_set", obj=locked,
                         before={"language": before}, after={"language": language})
    user.language = language
    return user


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return fallback


def _apply(request: HttpRequest, language: str) -> bool:
    try:
        user_language_set(user=request.user, language=language, actor=Actor.user(request.user))
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return False
    # Answer the redirect target in the new language at once.
    translation.activate(console_language(request.user) or settings.LANGUAGE_CODE)
    return True


@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """The header switcher: POST ``language`` (``ko``, ``en`` or empty to follow the tenant) and ``next``."""
    _apply(request, request.POST.get("language", "").strip())
    return HttpResponseRedirect(_safe_next(request, reverse("admin:index")))


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Console language"), required=False)

    def __init__(self, *args: Any, tenant_language: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = dict(settings.LANGUAGES)
        follow = (gettext_lazy("Same as my company (%(language)s)") % {"language": names[tenant_language]}
                  if tenant_language in names else gettext_lazy("Same as my company"))
        cast(forms.ChoiceField, self.fields["language"]).choices = [("", follow), *settings.LANGUAGES]


def preferences(request: HttpRequest) -> HttpResponse:
    """The user's own settings page (language)."""
    user = cast("User", request.user)  # admin_view: a logged-in staff user
    tenant_language = user.tenant.language if user.tenant is not None else None
    if request.method == "POST":
        form = PreferencesForm(request.POST, tenant_language=tenant_language)
        if form.is_valid() and _apply(request, form.cleaned_data["language"]):
            messages.success(request, _("Your preferences were saved."))
            return HttpResponseRedirect(reverse("console-preferences"))
    else:
        form = PreferencesForm(initial={"language": user.language}, tenant_language=tenant_language)
    context = {**admin.site.each_context(request), "title": _("My preferences"), "form": form,
               "tenant": user.tenant}
    return TemplateResponse(request, "admin/core/preferences.html", context)
