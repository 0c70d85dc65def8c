"""Prize draws and winners (R-DRAW-1..3). The algorithm lives in ``draws.algorithm``; state changes in services."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.fields import PublicIdField
from core.models import Tenant
from events.models import Event


class Draw(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED", "scheduled"
        COMMITTED = "COMMITTED", "seed committed"
        RUNNING = "RUNNING", "running"
        DONE = "DONE", "done"
        FAILED = "FAILED", "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="draws")
    public_id = PublicIdField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    draw_at = models.DateTimeField(help_text="Not before this time, and only once the event has ended.")
    # sha256 hex of the 32-byte seed, published when committed (before the draw); the seed is shown once DONE.
    seed_hash = models.CharField(max_length=64, blank=True, editable=False)
    seed = models.CharField(max_length=64, blank=True, editable=False)
    round = models.PositiveIntegerField(default=1, editable=False)
    parent = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="redraw",
                                  editable=False, help_text="The draw whose forfeited prizes this round re-draws.")
    participants_count = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # sha256 of the eligible list ("\n"-joined, UTF-8) the winners were drawn from: anyone can check their copy.
    participants_digest = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", editable=False)
    error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    committed_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-draw_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["SCHEDULED", "COMMITTED", "RUNNING", "DONE", "FAILED"]),
                                   name="draw_status_valid"),
            # No draw runs without a published commitment.
            models.CheckConstraint(condition=Q(status__in=["SCHEDULED", "FAILED"]) | (
                Q(seed_hash__regex=r"^[0-9a-f]{64}$") & Q(seed__regex=r"^[0-9a-f]{64}$")),
                name="draw_committed_has_seed"),
            models.CheckConstraint(condition=(Q(round=1) & Q(parent__isnull=True))
                                   | (Q(round__gte=2) & Q(parent__isnull=False)), name="draw_round_parent"),
            models.CheckConstraint(condition=~Q(status="DONE") | (Q(finished_at__isnull=False)
                                                                  & Q(participants_count__isnull=False)),
                                   name="draw_done_has_result"),
        ]
        indexes = [models.Index(fields=["status", "draw_at"], name="draw_status_due")]

    def __str__(self) -> str:
        return f"{self.name} (round {self.round})"


class PrizeTier(models.Model):
    draw = models.ForeignKey(Draw, on_delete=models.PROTECT, related_name="tiers")
    position = models.PositiveIntegerField(default=1, help_text="Tier 1 is filled first.")
    name = models.CharField(max_length=200)
    winners = models.PositiveIntegerField(default=1)
    inventory = models.ForeignKey("coupons.CouponInventory", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", help_text="Optional: grant winners a coupon of this inventory.")

    class Meta:
        ordering = ["draw", "position"]
        constraints = [
            models.UniqueConstraint(fields=["draw", "position"], name="prizetier_unique_position"),
            models.CheckConstraint(condition=Q(winners__gte=1), name="prizetier_winners_positive"),
            models.CheckConstraint(condition=Q(position__gte=1), name="prizetier_position_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name} × {self.winners}"


class DrawWinner(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    draw = models.ForeignKey(Draw, on_delete=models.PROTECT, related_name="winners")
    tier = models.ForeignKey(PrizeTier, on_delete=models.PROTECT, related_name="winner_rows")
    member_id = models.CharField(max_length=64)
    rank = models.PositiveIntegerField()
    coupon = models.ForeignKey("coupons.CouponCode", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    grant_error = models.CharField(max_length=64, blank=True)
    forfeited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draw", "tier__position", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["draw", "member_id"], name="winner_unique_member"),
            models.UniqueConstraint(fields=["draw", "tier", "rank"], name="winner_unique_rank"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="winner_rank_positive"),
            models.CheckConstraint(condition=Q(forfeited_at__isnull=True) | Q(forfeited_at__gte=F("created_at")),
                                   name="winner_forfeit_after_win"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} — {self.tier.name if self.tier_id else ''} #{self.rank}"
