"""State changes of draws (R-DRAW-1..3): create, commit the seed, run (resumably), grant prizes, forfeit, redraw.

A run is a compare-and-set COMMITTED → RUNNING, then winner rows inserted in chunks with ON CONFLICT DO NOTHING,
then RUNNING → DONE. A run that crashed half-way is run again: it recomputes the same winners (same seed, same
participant list — checked by its digest) and inserts only what is missing; nothing is deleted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import jobs
from core.audit import Actor, audit_record
from core.exceptions import DomainError, InvalidInput
from core.locks import session_lock
from draws import algorithm
from draws.exceptions import DrawNotReady, EventNotEnded, ParticipantsChanged
from draws.models import Draw, DrawWinner, PrizeTier
from core.sealing import SealBroken, seal, unseal
from events.models import Event
from events.windows import entries_closed
from coupons.services.issue import RequestContext, issue_from_pool

logger = logging.getLogger("coupons.draws")

WINNER_CHUNK = 1000
# A RUNNING draw untouched for this long is taken to have crashed and is run again by run_due_draws.
STALE_RUNNING = timedelta(minutes=10)
DUE_LOCK = "draws:run_due"


@dataclass(frozen=True)
class TierSpec:
    name: str
    winners: int
    inventory: Any = None


def _check_tiers(draw: Draw, tiers: list[TierSpec]) -> None:
    for tier in tiers:
        if not tier.name.strip() or tier.winners < 1:
            raise InvalidInput(_("Each prize tier needs a name and at least one winner."))
        if tier.inventory is not None and tier.inventory.tenant_id != draw.tenant_id:
            raise InvalidInput(_("A prize inventory must belong to the draw's tenant."))


def draw_save(*, draw: Draw, actor: Actor) -> Draw:
    """Create or edit a draw while it is SCHEDULED (nothing is committed yet)."""
    if not draw.name.strip():
        raise InvalidInput(_("A draw needs a name."))
    if draw.event.tenant_id != draw.tenant_id:
        raise InvalidInput(_("The event belongs to another tenant."))
    creating = draw.pk is None
    with transaction.atomic():
        if not creating and Draw.objects.select_for_update().get(pk=draw.pk).status != Draw.Status.SCHEDULED:
            raise DrawNotReady(_("A committed draw cannot be changed."))
        draw.save()
        audit_record(tenant=draw.tenant, actor=actor, action="draw.create" if creating else "draw.update", obj=draw,
                     after={"event": draw.event.public_id, "name": draw.name, "draw_at": draw.draw_at.isoformat()})
    return draw


def draw_create(*, event: Event, name: str, draw_at: datetime, tiers: list[TierSpec], actor: Actor,
                created_by: Any = None, commit: bool = True) -> Draw:
    draw = Draw(tenant_id=event.tenant_id, event=event, name=name, draw_at=draw_at, created_by=created_by)
    draw.tenant = event.tenant
    _check_tiers(draw, tiers)
    with transaction.atomic():
        draw_save(draw=draw, actor=actor)
        PrizeTier.objects.bulk_create([PrizeTier(tenant_id=draw.tenant_id, draw=draw, position=i, name=t.name,
                                                 winners=t.winners,
                                                 inventory=t.inventory) for i, t in enumerate(tiers, 1)])
        if commit:
            draw_commit(draw=draw, actor=actor)
    return draw


def draw_commit(*, draw: Draw, actor: Actor, now: datetime | None = None) -> Draw:
    """SCHEDULED → COMMITTED: generate the secret seed and publish its hash (R-DRAW-2). The tiers are fixed from
    here on; the audit row records them with the hash."""
    now = now or timezone.now()
    seed = algorithm.new_seed()
    with transaction.atomic():
        tiers = list(PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw_id=draw.pk).order_by("position"))
        if not tiers:
            raise InvalidInput(_("Add at least one prize tier before committing the draw."))
        digest = algorithm.seed_hash(seed)
        # Only the hash is readable from here on; the seed is sealed with the settings' key until the reveal.
        if not Draw.objects.filter(pk=draw.pk, status=Draw.Status.SCHEDULED).update(
                status=Draw.Status.COMMITTED, seed="", seed_sealed=seal(seed.hex()), seed_hash=digest,
                committed_at=now):
            raise DrawNotReady(_("Only a scheduled draw can be committed."))
        draw.refresh_from_db()
        audit_record(tenant=draw.tenant, actor=actor, action="draw.commit", obj=draw,
                     after={"seed_hash": digest, "draw_at": draw.draw_at.isoformat(),
                            "entries_close": draw.event.ends_at.isoformat(),
                            "before_entries_closed": not entries_closed(draw.event, now),
                            "tiers": [[t.position, t.name, t.winners] for t in tiers]})
    return draw


def event_has_ended(event: Event, now: datetime) -> bool:
    """Entries have closed (events.windows): a draw may run, whatever the event's status afterwards."""
    return entries_closed(event, now)


_ELIGIBLE = """
SELECT DISTINCT p.member_id COLLATE "C" FROM events_eventparticipant p
 WHERE p.event_id = %(event)s AND p.cancelled_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM events_eventstaffmember s WHERE s.tenant_id = p.tenant_id
                                                             AND s.member_id = p.member_id)
   {earlier}
 ORDER BY 1
"""
_EARLIER_WINNERS = """
   AND NOT EXISTS (SELECT 1 FROM draws_drawwinner w JOIN draws_draw d ON d.id = w.draw_id
                    WHERE d.event_id = p.event_id AND d.status = 'DONE' AND d.finished_at < %(started)s
                      AND w.member_id = p.member_id)
"""


def eligible_participants(draw: Draw) -> list[str]:
    """Distinct members with an active entry, minus the tenant's staff, minus — for a redraw — the winners of the
    event's draws finished before this one started; sorted by UTF-8 bytes."""
    earlier = _EARLIER_WINNERS if draw.round > 1 else ""
    with connection.cursor() as cursor:
        cursor.execute(_ELIGIBLE.format(earlier=earlier), {"event": draw.event_id, "started": draw.started_at})
        members = [row[0] for row in cursor.fetchall()]
    return algorithm.sort_participants(members)


def _fail(draw: Draw, actor: Actor, error: str) -> None:
    with transaction.atomic():
        Draw.objects.filter(pk=draw.pk, status=Draw.Status.RUNNING).update(status=Draw.Status.FAILED, error=error,
                                                                         finished_at=timezone.now())
        audit_record(tenant=draw.tenant, actor=actor, action="draw.fail", obj=draw, after={"error": error})


def _insert_winners(draw: Draw, rows: list[tuple[int, int, str]]) -> None:
    with transaction.atomic():
        DrawWinner.objects.bulk_create(
            [DrawWinner(tenant_id=draw.tenant_id, draw_id=draw.pk, tier_id=tier_id, rank=rank, member_id=member_id)
             for tier_id, rank, member_id in rows], ignore_conflicts=True)


def draw_run(*, draw_id: int, actor: Actor | None = None, now: datetime | None = None,
             before_draw_at: bool = False) -> Draw:
    """Run a committed draw, or run again a draw whose earlier run crashed (RUNNING). DONE: nothing happens."""
    actor = actor or Actor.job("run_draw")
    now = now or timezone.now()
    draw = Draw.objects.select_related("event", "tenant").get(pk=draw_id)
    if draw.status == Draw.Status.DONE:
        return draw
    if draw.status not in (Draw.Status.COMMITTED, Draw.Status.RUNNING):
        raise DrawNotReady(details={"status": draw.status})
    if not event_has_ended(draw.event, now):
        raise EventNotEnded(details={"ends_at": draw.event.ends_at.isoformat()})
    if draw.draw_at > now and not before_draw_at:
        raise DrawNotReady(_("This draw is not due yet."), details={"draw_at": draw.draw_at.isoformat()})
    try:
        seed = unseal(draw.seed_sealed)
    except SealBroken as exc:  # a settings problem, not the draw's: nothing is changed, the run can be retried
        raise DrawNotReady(_("The draw's sealed seed cannot be opened with the configured COUPON_SEAL_KEYS; restore "
                             "the key it was sealed with and run it again."), details={"reason": "seal"}) from exc
    # One run at a time per draw (a session lock, dropped with a killed run's connection): a run that finds it held
    # leaves the draw to the live run — which writes the audit rows — so only a run that takes over from a dead one
    # writes ``draw.resume`` (issue #18).
    with session_lock(f"draw:{draw.pk}") as got:
        if not got:
            return Draw.objects.select_related("event", "tenant").get(pk=draw_id)
        return _draw_run_locked(draw, actor, now, seed)


def _draw_run_locked(draw: Draw, actor: Actor, now: datetime, seed: str) -> Draw:
    draw_id = draw.pk
    with transaction.atomic():
        started = Draw.objects.filter(pk=draw.pk, status=Draw.Status.COMMITTED).update(status=Draw.Status.RUNNING,
                                                                                    started_at=now)
        draw = Draw.objects.select_related("event", "tenant").select_for_update(of=("self",)).get(pk=draw_id)
        if draw.status != Draw.Status.RUNNING:
            return draw  # finished by a concurrent run meanwhile
        audit_record(tenant=draw.tenant, actor=actor, action="draw.start" if started else "draw.resume", obj=draw,
                     after={"seed_hash": draw.seed_hash, "round": draw.round})
    participants = eligible_participants(draw)
    digest = algorithm.participants_digest(participants)
    with transaction.atomic():
        locked = Draw.objects.select_for_update().get(pk=draw.pk)
        changed = bool(locked.participants_digest) and locked.participants_digest != digest
        if not changed:
            Draw.objects.filter(pk=draw.pk).update(participants_count=len(participants),
                                                   participants_digest=digest)
    if changed:
        _fail(draw, actor, "The participant list changed since this draw started; it was not drawn again.")
        raise ParticipantsChanged()
    tiers = list(PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw=draw).order_by("position").values_list("pk", "winners"))
    picks = algorithm.winners(bytes.fromhex(seed), participants, tiers)
    del participants
    for start in range(0, len(picks), WINNER_CHUNK):
        _insert_winners(draw, picks[start:start + WINNER_CHUNK])
    stored = set(DrawWinner.objects.filter(draw=draw).values_list("tier_id", "rank", "member_id"))
    if stored != set(picks):
        _fail(draw, actor, "Stored winner rows differ from the recomputed result.")
        raise DrawNotReady(_("Stored winner rows differ from the recomputed result; the draw is marked FAILED."))
    with transaction.atomic():
        # The reveal: the seed leaves its seal in the same update that makes the draw DONE.
        finished = Draw.objects.filter(pk=draw.pk, status=Draw.Status.RUNNING).update(
            status=Draw.Status.DONE, finished_at=timezone.now(), seed=seed, seed_sealed="")
        draw.refresh_from_db()
        if not finished:
            return draw  # a concurrent run of the same draw finished first, with the same winners
        audit_record(tenant=draw.tenant, actor=actor, action="draw.done", obj=draw,
                     after={"participants": draw.participants_count, "participants_digest": digest,
                            "winners": len(picks), "seed_hash": draw.seed_hash, "seed": draw.seed})
        if PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw=draw, inventory__isnull=False).exists():

            draw_pk = draw.pk
            transaction.on_commit(lambda: jobs.enqueue("draws", "draws.jobs.grant_prizes", draw_pk))
    return draw


@dataclass
class GrantSummary:
    granted: int = 0
    failed: dict[str, int] = field(default_factory=dict)


class _AlreadyGranted(Exception):
    pass


def draw_grant_prizes(*, draw_id: int, actor: Actor | None = None) -> GrantSummary:
    """Give each unforfeited winner of a tier with an inventory a coupon, once: the winner row is linked to the
    coupon inside the issue's own transaction, so a re-run skips whoever already has one."""
    actor = actor or Actor.job("grant_draw_prizes")
    draw = Draw.objects.select_related("tenant").get(pk=draw_id)
    if draw.status != Draw.Status.DONE:
        raise DrawNotReady(_("Prizes are granted after the draw is done."))
    summary = GrantSummary()
    pending = (DrawWinner.objects.filter(draw=draw, coupon__isnull=True, forfeited_at__isnull=True,
                                         tier__inventory__isnull=False)
               .select_related("tier__inventory__policy", "tier__inventory__event", "tier__inventory__tenant")
               .order_by("pk"))
    for winner in pending.iterator(chunk_size=500):
        def link(coupon: Any, winner_pk: int = winner.pk) -> None:
            if not DrawWinner.objects.filter(pk=winner_pk, coupon__isnull=True).update(coupon_id=coupon.pk,
                                                                                       grant_error=""):
                raise _AlreadyGranted()
        inventory = winner.tier.inventory
        assert inventory is not None  # the query asks for tiers with an inventory
        try:
            issue_from_pool(inventory=inventory, member_id=winner.member_id, via="grant",
                            ctx=RequestContext(), on_issued=link)
            summary.granted += 1
        except _AlreadyGranted:
            continue
        except DomainError as exc:
            if exc.transient:  # a dependency not answering: the job is retried and grants the rest then
                raise
            DrawWinner.objects.filter(pk=winner.pk, coupon__isnull=True).update(grant_error=exc.code)
            summary.failed[exc.code] = summary.failed.get(exc.code, 0) + 1
    with transaction.atomic():
        audit_record(tenant=draw.tenant, actor=actor, action="draw.grant", obj=draw,
                     after={"granted": summary.granted, "failed": summary.failed})
    return summary


def winner_forfeit(*, winner: DrawWinner, actor: Actor, now: datetime | None = None) -> DrawWinner:
    now = now or timezone.now()
    with transaction.atomic():
        if not DrawWinner.objects.filter(pk=winner.pk, forfeited_at__isnull=True).update(forfeited_at=now):
            raise DrawNotReady(_("This prize is already forfeited."))
        winner.refresh_from_db()
        audit_record(tenant=winner.draw.tenant, actor=actor, action="draw.forfeit", obj=winner,
                     after={"draw": winner.draw.public_id, "member_id": winner.member_id, "rank": winner.rank})
    return winner


def draw_redraw_create(*, draw: Draw, actor: Actor, draw_at: datetime | None = None, created_by: Any = None) -> Draw:
    """A new round for the forfeited prizes of a DONE draw: its own committed seed, the same tiers with as many
    winners as were forfeited; earlier winners of the event are not eligible."""
    if draw.status != Draw.Status.DONE:
        raise DrawNotReady(_("Only a finished draw can be re-drawn."))
    if Draw.objects.filter(parent=draw).exists():
        raise DrawNotReady(_("This draw already has a redraw; re-draw that one instead."))
    forfeited: dict[int, int] = {}
    for tier_id in DrawWinner.objects.filter(draw=draw, forfeited_at__isnull=False).values_list("tier_id", flat=True):
        forfeited[tier_id] = forfeited.get(tier_id, 0) + 1
    if not forfeited:
        raise InvalidInput(_("No prize of this draw is forfeited."))
    tiers = list(PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw=draw, pk__in=forfeited).order_by("position"))
    with transaction.atomic():
        redraw = Draw(tenant_id=draw.tenant_id, event_id=draw.event_id, name=draw.name, round=draw.round + 1,
                      parent=draw, draw_at=draw_at or timezone.now(), created_by=created_by)
        redraw.tenant, redraw.event = draw.tenant, draw.event
        redraw.save()
        PrizeTier.objects.bulk_create([PrizeTier(tenant_id=draw.tenant_id, draw=redraw, position=t.position,
                                                 name=t.name,
                                                 winners=forfeited[t.pk], inventory=t.inventory) for t in tiers])
        audit_record(tenant=draw.tenant, actor=actor, action="draw.redraw", obj=redraw,
                     after={"parent": draw.public_id, "round": redraw.round,
                            "forfeited": {t.name: forfeited[t.pk] for t in tiers}})
        draw_commit(draw=redraw, actor=actor)
    return redraw


@dataclass
class DueSummary:
    committed: int = 0
    started: int = 0
    resumed: int = 0
    waiting: int = 0
    grants: int = 0
    ids: list[int] = field(default_factory=list)


def draws_run_due(*, now: datetime | None = None, dry_run: bool = False, actor: Actor | None = None
                  ) -> DueSummary | None:
    """Cron: commit the seeds of scheduled draws, then hand each due draw (draw_at passed, event ended) to a job;
    a RUNNING draw idle for STALE_RUNNING is handed over again (it resumes). None if another run holds the lock."""

    now = now or timezone.now()
    actor = actor or Actor.job("run_due_draws")
    summary = DueSummary()
    with session_lock(DUE_LOCK) as got:
        if not got:
            return None
        just_committed = set()
        for draw in Draw.objects.select_related("tenant").filter(status=Draw.Status.SCHEDULED).order_by("pk"):
            if not PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw=draw).exists():
                continue
            summary.committed += 1
            just_committed.add(draw.pk)
            if not dry_run:
                draw_commit(draw=draw, actor=actor, now=now)
        due = (Draw.objects.select_related("event").filter(status=Draw.Status.COMMITTED, draw_at__lte=now)
               | Draw.objects.select_related("event").filter(status=Draw.Status.RUNNING,
                                                             started_at__lte=now - STALE_RUNNING))
        for draw in due.order_by("pk"):
            if draw.pk in just_committed:
                continue  # its hash was published just now; it is drawn on the next pass, not in the same breath
            if not event_has_ended(draw.event, now):
                summary.waiting += 1
                continue
            if draw.status == Draw.Status.RUNNING:
                summary.resumed += 1
            else:
                summary.started += 1
            summary.ids.append(draw.pk)
        # Prize grants whose job never ran (or died): each grant is idempotent, so handing them over again is safe.
        ungranted = list(Draw.objects.filter(status=Draw.Status.DONE, winners__coupon__isnull=True,
                                             winners__forfeited_at__isnull=True, winners__grant_error="",
                                             winners__tier__inventory__isnull=False,
                                             finished_at__lte=now - STALE_RUNNING)
                         .values_list("pk", flat=True).distinct())
        summary.grants = len(ungranted)
        if not dry_run:
            for draw_id in summary.ids:
                jobs.enqueue("draws", "draws.jobs.run_draw", draw_id)
            for draw_id in ungranted:
                jobs.enqueue("draws", "draws.jobs.grant_prizes", draw_id)
    return summary


@dataclass
class Verification:
    ok: bool
    problems: list[str]
    participants: int
    winners: int


def draw_verify(*, draw: Draw) -> Verification:
    """Recompute a DONE draw from the database's participant list and the revealed seed."""
    problems: list[str] = []
    if draw.status != Draw.Status.DONE or not draw.seed:
        return Verification(False, [f"draw is {draw.status}; only a DONE draw has a revealed seed"], 0, 0)
    seed = bytes.fromhex(draw.seed)
    if algorithm.seed_hash(seed) != draw.seed_hash:
        problems.append("sha256(seed) does not match the committed seed hash")
    participants = eligible_participants(draw)
    if len(participants) != draw.participants_count:
        problems.append(f"{len(participants)} eligible participants now, {draw.participants_count} at the draw")
    if algorithm.participants_digest(participants) != draw.participants_digest:
        problems.append("the participant list's digest differs from the one recorded at the draw")
    tiers = list(PrizeTier.objects.filter(tenant_id=draw.tenant_id, draw=draw).order_by("position").values_list("pk", "winners"))
    expected = algorithm.winners(seed, participants, tiers)
    stored = list(DrawWinner.objects.filter(draw=draw).values_list("tier_id", "rank", "member_id"))
    missing = set(expected) - set(stored)
    extra = set(stored) - set(expected)
    for tier_id, rank, member_id in sorted(missing)[:20]:
        problems.append(f"expected winner missing: tier {tier_id} rank {rank} {member_id}")
    for tier_id, rank, member_id in sorted(extra)[:20]:
        problems.append(f"unexpected winner row: tier {tier_id} rank {rank} {member_id}")
    return Verification(not problems, problems, len(participants), len(stored))
