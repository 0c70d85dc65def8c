"""The campaign report as an Excel workbook (issue #20): figure sheets and a chart sheet referencing their cells.

Design: docs/design/reports-and-exports.md#dashboard-report-xlsx.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from core.spreadsheets import (
    COUNT_FORMAT,
    DATE_FORMAT,
    PERCENT_FORMAT,
    append_row,
    bold_row,
    fit_columns,
    money_format,
    new_workbook,
    workbook_bytes,
)
from dashboard.report import CampaignReport


def _table(ws: Worksheet, header: list[str], rows: list[list[Any]], formats: list[str | None]) -> None:
    append_row(ws, header)
    bold_row(ws, 1)
    for row in rows:
        append_row(ws, row, formats)
    ws.freeze_panes = "B2"  # the header row and the first (label) column stay in view
    fit_columns(ws)


def _channel_label(channel: str) -> str:
    return channel or _("(none given)")


def report_workbook(report: CampaignReport, *, generated_at: datetime) -> Workbook:
    """The workbook, labels in the active language."""
    money = money_format(report.tenant.currency)
    totals = report.totals
    wb = new_workbook(streaming=False)
    summary = wb.active
    summary.title = _("Summary")[:31]
    append_row(summary, [_("Campaign report"), report.event.name])
    append_row(summary, [_("Event period"), f"{report.event.starts_at.astimezone(generated_at.tzinfo):%Y-%m-%d} – "
                                       f"{report.event.ends_at.astimezone(generated_at.tzinfo):%Y-%m-%d}"])
    append_row(summary, [_("Daily figures from"), f"{report.start:%Y-%m-%d} – {report.end:%Y-%m-%d}"])
    append_row(summary, [_("Generated at"), f"{generated_at:%Y-%m-%d %H:%M} ({generated_at.tzinfo})"])
    append_row(summary, [])
    lines: list[tuple[str, Any, str]] = [
        (_("Issued"), totals.issued, COUNT_FORMAT),
        (_("Registered"), totals.registered, COUNT_FORMAT),
        (_("Used"), totals.used, COUNT_FORMAT),
        (_("Refunded"), totals.refunded, COUNT_FORMAT),
        (_("Expired"), totals.expired, COUNT_FORMAT),
        (_("Discount given"), totals.discount, money),
        (_("Budget"), report.budget, money),
        (_("Budget used"), report.budget_used, PERCENT_FORMAT),
        (_("Redemption rate"), totals.redemption_rate, PERCENT_FORMAT),
    ]
    for label, value, fmt in lines:
        append_row(summary, [label, value if value is not None else "—"], [None, fmt if value is not None else None])
    for row in summary.iter_rows(min_row=1, max_row=4, max_col=1):
        row[0].font = Font(bold=True)
    summary.freeze_panes = "A2"
    summary["A1"].font = Font(bold=True, size=13)
    fit_columns(summary)

    daily = wb.create_sheet(_("Per day")[:31])
    _table(daily, [_("Day"), _("Issued"), _("Redemptions"), _("Refunds"), _("Issued (cumulative)"),
                   _("Used (cumulative)"), _("Redemption rate (cumulative)")],
           [[d.day, d.issued, d.redeemed, d.refunded, d.cumulative_issued, d.cumulative_used, d.cumulative_rate]
            for d in report.days],
           [DATE_FORMAT, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, PERCENT_FORMAT])
    daily.column_dimensions["A"].width = max(daily.column_dimensions["A"].width or 0, 12)

    channels = wb.create_sheet(_("By channel")[:31])
    _table(channels, [_("Channel"), _("Issued"), _("Used"), _("Refunded"), _("Discount given")],
           [[_channel_label(c.channel), c.figures.issued, c.figures.used, c.figures.refunded, c.figures.discount]
            for c in report.channels],
           [None, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, money])

    pools = wb.create_sheet(_("By pool")[:31])
    _table(pools, [_("Pool"), _("Policy"), _("Issued"), _("Registered"), _("Used"), _("Refunded"), _("Expired"),
                   _("Discount given"), _("Budget"), _("Budget used"), _("Redemption rate")],
           [[p.inventory.name, p.inventory.policy.name, p.figures.issued, p.figures.registered, p.figures.used,
             p.figures.refunded, p.figures.expired, p.figures.discount, p.budget, p.budget_used,
             p.figures.redemption_rate] for p in report.pools],
           [None, None, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, money, money,
            PERCENT_FORMAT, PERCENT_FORMAT])

    partners = wb.create_sheet(_("By partner")[:31])
    _table(partners, [_("Partner"), _("Partner code"), _("Codes handed over"), _("Registered"), _("Used"),
                      _("Discount given")],
           [[p.name, p.code, p.handed_over, p.registered, p.used, p.discount] for p in report.partners],
           [None, None, COUNT_FORMAT, COUNT_FORMAT, COUNT_FORMAT, money])

    charts = wb.create_sheet(_("Charts")[:31])
    charts["A1"] = _("Charts of the figures on the other sheets")
    charts["A1"].font = Font(bold=True)
    n_days = len(report.days)
    line = LineChart()
    line.title = _("Issued and redeemed per day")
    line.y_axis.title = _("Coupons")
    line.x_axis.title = _("Day")
    line.x_axis.number_format = "mm-dd"
    line.height, line.width = 9, 24
    line.add_data(Reference(daily, min_col=2, max_col=3, min_row=1, max_row=1 + n_days), titles_from_data=True)
    line.set_categories(Reference(daily, min_col=1, min_row=2, max_row=1 + n_days))
    charts.add_chart(line, "A3")
    rate_chart = LineChart()
    rate_chart.title = _("Redemption rate (cumulative)")
    rate_chart.y_axis.title = _("Redemption rate")
    rate_chart.y_axis.number_format = "0%"
    rate_chart.y_axis.scaling.min = 0
    rate_chart.x_axis.number_format = "mm-dd"
    rate_chart.height, rate_chart.width = 9, 24
    rate_chart.add_data(Reference(daily, min_col=7, min_row=1, max_row=1 + n_days), titles_from_data=True)
    rate_chart.set_categories(Reference(daily, min_col=1, min_row=2, max_row=1 + n_days))
    charts.add_chart(rate_chart, "A22")
    n_channels = len(report.channels)
    if n_channels:  # a chart over no rows would reference the header row alone, which Excel offers to "repair"
        bar = BarChart()
        bar.type = "col"
        bar.title = _("Issued and used by channel")
        bar.y_axis.title = _("Coupons")
        bar.height, bar.width = 9, 24
        bar.add_data(Reference(channels, min_col=2, max_col=3, min_row=1, max_row=1 + n_channels),
                     titles_from_data=True)
        bar.set_categories(Reference(channels, min_col=1, min_row=2, max_row=1 + n_channels))
        charts.add_chart(bar, "A41")
    else:
        charts["A41"] = _("Nothing issued or used yet.")
    charts.column_dimensions["A"].width = 40
    return wb


def report_bytes(report: CampaignReport, *, generated_at: datetime) -> bytes:
    return workbook_bytes(report_workbook(report, generated_at=generated_at))


def report_filename(report: CampaignReport, *, generated_at: datetime) -> str:
    """ASCII only (the event's public id, not its name) and dated in the tenant's time zone."""
    return f"campaign-report-{report.event.public_id}-{generated_at:%Y%m%d}.xlsx"
