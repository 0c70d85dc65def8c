"""The draws console: tiers fixed once committed, "Run draw now", winners forfeited and exported to XLSX."""
from __future__ import annotations

import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from core.models import AuditLog
from core.spreadsheets import safe_cell
from draws.models import Draw, DrawWinner
from events.models import EventStaffMember
from tests import factories
from tests.draws.helpers import committed_draw, ended_event_with

pytestmark = pytest.mark.django_db

MEMBERS = ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "plain"]


def _action(client, model, action, ids):
    return client.post(reverse(f"admin:draws_{model}_changelist"),
                       {"action": action, "_selected_action": [str(i) for i in ids], "confirm": "yes"}, follow=False)


def test_an_operator_runs_a_draw_now_from_the_console(client, tenant, operator_user):
    event = ended_event_with(tenant, [f"m-{i}" for i in range(30)])
    draw = committed_draw(event)
    client.force_login(operator_user)
    response = _action(client, "draw", "run_now", [draw.pk])
    assert response.status_code == 302
    draw.refresh_from_db()
    assert draw.status == Draw.Status.DONE
    assert DrawWinner.objects.filter(draw=draw).count() == 4
    assert AuditLog.objects.get(action="draw.start", object_id=str(draw.pk)).actor_label == operator_user.username


def test_the_console_hides_the_seed_until_the_draw_is_done(client, tenant, operator_user):
    event = ended_event_with(tenant, ["a", "b"])
    draw = committed_draw(event)
    client.force_login(operator_user)
    page = client.get(reverse("admin:draws_draw_change", args=[draw.pk])).content.decode()
    from core.sealing import unseal

    assert draw.seed_hash in page and unseal(draw.seed_sealed) not in page and draw.seed_sealed not in page
    _action(client, "draw", "run_now", [draw.pk])
    page = client.get(reverse("admin:draws_draw_change", args=[draw.pk])).content.decode()
    assert draw.seed in page


def test_winners_export_to_xlsx_with_formula_cells_escaped(client, tenant, operator_user):
    event = ended_event_with(tenant, MEMBERS)
    draw = committed_draw(event, [("all", 5)])
    client.force_login(operator_user)
    _action(client, "draw", "run_now", [draw.pk])
    response = _action(client, "draw", "export_winners_xlsx", [draw.pk])
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:7] == ("draw", "draw name", "round", "tier", "tier name", "rank", "member_id")
    members = sorted(row[6] for row in rows[1:])
    assert members == sorted(["'=cmd|' /C calc'!A0", "'+1+1", "'-2", "'@SUM(A1)", "plain"])
    assert [safe_cell(v) for v in ("=1", "x=1", 5)] == ["'=1", "x=1", 5]


def test_forfeit_then_redraw_from_the_console_makes_a_committed_second_round(client, tenant, operator_user):
    event = ended_event_with(tenant, [f"m-{i}" for i in range(10)])
    draw = committed_draw(event, [("first", 2)])
    client.force_login(operator_user)
    _action(client, "draw", "run_now", [draw.pk])
    winner = DrawWinner.objects.filter(draw=draw).first()
    _action(client, "drawwinner", "forfeit", [winner.pk])
    winner.refresh_from_db()
    assert winner.forfeited_at is not None
    _action(client, "draw", "create_redraw", [draw.pk])
    redraw = Draw.objects.get(parent=draw)
    assert (redraw.round, redraw.status, list(redraw.tiers.values_list("winners", flat=True))) == (
        2, Draw.Status.COMMITTED, [1])


def test_a_viewer_cannot_run_a_draw(client, tenant):
    event = ended_event_with(tenant, ["a"])
    draw = committed_draw(event)
    client.force_login(factories.make_viewer(tenant))
    _action(client, "draw", "run_now", [draw.pk])
    assert Draw.objects.get(pk=draw.pk).status == Draw.Status.COMMITTED


def test_an_operator_creates_a_draw_with_tiers_and_commits_it(client, tenant, operator_user):
    event = ended_event_with(tenant, ["a", "b", "c"])
    client.force_login(operator_user)
    response = client.post(reverse("admin:draws_draw_add"), {
        "event": event.pk, "name": "Console draw", "draw_at_0": "2026-01-01", "draw_at_1": "10:00:00",
        "tiers-TOTAL_FORMS": "1", "tiers-INITIAL_FORMS": "0", "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "1000", "tiers-0-position": "1", "tiers-0-name": "Grand", "tiers-0-winners": "2",
        "tiers-0-inventory": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    draw = Draw.objects.get(name="Console draw")
    assert (draw.status, draw.tenant_id, draw.created_by_id) == (Draw.Status.SCHEDULED, tenant.pk, operator_user.pk)
    assert list(draw.tiers.values_list("name", "winners")) == [("Grand", 2)]
    _action(client, "draw", "commit_seed", [draw.pk])
    draw.refresh_from_db()
    assert draw.status == Draw.Status.COMMITTED and len(draw.seed_hash) == 64


def test_an_operator_adds_a_staff_member_through_the_service(client, tenant, operator_user):
    client.force_login(operator_user)
    response = client.post(reverse("admin:events_eventstaffmember_add"), {"member_id": " emp-1 ", "note": "HQ"})
    assert response.status_code == 302
    staff = EventStaffMember.objects.get(tenant=tenant)
    assert (staff.member_id, staff.note) == ("emp-1", "HQ")
    assert AuditLog.objects.filter(action="event.staff_add", object_id=str(staff.pk)).count() == 1


def test_an_operator_removes_a_staff_member_who_is_then_drawn_again(client, tenant, operator_user):
    staff = EventStaffMember.objects.create(tenant=tenant, member_id="emp-2")
    client.force_login(operator_user)
    response = client.post(reverse("admin:events_eventstaffmember_changelist"),
                           {"action": "remove", "_selected_action": [str(staff.pk)], "confirm": "yes"})
    assert response.status_code == 302
    assert not EventStaffMember.objects.filter(tenant=tenant).exists()
    assert AuditLog.objects.filter(action="event.staff_remove", object_id=str(staff.pk)).count() == 1
    event = ended_event_with(tenant, ["emp-2"])
    _action(client, "draw", "run_now", [committed_draw(event, [("all", 1)]).pk])
    assert list(DrawWinner.objects.filter(draw__event=event).values_list("member_id", flat=True)) == ["emp-2"]


def test_an_allow_list_edit_in_the_console_is_audited(client, tenant, operator_user):
    from events.models import EventAllowedMember

    event = factories.make_event(tenant, allow_list_only=True)
    client.force_login(operator_user)
    data = {"name": event.name, "description": "", "status": "OPEN", "starts_at_0": event.starts_at.date(),
            "starts_at_1": "00:00:00", "ends_at_0": event.ends_at.date(), "ends_at_1": "00:00:00",
            "recurrence": "none", "max_participants": "", "entries_per_member": "1", "allow_list_only": "on",
            "allowed_members-TOTAL_FORMS": "1", "allowed_members-INITIAL_FORMS": "0",
            "allowed_members-MIN_NUM_FORMS": "0", "allowed_members-MAX_NUM_FORMS": "1000",
            "allowed_members-0-member_id": " vip-1 "}
    response = client.post(reverse("admin:events_event_change", args=[event.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(EventAllowedMember.objects.filter(event=event).values_list("member_id", flat=True)) == ["vip-1"]
    row = AuditLog.objects.get(action="event.allow_list", object_id=str(event.pk))
    assert (row.after["added"], row.after["removed"]) == (["vip-1"], [])
