"""Server-rendered SVG charts: no JavaScript, no asset pipeline, readable by screen readers.

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` (the totals in words); the page also shows
the same numbers as a table, so the chart is never the only way to read them.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.money import format_number

# Colour-blind-safe (Okabe–Ito) and distinguished by dash pattern too, not colour alone.
SERIES_STYLE = {
    "issued": ("#0072B2", ""),
    "redeemed": ("#009E73", "6 3"),
    "expired": ("#D55E00", "2 3"),
}
SERIES_LABELS = {"issued": _("issued"), "redeemed": _("redeemed"), "expired": _("expired")}


def _label(name: str) -> str:
    return str(SERIES_LABELS.get(name, name))


TICKS = 4  # intervals on the y axis


def nice_ticks(value: int, intervals: int = TICKS) -> list[int]:
    """Evenly spaced integer ticks from 0 that cover ``value``: a step of 1, 2 or 5 × 10ⁿ (issue #20: a peak of 5
    gave 0, 1, 2, 3, 5). ``value`` 0 still gets an axis (0…4)."""
    raw = max(value, 1) / intervals
    magnitude = 1
    while magnitude * 10 <= raw:
        magnitude *= 10
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [step * k for k in range(intervals + 1)]


def line_chart(*, days: Sequence[date], series: dict[str, Sequence[int]], title: str, chart_id: str,
               width: int = 760, height: int = 240) -> SafeString:
    left, right, top, bottom = 56, 12, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max([0, *(v for values in series.values() for v in values)]))
    peak = ticks[-1]
    n = len(days)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / peak

    desc = "; ".join(gettext("%(series)s: %(total)s in total, at most %(peak)s a day")
                     % {"series": _label(name), "total": sum(values), "peak": max(values, default=0)}
                     for name, values in series.items())
    if days:
        desc = gettext("From %(start)s to %(end)s. %(series)s.") % {
            "start": f"{days[0]:%Y-%m-%d}", "end": f"{days[-1]:%Y-%m-%d}", "series": desc}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="100%" style="max-width:{width}px" aria-labelledby="{chart_id}-title {chart_id}-desc" '
             f'id="{chart_id}">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
             '<g font-size="11" fill="currentColor">']
    for value in ticks:  # horizontal grid lines with their values
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#888" stroke-opacity=".25"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{format_number(value)}</text>')
    step = max(1, n // 8)
    for i in range(0, n, step):  # at most ~8 date labels
        parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                     f'{days[i]:%m-%d}</text>')
    parts.append("</g>")
    for name, values in series.items():
        colour, dash = SERIES_STYLE.get(name, ("#555", ""))
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash_attr} points="{points}">'
                     f'<title>{escape(_label(name))}</title></polyline>')
    # Legend, inside the chart so a saved image keeps it.
    for k, name in enumerate(series):
        colour, dash = SERIES_STYLE.get(name, ("#555", ""))
        lx = left + 8 + k * 110
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{top + 8}" y2="{top + 8}" stroke="{colour}" '
                     f'stroke-width="2"{dash_attr}/>'
                     f'<text x="{lx + 30}" y="{top + 12}" font-size="11" fill="currentColor">{escape(_label(name))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text went through escape()
