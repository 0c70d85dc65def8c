"""Console for draws: tiers inline; the draw page with its commitment, buttons to commit, run, redraw and retry the
prize grants, the winners (paginated, with their prize and grant status) and every failure with its reason in the
operator's language; list actions for the same, and the winners list."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import TenantScopedAdmin, user_tenant_id
from core.admin_confirm import confirm_action
from core.exceptions import DomainError, message_for_code
from core.spreadsheets import XLSX_CONTENT_TYPE, local_stamp
from draws import selectors, services
from draws.exports import DeleteOnClose, winners_xlsx
from draws.models import Draw, DrawWinner, PrizeTier
from events.windows import entries_closed
from coupons.models import CouponInventory

WINNERS_PER_PAGE = 50


class PrizeTierInline(admin.TabularInline):
    model = PrizeTier
    fields = ["position", "name", "winners", "inventory"]
    extra = 1

    def _editable(self, obj: Any) -> bool:
        return obj is None or obj.status == Draw.Status.SCHEDULED  # the tiers are fixed once the seed is committed

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "inventory":
            tenant_id = user_tenant_id(request)
            qs = CouponInventory.objects.all()
            kwargs["queryset"] = qs if tenant_id is None else qs.filter(tenant_id=tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Draw)
class DrawAdmin(TenantScopedAdmin):
    list_display = ["name", "tenant", "public_id", "event", "round", "status", "draw_at", "participants_count",
                    "finished_at"]
    list_filter = ["status", "tenant"]
    search_fields = ["name", "public_id", "event__name", "event__public_id"]
    list_select_related = ["event", "tenant"]
    inlines = [PrizeTierInline]
    actions = ["commit_seed", "run_now", "create_redraw", "export_winners_xlsx"]
    change_form_template = "admin/draws/draw/change_form.html"
    fieldsets = [
        (None, {"fields": ["event", "name", "draw_at"]}),
        (_("Commitment"), {"fields": ["public_id", "status", "round", "parent", "seed_hash", "revealed_seed",
                                   "committed_at", "started_at", "finished_at", "participants_count",
                                   "participants_digest", "error"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = ["public_id", "status", "round", "parent", "seed_hash", "revealed_seed", "committed_at",
                    "started_at", "finished_at", "participants_count", "participants_digest", "error"]
        if obj is not None and obj.status != Draw.Status.SCHEDULED:
            readonly += ["event", "name", "draw_at"]
        return [*readonly, *[f for f in super().get_readonly_fields(request, obj) if f not in readonly]]

    @admin.display(description=_("seed (revealed once done)"))
    def revealed_seed(self, obj: Draw) -> str:
        return obj.seed if obj.status == Draw.Status.DONE else gettext("— secret until the draw is done —")

    def save_with_service(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        services.draw_save(draw=obj, actor=self.actor(request))

    # the draw page: its buttons and what it shows -------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [path("<int:object_id>/do/<str:step>/", view(self.step_view), name="draws_draw_step"),
                *super().get_urls()]

    def step_view(self, request: HttpRequest, object_id: int, step: str) -> Any:
        """The page's buttons (POST): commit the seed, run, redraw the forfeited prizes, grant the prizes again."""
        draw = self.get_object(request, str(object_id))  # tenant-scoped: another tenant's draw is a 404
        if draw is None or step not in ("commit", "run", "redraw", "grant"):
            raise Http404(gettext("No such draw."))
        page = reverse("admin:draws_draw_change", args=[draw.pk])
        if request.method != "POST":
            return HttpResponseRedirect(page)
        if not self.has_change_permission(request, draw):
            raise DjangoPermissionDenied
        actor = self.actor(request)
        try:
            if step == "commit":
                services.draw_commit(draw=draw, actor=actor)
                done = gettext("The seed is committed; its hash is published.")
            elif step == "run":
                draw = services.draw_run(draw_id=draw.pk, actor=actor, before_draw_at=True)
                done = gettext("Drawn: %(count)s winners.") % {"count": f"{draw.winners.count():,}"}
            elif step == "redraw":
                redraw = services.draw_redraw_create(draw=draw, actor=actor, created_by=request.user)
                self.message_user(request, gettext("Redraw created and committed."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:draws_draw_change", args=[redraw.pk]))
            else:
                summary = services.draw_grant_prizes(draw_id=draw.pk, actor=actor)
                done = gettext("Prizes granted: %(granted)s; failed: %(failed)s.") % {
                    "granted": f"{summary.granted:,}", "failed": f"{sum(summary.failed.values()):,}"}
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(page)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra: dict[str, Any] = dict(extra_context or {})
        draw = self.get_object(request, object_id) if object_id.isdigit() else None
        if draw is not None:
            now = timezone.now()
            winners = selectors.draw_winners(draw=draw)
            paginator = Paginator(winners, WINNERS_PER_PAGE)
            page = paginator.get_page(request.GET.get("winners_page"))
            failed = selectors.draw_failed_grants(draw=draw)
            failures = list(failed[:200])
            for failure in failures:
                failure.reason = message_for_code(failure.grant_error)
            for winner in page.object_list:
                winner.reason = message_for_code(winner.grant_error) if winner.grant_error else ""
            entries_close = draw.event.ends_at
            extra.update({
                "winners_page": page, "failures": failures,
                "failure_count": failed.count(),
                "entries_close": entries_close, "entries_closed": entries_closed(draw.event, now),
                "committed_before_entries_closed": draw.committed_at is not None and draw.committed_at < entries_close,
                "can_change": self.has_change_permission(request, draw),
                "can_redraw": selectors.draw_can_redraw(draw=draw),
                "has_prizes": selectors.draw_has_prizes(draw=draw),
            })
        return super().change_view(request, object_id, form_url, extra)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if form.instance.status != Draw.Status.SCHEDULED:
            return
        for tier in formset.save(commit=False):
            if tier.inventory_id and tier.inventory.tenant_id != form.instance.tenant_id:
                raise DomainError(_("A prize inventory must belong to the draw's tenant."))
            tier.save()
        for tier in formset.deleted_objects:
            tier.delete()

    def _each(self, request: HttpRequest, queryset: QuerySet, fn: Any, done: Any) -> None:
        count = 0
        for draw in queryset.order_by("pk"):
            try:
                fn(draw)
                count += 1
            except DomainError as exc:
                self.message_user(request, f"{draw}: {exc.message}", messages.ERROR)
        if count:
            self.message_user(request, ngettext("%(done)s: %(count)d draw.", "%(done)s: %(count)d draws.", count)
                              % {"done": done, "count": count}, messages.SUCCESS)

    @admin.action(description=_("Commit seed (publish its hash)"), permissions=["change"])
    def commit_seed(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, lambda d: services.draw_commit(draw=d, actor=self.actor(request)),
                   _("Seed committed"))

    @admin.action(description=_("Run draw now"), permissions=["change"])
    @confirm_action()
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, lambda d: services.draw_run(draw_id=d.pk, actor=self.actor(request),
                                                                  before_draw_at=True), _("Drawn"))

    @admin.action(description=_("Redraw forfeited prizes (new round)"), permissions=["change"])
    @confirm_action()
    def create_redraw(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, lambda d: services.draw_redraw_create(
            draw=d, actor=self.actor(request), created_by=request.user), _("Redraw created and committed"))

    @admin.action(description=_("Export winners to XLSX"), permissions=["view"])
    def export_winners_xlsx(self, request: HttpRequest, queryset: QuerySet) -> Any:
        draws = list(queryset.filter(status=Draw.Status.DONE).order_by("pk"))
        path = winners_xlsx(draws)
        # the time in the file name is the tenant's, as the operator reads it (issue #20)
        zone = draws[0].tenant.time_zone if draws else None
        name = f"winners-{draws[0].public_id if len(draws) == 1 else 'draws'}-{local_stamp(timezone.now(), zone)}.xlsx"
        return FileResponse(DeleteOnClose(path), as_attachment=True, filename=name,
                            content_type=XLSX_CONTENT_TYPE)


@admin.register(DrawWinner)
class DrawWinnerAdmin(TenantScopedAdmin):
    list_display = ["member_id", "draw", "tier", "rank", "coupon", "grant_error_message", "forfeited_at"]
    list_filter = [("forfeited_at", admin.EmptyFieldListFilter), "tenant"]

    @admin.display(description=_("grant error"), ordering="grant_error")
    def grant_error_message(self, obj: DrawWinner) -> str:
        """The reason in the reader's language, not the stored error code (issue #20)."""
        return message_for_code(obj.grant_error) if obj.grant_error else "-"
    search_fields = ["member_id", "draw__public_id"]
    list_select_related = ["draw", "tier", "coupon"]
    actions = ["forfeit"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if request.user.has_perm("draws.change_drawwinner"):
            return actions
        actions.pop("forfeit", None)
        return actions

    @admin.action(description=_("Forfeit the selected prizes (then redraw them from the draw list)"))
    @confirm_action()
    def forfeit(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = 0
        for winner in queryset.filter(forfeited_at__isnull=True).select_related("draw__tenant"):
            services.winner_forfeit(winner=winner, actor=self.actor(request))
            done += 1
        self.message_user(request, ngettext("Forfeited %(count)d prize.", "Forfeited %(count)d prizes.", done)
                          % {"count": done}, messages.SUCCESS)
