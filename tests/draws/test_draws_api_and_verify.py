"""R-DRAW-2: the seed hash is public before the draw, the seed after; verify_draw recomputes a draw and fails on a
tampered winner row."""
from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from draws import services
from draws.models import Draw, DrawWinner
from tests.draws.helpers import ACTOR, committed_draw, ended_event_with, winners_of

pytestmark = pytest.mark.django_db

MEMBERS = [f"m-{i:03d}" for i in range(50)]


def test_the_seed_hash_is_visible_before_the_draw_and_matches_the_revealed_seed_after(api, tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = committed_draw(event, [("first", 1), ("second", 2)])
    before = api.get(f"/api/v1/events/{event.public_id}/draws")
    assert before.status_code == 200
    (row,) = before.json()
    assert {k: row[k] for k in ("id", "status", "seed_hash", "seed", "winners", "round", "parent")} == {
        "id": draw.public_id, "status": "COMMITTED", "seed_hash": draw.seed_hash, "seed": None, "winners": [],
        "round": 1, "parent": None}
    assert row["tiers"] == [{"position": 1, "name": "first", "winners": 1},
                            {"position": 2, "name": "second", "winners": 2}]

    services.draw_run(draw_id=draw.pk, actor=ACTOR)
    (after,) = api.get(f"/api/v1/events/{event.public_id}/draws").json()
    assert after["status"] == "DONE"
    assert after["seed_hash"] == row["seed_hash"]
    assert hashlib.sha256(bytes.fromhex(after["seed"])).hexdigest() == row["seed_hash"]
    assert after["participants_count"] == 50
    assert [(w["tier"], w["rank"], w["member_id"]) for w in after["winners"]] == winners_of(draw)
    assert all(w["forfeited"] is False for w in after["winners"])


def test_verify_draw_succeeds_on_a_real_draw(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = services.draw_run(draw_id=committed_draw(event).pk, actor=ACTOR)
    out = StringIO()
    call_command("verify_draw", draw.public_id, stdout=out)
    assert out.getvalue().strip() == (f"verify_draw: draw {draw.public_id} OK — seed matches hash {draw.seed_hash}; "
                                      f"50 participants, 4 winners recomputed identically.")


def test_verify_draw_fails_with_a_non_zero_exit_when_a_winner_row_is_tampered_with(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = services.draw_run(draw_id=committed_draw(event).pk, actor=ACTOR)
    winner = DrawWinner.objects.filter(draw=draw).order_by("pk").first()
    outsider = next(m for m in MEMBERS if not DrawWinner.objects.filter(draw=draw, member_id=m).exists())
    DrawWinner.objects.filter(pk=winner.pk).update(member_id=outsider)
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("verify_draw", draw.public_id, stderr=err)
    assert raised.value.returncode == 1
    assert f"unexpected winner row: tier {winner.tier_id} rank {winner.rank} {outsider}" in err.getvalue()
    assert f"expected winner missing: tier {winner.tier_id} rank {winner.rank} {winner.member_id}" in err.getvalue()


def test_verify_draw_fails_when_the_revealed_seed_does_not_match_the_hash(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = services.draw_run(draw_id=committed_draw(event).pk, actor=ACTOR)
    Draw.objects.filter(pk=draw.pk).update(seed="00" * 32)
    result = services.draw_verify(draw=Draw.objects.get(pk=draw.pk))
    assert result.ok is False
    assert "sha256(seed) does not match the committed seed hash" in result.problems


def test_verify_draw_exits_non_zero_as_a_process(tenant):
    # The exit status a shell sees: CommandError(returncode=1) through manage.py's runner.
    from django.core.management import ManagementUtility

    event = ended_event_with(tenant, MEMBERS)
    draw = services.draw_run(draw_id=committed_draw(event).pk, actor=ACTOR)
    DrawWinner.objects.filter(draw=draw, rank=1, tier__position=1).update(member_id="intruder")
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "verify_draw", draw.public_id]).execute()
    assert exited.value.code == 1
