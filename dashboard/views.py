"""The console dashboard (R-REP-3): one tenant's issued / redeemed / expired per day, budgets and alarms."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import user_tenant_id
from core.models import Tenant
from core.spreadsheets import XLSX_CONTENT_TYPE
from dashboard.charts import line_chart
from dashboard.report import MAX_REPORT_DAYS, CampaignReport, campaign_report, default_range
from dashboard.report_xlsx import report_bytes, report_filename
from dashboard.selectors import MAX_DAYS, dashboard_for, tenant_zone
from events.models import Event

DEFAULT_DAYS = 30
REPORT_LINKS = 10


class RangeForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"), required=False, label=_("Tenant"),
                                    help_text=_("Superusers only: the tenant to show."))
    start = forms.DateField(required=False, label=_("Start"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("End"), widget=forms.DateInput(attrs={"type": "date"}))
    days = forms.IntegerField(required=False, min_value=1, max_value=MAX_DAYS, label=_("Days"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].help_text = gettext("Last N days up to today (default %(days)s).") % {
            "days": DEFAULT_DAYS}

    def clean(self) -> dict[str, Any]:
        super().clean()
        return _clean_range(self.cleaned_data, MAX_DAYS)


def _clean_range(data: dict, max_days: int) -> dict:
    """Both dates or neither, in order, at most ``max_days`` days (the dashboard's and the report's ranges)."""
    start, end = data.get("start"), data.get("end")
    if start and end:
        if start > end:
            raise forms.ValidationError(gettext("The start date must not be after the end date."))
        if (end - start).days + 1 > max_days:
            raise forms.ValidationError(gettext("Choose a range of at most %(days)s days.") % {"days": max_days})
    elif start or end:
        raise forms.ValidationError(gettext("Give both a start and an end date, or neither."))
    return data


def _range(form: RangeForm, today: date) -> tuple[date, date]:
    data = form.cleaned_data if form.is_valid() else {}
    if data.get("start") and data.get("end"):
        return data["start"], data["end"]
    days = data.get("days") or DEFAULT_DAYS
    return today - timedelta(days=days - 1), today


def dashboard_view(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None)
    tenant_id = user_tenant_id(request)  # PermissionDenied for staff without a tenant
    tenant: Tenant | None
    if tenant_id is not None:
        # A tenant user sees their own tenant, whatever the query string says.
        tenant = Tenant.objects.get(pk=tenant_id)
        form.fields.pop("tenant")
    else:
        chosen = form.cleaned_data.get("tenant") if form.is_valid() else None
        tenant = chosen or Tenant.objects.order_by("name").first()
        if tenant is None:
            return render(request, "dashboard/index.html", {**admin.site.each_context(request), "form": form,
                                                             "title": gettext("Dashboard"), "no_tenant": True})
    today = timezone.now().astimezone(tenant_zone(tenant)).date()
    start, end = _range(form, today)
    board = dashboard_for(tenant, start, end)
    chart = line_chart(days=[d.day for d in board.days],
                       series={"issued": [d.issued for d in board.days],
                               "redeemed": [d.redeemed for d in board.days],
                               "expired": [d.expired for d in board.days]},
                       title=gettext("Coupons issued, redeemed and expired per day — %(tenant)s") % {"tenant": tenant.name},
                       chart_id="daily")
    rate = board.redemption_rate
    context = {
        **admin.site.each_context(request),
        "title": gettext("Dashboard — %(tenant)s") % {"tenant": tenant.name},
        "form": form,
        "board": board,
        "totals": board.totals,
        "rate": None if rate is None else round(100 * rate, 1),
        "chart": chart,
        "tenant": tenant,
        "zone": str(tenant_zone(tenant)),
        # Each recent event links to its campaign report (issue #20).
        "report_events": list(Event.objects.filter(tenant=tenant).order_by("-starts_at", "-id")[:REPORT_LINKS]),
    }
    return render(request, "dashboard/index.html", context)


# --- the campaign report of one event (issue #20) ----------------------------------------------------------------

class ReportRangeForm(forms.Form):
    """The days of the report's per-day figures; the totals always cover the whole event."""

    start = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        super().clean()
        return _clean_range(self.cleaned_data, MAX_REPORT_DAYS)


def _report_event(request: HttpRequest, event_id: int) -> Event:
    """The event, if the user's tenant owns it (superusers: any); 404 otherwise, as for another tenant's object."""
    tenant_id = user_tenant_id(request)
    if not request.user.has_perm("events.view_event"):
        raise PermissionDenied
    events = Event.objects.select_related("tenant")
    if tenant_id is not None:
        events = events.filter(tenant_id=tenant_id)
    return get_object_or_404(events, pk=event_id)


def _report_for(request: HttpRequest, event: Event) -> tuple[ReportRangeForm, CampaignReport]:
    today = timezone.now().astimezone(tenant_zone(event.tenant)).date()
    start, end = default_range(event, event.tenant, today)
    # Unbound, the form shows the days the page shows.
    form = ReportRangeForm(request.GET or None, initial={"start": start, "end": end})
    if form.is_bound and form.is_valid() and form.cleaned_data.get("start"):
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    return form, campaign_report(event=event, start=start, end=end)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def report_view(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _report_event(request, event_id)
    form, report = _report_for(request, event)
    chart = line_chart(days=[d.day for d in report.days],
                       series={"issued": [d.issued for d in report.days],
                               "redeemed": [d.redeemed for d in report.days]},
                       title=gettext("Coupons issued and redeemed per day — %(event)s") % {"event": event.name},
                       chart_id="report-daily")
    query = request.GET.urlencode() if form.is_bound and form.is_valid() else ""
    context = {
        **admin.site.each_context(request),
        "title": gettext("Campaign report — %(event)s") % {"event": event.name},
        "event": event,
        "tenant": event.tenant,
        "form": form,
        "report": report,
        "totals": report.totals,
        "chart": chart,
        "pct": {"rate": _pct(report.totals.redemption_rate), "budget": _pct(report.budget_used)},
        "pools": [{"row": p, "budget_used": _pct(p.budget_used), "rate": _pct(p.figures.redemption_rate)}
                  for p in report.pools],
        "partners": [{"row": p, "rate": _pct(p.redemption_rate)} for p in report.partners],
        "days": [{"row": d, "rate": _pct(d.cumulative_rate)} for d in report.days],
        "xlsx_url": reverse("dashboard:event_report_xlsx", args=[event.pk]) + (f"?{query}" if query else ""),
        "zone": str(tenant_zone(event.tenant)),
    }
    return render(request, "dashboard/report.html", context)


def report_xlsx_view(request: HttpRequest, event_id: int) -> HttpResponse:
    """The report as an XLSX file, written directly (small whatever the event's size: see dashboard.report_xlsx).
    A range that cannot be understood shows the page with its error instead of a file."""
    event = _report_event(request, event_id)
    form = ReportRangeForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return report_view(request, event_id)
    _form, report = _report_for(request, event)
    generated_at = timezone.now().astimezone(tenant_zone(event.tenant))
    with translation.override(event.tenant.language):  # like every export: the tenant's language (issue #11)
        data = report_bytes(report, generated_at=generated_at)
    response = HttpResponse(data, content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = (f'attachment; filename="{report_filename(report, generated_at=generated_at)}"')
    return response
