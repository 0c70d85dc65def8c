"""Prize draws and winners (R-DRAW-1..3). The algorithm lives in ``draws.algorithm``; state changes in services."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext

from core.fields import PublicIdField
from core.models import Tenant
from events.models import Event


class Draw(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED", _("scheduled")
        COMMITTED = "COMMITTED", _("seed committed")
        RUNNING = "RUNNING", _("running")
        DONE = "DONE", _("done")
        FAILED = "FAILED", _("failed")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(Event, db_constraint=False,
                              verbose_name=_("event"), on_delete=models.PROTECT, related_name="draws")
    public_id = PublicIdField(_("public ID"))
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    draw_at = models.DateTimeField(_("draw at"),
                                   help_text=_("Not before this time, and only once the event has ended."))
    # sha256 hex of the 32-byte seed, published when committed (before the draw). Until the draw is DONE the seed
    # exists only sealed (core.sealing: encrypted with a key from the settings, not the database), so nobody who
    # reads the tables or the console can compute the winners ahead; at DONE it is revealed in ``seed``.
    seed_hash = models.CharField(_("seed hash"), max_length=64, blank=True, editable=False)
    seed_sealed = models.TextField(_("sealed seed"), blank=True, editable=False)
    seed = models.CharField(_("seed"), max_length=64, blank=True, editable=False)
    round = models.PositiveIntegerField(_("round"), default=1, editable=False)
    parent = models.OneToOneField("self", db_constraint=False, verbose_name=_("redraw of"), null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="redraw",
                                  editable=False, help_text=_("The draw whose forfeited prizes this round re-draws."))
    participants_count = models.PositiveIntegerField(_("number of participants"), null=True, blank=True, editable=False)
    # sha256 of the eligible list ("\n"-joined, UTF-8) the winners were drawn from: anyone can check their copy.
    participants_digest = models.CharField(_("participants digest"), max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.PROTECT,
                                   related_name="+", editable=False)
    error = models.TextField(_("error"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    committed_at = models.DateTimeField(_("committed at"), null=True, blank=True, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("draw")
        verbose_name_plural = _("draws")
        ordering = ["-draw_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["SCHEDULED", "COMMITTED", "RUNNING", "DONE", "FAILED"]),
                                   name="draw_status_valid"),
            # No draw runs without a published commitment; the seed stays sealed until the draw is done.
            models.CheckConstraint(condition=Q(status__in=["SCHEDULED", "FAILED"]) | Q(seed_hash__regex=r"^[0-9a-f]{64}$"),
                                   name="draw_committed_has_hash"),
            models.CheckConstraint(condition=~Q(status__in=["COMMITTED", "RUNNING"]) | (Q(seed="")
                                                                                       & ~Q(seed_sealed="")),
                                   name="draw_seed_sealed_until_done"),
            models.CheckConstraint(condition=~Q(status="DONE") | Q(seed__regex=r"^[0-9a-f]{64}$"),
                                   name="draw_done_reveals_seed"),
            models.CheckConstraint(condition=(Q(round=1) & Q(parent__isnull=True))
                                   | (Q(round__gte=2) & Q(parent__isnull=False)), name="draw_round_parent"),
            models.CheckConstraint(condition=~Q(status="DONE") | (Q(finished_at__isnull=False)
                                                                  & Q(participants_count__isnull=False)),
                                   name="draw_done_has_result"),
        ]
        indexes = [models.Index(fields=["status", "draw_at"], name="draw_status_due")]

    def __str__(self) -> str:
        return gettext("%(name)s (round %(round)d)") % {"name": self.name, "round": self.round}


class PrizeTier(models.Model):
    # The parent's tenant, copied: the distribution key (#23) — every tenant table carries it, and its keys to
    # other tenant tables are (tenant_id, …_id) in the database (core/keys.py).
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    draw = models.ForeignKey(Draw, db_constraint=False,
                             verbose_name=_("draw"), on_delete=models.PROTECT, related_name="tiers")
    position = models.PositiveIntegerField(_("position"), default=1, help_text=_("Tier 1 is filled first."))
    name = models.CharField(_("name"), max_length=200)
    winners = models.PositiveIntegerField(_("number of winners"), default=1)
    inventory = models.ForeignKey("coupons.CouponInventory", db_constraint=False,
                                  verbose_name=_("inventory"), null=True, blank=True,
                                  on_delete=models.PROTECT,
                                  related_name="+", help_text=_("Optional: grant winners a coupon of this inventory."))

    class Meta:
        verbose_name = _("prize tier")
        verbose_name_plural = _("prize tiers")
        ordering = ["draw", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "draw", "position"], name="prizetier_unique_position"),
            models.CheckConstraint(condition=Q(winners__gte=1), name="prizetier_winners_positive"),
            models.CheckConstraint(condition=Q(position__gte=1), name="prizetier_position_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name} × {self.winners}"


class DrawWinner(models.Model):
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    draw = models.ForeignKey(Draw, db_constraint=False,
                             verbose_name=_("draw"), on_delete=models.PROTECT, related_name="winners")
    tier = models.ForeignKey(PrizeTier, db_constraint=False, verbose_name=_("prize tier"), on_delete=models.PROTECT,
                             related_name="winner_rows")
    member_id = models.CharField(_("member ID"), max_length=64)
    rank = models.PositiveIntegerField(_("rank"))
    coupon = models.ForeignKey("coupons.CouponCode", db_constraint=False,
                               verbose_name=_("coupon"), null=True, blank=True,
                               on_delete=models.PROTECT,
                               related_name="+")
    grant_error = models.CharField(_("grant error"), max_length=64, blank=True)
    forfeited_at = models.DateTimeField(_("forfeited at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("winner")
        verbose_name_plural = _("winners")
        ordering = ["draw", "tier__position", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "draw", "member_id"], name="winner_unique_member"),
            models.UniqueConstraint(fields=["tenant", "draw", "tier", "rank"], name="winner_unique_rank"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="winner_rank_positive"),
            models.CheckConstraint(condition=Q(forfeited_at__isnull=True) | Q(forfeited_at__gte=F("created_at")),
                                   name="winner_forfeit_after_win"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} — {self.tier.name if self.tier_id else ''} #{self.rank}"
