"""Console pieces for batch generation and partner distribution, mixed into ``CouponBatchAdmin`` (R-CODE-5, R-PART-4).

Design: docs/design/codes.md#coupons-admin-generation.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from core.audit import Actor
from core.exceptions import DomainError
from coupons.services.generation import batch_generation_progress, batch_generation_running, batch_start_generation
from coupons.models import CouponBatch

GENERATE_PERMISSION = "coupons.change_couponbatch"
DISTRIBUTE_PERMISSION = "partners.add_distribution"


class BatchGenerationAdminMixin:
    """Add to ``CouponBatchAdmin``'s bases (before ``TenantScopedAdmin``), which gives it ``get_queryset`` and
    ``message_user`` (hence the ``type: ignore[attr-defined]`` on their calls)."""

    change_form_template = "admin/coupons/couponbatch/change_form.html"
    generation_actions = ["generate_codes"]

    # permissions -----------------------------------------------------------------------------------------------------

    def has_generate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(GENERATE_PERMISSION)

    def has_distribute_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DISTRIBUTE_PERMISSION)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        allowed = {"generate_codes": self.has_generate_permission(request)}
        for name in self.generation_actions:
            if allowed[name] and name not in actions:
                action = self.get_action(name)  # type: ignore[attr-defined]
                if action is not None:
                    actions[name] = action
        return actions

    # urls ------------------------------------------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view  # type: ignore[attr-defined]
        return [
            path("<int:object_id>/generation/start/", view(self.generation_start_view),
                 name="coupons_couponbatch_generate"),
            path("<int:object_id>/generation/progress/", view(self.generation_progress_view),
                 name="coupons_couponbatch_progress"),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def _batch(self, request: HttpRequest, object_id: int) -> CouponBatch:
        return get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=object_id)  # type: ignore[attr-defined]

    def _actor(self, request: HttpRequest) -> Actor:
        return Actor.user(request.user)

    def _start(self, request: HttpRequest, batch: CouponBatch) -> bool:
        try:
            batch_start_generation(batch=batch, actor=self._actor(request))
        except DomainError as exc:
            self.message_user(request, f"{batch.batch_code}: {exc.message}", messages.ERROR)  # type: ignore[attr-defined]
            return False
        values = {"batch": batch.batch_code, "count": f"{batch.quantity - batch.generated_count:,}"}
        text = (_("%(batch)s: resuming %(count)s codes in the background. The batch page shows the progress.")
                if batch.generated_count else
                _("%(batch)s: generating %(count)s codes in the background. The batch page shows the progress."))
        self.message_user(request, text % values, messages.SUCCESS)  # type: ignore[attr-defined]
        return True

    # views -----------------------------------------------------------------------------------------------------------

    def generation_start_view(self, request: HttpRequest, object_id: int) -> Any:
        batch = self._batch(request, object_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:coupons_couponbatch_change", args=[batch.pk]))
        if not self.has_generate_permission(request):
            raise DjangoPermissionDenied
        self._start(request, batch)
        return HttpResponseRedirect(reverse("admin:coupons_couponbatch_change", args=[batch.pk]))

    def generation_progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        batch = self._batch(request, object_id)
        progress = batch_generation_progress(batch)
        progress["worker_active"] = batch.status != CouponBatch.Status.COMPLETED and \
            batch_generation_running(batch.pk)
        return JsonResponse(progress)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra: dict[str, Any] = dict(extra_context or {})
        if object_id.isdigit() and self.get_queryset(request).filter(pk=int(object_id)).exists():  # type: ignore[attr-defined]
            extra.update({
                "generation_start_url": reverse("admin:coupons_couponbatch_generate", args=[object_id]),
                "generation_progress_url": reverse("admin:coupons_couponbatch_progress", args=[object_id]),
                # partners sits above coupons: the page links to its distribution view by URL name only
                "distribute_url": reverse("admin:partners_distribution_distribute") + f"?batch={object_id}",
                "distributions_url": reverse("admin:partners_distribution_changelist") + f"?batch__id__exact={object_id}",
                "can_generate": self.has_generate_permission(request),
                "can_distribute": self.has_distribute_permission(request),
            })
        return super().change_view(request, object_id, form_url, extra)  # type: ignore[misc]

    # list actions ----------------------------------------------------------------------------------------------------

    @admin.action(description=_("Generate (or resume) the selected batches' codes"))
    def generate_codes(self, request: HttpRequest, queryset: QuerySet) -> None:
        if not self.has_generate_permission(request):
            raise DjangoPermissionDenied
        for batch in queryset.select_related("tenant"):
            self._start(request, batch)
