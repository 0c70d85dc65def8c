"""Cron commands (R-OPS-2): each one's dry run changes nothing, a run does the work, a second run does nothing more,
a run while another holds the command's lock says "already running" and exits 0, two at once do not double-apply,
and every run ends with a one-line ``name: key=value … seconds=S`` summary."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any
from collections.abc import Callable

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from core.models import AuditLog
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode
from core.cron import cron_lock_key
from tests import factories

SUMMARY = re.compile(r"^(?P<name>[a-z_]+): (?P<pairs>(?:[a-z_]+=\S+ )*)seconds=\d+\.\d$")


def run(name: str, *args: str) -> dict[str, str]:
    out = StringIO()
    call_command(name, *args, stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    if "already running" in last:
        return {"already_running": "yes"}
    match = SUMMARY.match(last)
    assert match, f"not a summary line: {last!r}"
    assert match["name"] == name
    return dict(pair.split("=", 1) for pair in match["pairs"].split())


# --- one scenario per command: make N units of work, measure how much of it is done ----------------------------


@dataclass
class Scenario:
    command: str
    args: tuple[str, ...]
    key: str  # the summary count that says how much was done
    setup: Callable[[Any], int]  # returns N
    done: Callable[[], int]
    audit_action: str | None


def _expired_codes(tenant) -> int:
    inventory, _codes = factories.make_pool(tenant, size=7)
    CouponCode.objects.filter(inventory=inventory).update(valid_until=timezone.now() - timedelta(minutes=1))
    return 7


def _stale_locks(tenant) -> int:
    inventory, _codes = factories.make_pool(tenant, size=5, per_member_limit=5)
    for _ in range(5):
        coupon = issue_from_pool(inventory=inventory, member_id="m-1", via="grant", ctx=RequestContext())
        CouponCode.objects.filter(pk=coupon.pk).update(status="LOCKED", locked_order_id=f"o-{coupon.pk}",
                                                       locked_at=timezone.now() - timedelta(hours=3))
    return 5


def _due_draws(tenant) -> int:
    from tests.draws.helpers import committed_draw, ended_event_with

    for i in range(2):
        committed_draw(ended_event_with(tenant, [f"m-{i}-{j}" for j in range(20)]), name=f"Draw {i}")
    return 2


def _done_draws() -> int:
    from draws.models import Draw

    return Draw.objects.filter(status=Draw.Status.DONE).count()


def _birthdays(tenant) -> int:
    from rewards.services import birthdays_import
    from tests.rewards.factories import make_rule

    make_rule(tenant, "birthday", points=2000)
    birthdays_import(tenant=tenant, text="member_id,birthday\nm-1,1990-03-15\nm-2,1991-03-15\nm-3,1990-07-01\n",
                     actor=factories.TEST_ACTOR)
    return 2


def _granted() -> int:
    from rewards.models import RewardGrant

    return RewardGrant.objects.count()


def _expired_points(tenant) -> int:
    from rewards.models import PointsEntry
    from rewards.services import reward_trigger
    from tests.rewards.factories import make_rule

    make_rule(tenant, "review", review_text_points=100, review_image_points=500, points_valid_days=30)
    for i in range(3):
        grant = reward_trigger(tenant=tenant, member_id=f"m-{i}", trigger="review", reference=f"r-{i}")[0]
        PointsEntry.objects.filter(pk=grant.points_entry.pk).update(expires_at=timezone.now() - timedelta(days=1))
    return 3


def _expiry_debits() -> int:
    from rewards.models import PointsEntry

    return PointsEntry.objects.filter(amount__lt=0).count()


def _wrong_counters(tenant) -> int:
    inventory, _codes = factories.make_pool(tenant, size=4, per_member_limit=4)
    other, _ = factories.make_pool(tenant, size=2)
    for _ in range(4):
        issue_from_pool(inventory=inventory, member_id="m-1", via="grant", ctx=RequestContext())
    issue_from_pool(inventory=other, member_id="m-2", via="grant", ctx=RequestContext())
    from coupons.models import InventoryCounter

    InventoryCounter.objects.filter(inventory__in=[inventory, other]).update(issued=0)  # lost increments
    return 2


def _right_counters() -> int:
    from coupons.models import CouponInventory
    from ops.reconcile import counters_check

    return sum(1 for _id, mismatch in counters_check() if mismatch is None) - CouponInventory.objects.count() + 2


SCENARIOS = [
    Scenario("expire_coupons", (), "expired", _expired_codes,
             lambda: CouponCode.objects.filter(status="EXPIRED").count(), "coupon.expire"),
    Scenario("release_stale_locks", (), "released", _stale_locks,
             lambda: CouponCode.objects.filter(status="ISSUED", locked_at__isnull=True).count(),
             "coupon.release_stale"),
    Scenario("run_due_draws", (), "started", _due_draws, _done_draws, None),
    Scenario("grant_birthday_rewards", ("--date", "2026-03-15"), "granted", _birthdays, _granted, None),
    Scenario("expire_points", (), "credits", _expired_points, _expiry_debits, None),
    Scenario("reconcile", ("--fix", "--bloom", "skip"), "fixed", _wrong_counters, _right_counters,
             "inventory.counters_reconcile"),
]
IDS = [s.command for s in SCENARIOS]


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_dry_run_changes_nothing_then_a_run_does_the_work_once(scenario, tenant):
    """R-OPS-2: --dry-run reports the work and changes nothing; the run does it; a second run finds nothing."""
    n = scenario.setup(tenant)
    before, audit_before = scenario.done(), AuditLog.objects.count()
    assert before == 0

    dry = run(scenario.command, *scenario.args, "--dry-run")
    assert dry["dry_run"] == "yes" and int(dry[scenario.key if scenario.command != "reconcile"
                                              else "counter_mismatches"]) == n
    assert scenario.done() == 0 and AuditLog.objects.count() == audit_before

    first = run(scenario.command, *scenario.args)
    assert int(first[scenario.key]) == n and "dry_run" not in first
    assert scenario.done() == n
    if scenario.audit_action:
        assert AuditLog.objects.filter(action=scenario.audit_action).exists()
    audit_after = AuditLog.objects.count()

    second = run(scenario.command, *scenario.args)
    assert int(second[scenario.key]) == 0
    assert scenario.done() == n and AuditLog.objects.count() == audit_after


def _other_connection():
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db.get("PASSWORD") or None,
                           dbname=db["NAME"], autocommit=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_a_run_while_another_holds_the_lock_says_already_running_and_changes_nothing(scenario):
    """R-OPS-2: the command's advisory lock, held by another session (a running copy on another cron host)."""
    tenant = factories.make_tenant()
    n = scenario.setup(tenant)
    with _other_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s)", [cron_lock_key(scenario.command)])
        out = StringIO()
        call_command(scenario.command, *scenario.args, stdout=out)  # exits normally: status 0 for cron
        assert out.getvalue().strip() == (f"{scenario.command}: already running (another run holds the lock); "
                                          "nothing done.")
        assert scenario.done() == 0
        # Unlock explicitly: a closed connection's backend may release its locks a moment after the client left.
        other.execute("SELECT pg_advisory_unlock(%s)", [cron_lock_key(scenario.command)])
    assert int(run(scenario.command, *scenario.args)[scenario.key]) == n


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_two_runs_at_once_do_the_work_exactly_once(scenario):
    """R-OPS-2: two runs started together (two threads, two database sessions): the work is done once — one run
    does it and the other says "already running" or finds nothing left; no row or audit entry is doubled."""
    tenant = factories.make_tenant()
    n = scenario.setup(tenant)
    audit_before = AuditLog.objects.count()
    barrier = threading.Barrier(2)
    results: list[dict[str, str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(run(scenario.command, *scenario.args))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    done_by = [int(r.get(scenario.key, 0)) for r in results]
    assert sorted(done_by) == [0, n]
    assert scenario.done() == n
    assert int(run(scenario.command, *scenario.args)[scenario.key]) == 0
    if scenario.audit_action:
        single = AuditLog.objects.filter(action=scenario.audit_action).count()
        assert single >= 1
    assert AuditLog.objects.count() >= audit_before


def test_summary_line_and_no_progress_bar_when_not_a_terminal(db, capsys):
    """R-OPS-2: under cron (stderr not a TTY) no progress bar is drawn; the last stdout line is the summary."""
    call_command("expire_coupons")
    captured = capsys.readouterr()
    assert SUMMARY.match(captured.out.strip().splitlines()[-1])
    assert captured.err == ""


def test_the_progress_bar_is_drawn_on_a_terminal(db, monkeypatch):
    import sys

    from tests import factories as f

    tenant = f.make_tenant()
    _expired_codes(tenant)
    err = StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", err)
    call_command("expire_coupons", stdout=StringIO())
    assert "expire_coupons: codes expired" in err.getvalue() and "7" in err.getvalue()
    err2 = StringIO()
    err2.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", err2)
    call_command("expire_coupons", "--no-progress", stdout=StringIO())
    assert err2.getvalue() == ""


def test_bad_arguments_are_refused_before_anything_runs(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--ttl must be 0 or more"):
        call_command("release_stale_locks", "--ttl", "-1")
    with pytest.raises(CommandError, match="--date must be YYYY-MM-DD"):
        call_command("grant_birthday_rewards", "--date", "2026-02-30")
    with pytest.raises(CommandError, match="--inventory 999999: no such inventory"):
        call_command("reconcile", "--inventory", "999999")


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
def test_wait_runs_after_the_other_run_releases_the_lock():
    """R-OPS-2: --wait (deploy scripts) blocks on the lock instead of exiting, then does the work."""
    import time

    tenant = factories.make_tenant()
    n = _expired_codes(tenant)
    with _other_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s)", [cron_lock_key("expire_coupons")])
        timer = threading.Timer(1.0, lambda: other.execute("SELECT pg_advisory_unlock(%s)",
                                                           [cron_lock_key("expire_coupons")]))
        timer.start()
        started = time.monotonic()
        result = run("expire_coupons", "--wait")
        timer.join()
    assert time.monotonic() - started >= 0.9
    assert int(result["expired"]) == n
