"""``manage.py bench draw --participants 1000000 --winners 1000``: one draw over N participants (R-DRAW).

Design: docs/design/benchmarks.md#bench-draws.
"""
from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from bench.db import reset_hwm, scratch_database, vm_hwm_mb
from bench.registry import register
from core.audit import Actor
from core.models import Tenant
from draws.models import DrawWinner
from draws.services import TierSpec, draw_create, draw_run, draw_verify
from events.models import Event
from events.services import event_create


def _arguments(parser: Any) -> None:
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--winners", type=int, default=1000, help="Split over three tiers (1%%, 9%%, 90%%).")
    parser.add_argument("--database", default="", help="Scratch database name (default: <current>_benchdraw).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")


def _setup(participants: int, winners: int) -> Any:
    actor = Actor.system("bench")
    tenant = Tenant.objects.create(name="Bench draw", slug="bench-draw")
    now = timezone.now()
    event = event_create(tenant=tenant, name="Bench event", starts_at=now - timedelta(days=2),
                         ends_at=now - timedelta(days=1), status=Event.Status.CLOSED, actor=actor)
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO events_eventparticipant (tenant_id, event_id, member_id, channel, entry_no, joined_at,
                                                 cancelled_at)
            SELECT %(tenant)s, %(event)s, 'member-' || md5(i::text), 'ios', 1, %(joined)s,
                   CASE WHEN i %% 10 = 0 THEN %(joined)s END
              FROM generate_series(1, %(n)s) AS i""",
                       {"tenant": tenant.pk, "event": event.pk, "joined": now - timedelta(days=1, hours=12),
                        "n": participants})
        cursor.execute("""
            INSERT INTO events_eventstaffmember (tenant_id, member_id, note, created_at)
            SELECT %(tenant)s, 'member-' || md5(i::text), '', now() FROM generate_series(1, 20000, 20) AS i""",
                       {"tenant": tenant.pk})
        cursor.execute("ANALYZE events_eventparticipant")
    first, second = max(1, winners // 100), max(1, winners * 9 // 100)
    tiers = [TierSpec("first", first), TierSpec("second", second), TierSpec("third", max(1, winners - first - second))]
    return draw_create(event=event, name="Bench draw", draw_at=now - timedelta(minutes=1), tiers=tiers, actor=actor)


@register("draw", help="Run one draw over N participants in a scratch database; seconds and peak RSS.",
          arguments=_arguments)
def bench_draw(options: dict[str, Any]) -> dict[str, Any]:
    database = options["database"] or f"{connection.settings_dict['NAME']}_benchdraw"
    load_before = os.getloadavg()
    with scratch_database(database, keep=options["keep"]):
        started = time.monotonic()
        draw = _setup(options["participants"], options["winners"])
        setup_seconds = time.monotonic() - started
        reset_hwm()
        rss_before = vm_hwm_mb()
        started = time.monotonic()
        draw = draw_run(draw_id=draw.pk, actor=Actor.system("bench"))
        draw_seconds = time.monotonic() - started
        draw_peak = vm_hwm_mb()
        started = time.monotonic()
        verification = draw_verify(draw=draw)
        verify_seconds = time.monotonic() - started
        winners = DrawWinner.objects.filter(draw=draw).count()
        status = draw.status
        participants_count = draw.participants_count
    return {
        "benchmark": "draw",
        "date": timezone.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "participant_rows": options["participants"],
        "eligible_participants": participants_count,
        "winners": winners,
        "status": status,
        "setup_seconds": round(setup_seconds, 2),
        "seconds": round(draw_seconds, 2),
        "verify_seconds": round(verify_seconds, 2),
        "verified": verification.ok,
        "rss_mb_before_draw": rss_before,
        "peak_rss_mb": draw_peak,
    }
