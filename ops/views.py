"""Console pages for background jobs (R-OPS-1): queues and workers, the failed registry, re-queue and discard.

Mounted under /admin/ops/ and wrapped by admin.site.admin_view (login, staff, CSRF). Who sees what: ops.permissions.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from core.exceptions import DomainError
from ops import selectors, services
from ops.permissions import can_manage_jobs, can_view_jobs
from django.urls import reverse

ACTIONS = {
    "requeue": (_("Re-queue"), services.failed_job_requeue,
                _("The job goes back on its queue and runs again with the same arguments.")),
    "discard": (_("Discard"), services.failed_job_discard,
                _("The job is deleted from the failed registry and will not run again.")),
}


def _context(request: HttpRequest, title: str, **extra: object) -> dict:
    return {**admin.site.each_context(request), "title": title, "configured": selectors.jobs_configured(), **extra}


def _require_view(request: HttpRequest) -> None:
    if not can_view_jobs(request):
        raise PermissionDenied


def jobs(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    ctx = _context(request, gettext("Jobs and queues"))
    if ctx["configured"]:
        ctx["failed_count"] = None
        if request.user.is_superuser:
            ctx["queues"] = selectors.queue_stats()
            ctx["workers"] = selectors.workers()
        else:
            ctx["failed_count"] = len(selectors.failed_jobs(request.user))
    return TemplateResponse(request, "ops/jobs.html", ctx)


def failed_jobs(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    queue = request.GET.get("queue") or None
    ctx = _context(request, gettext("Failed jobs"), queue=queue, queue_names=selectors.queue_names(),
                   queue_choices=[(name, selectors.queue_label(name)) for name in selectors.queue_names()],
                   can_manage=can_manage_jobs(request))
    if ctx["configured"]:
        if queue is not None and queue not in selectors.queue_names():
            messages.error(request, gettext("Unknown queue %(queue)r; showing every queue.") % {"queue": queue})
            queue = ctx["queue"] = None
        ctx["jobs"] = selectors.failed_jobs(request.user, queue=queue)
    return TemplateResponse(request, "ops/failed_jobs.html", ctx)


def failed_job(request: HttpRequest, queue: str, job_id: str) -> HttpResponse:
    _require_view(request)
    if not selectors.jobs_configured():
        return redirect("ops:jobs")
    job = selectors.failed_job(request.user, queue=queue, job_id=job_id)
    if job is None:
        raise Http404(gettext("No such failed job."))
    return TemplateResponse(request, "ops/failed_job.html",
                            _context(request, gettext("Failed job %(id)s") % {"id": job.id}, job=job, can_manage=can_manage_jobs(request)))


@require_http_methods(["GET", "POST"])
def failed_job_action(request: HttpRequest, queue: str, job_id: str, action: str) -> HttpResponse:
    """GET: the confirmation page. POST (with ``confirm``): do it, say what was done, back to the list."""
    if not can_manage_jobs(request):
        raise PermissionDenied
    if action not in ACTIONS or not selectors.jobs_configured():
        raise Http404(gettext("No such action."))
    label, service, explanation = ACTIONS[action]
    job = selectors.failed_job(request.user, queue=queue, job_id=job_id)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            result = service(user=request.user, queue=queue, job_id=job_id)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            done = (gettext("Job %(id)s (%(func)s) on queue %(queue)s requeued.") if result.action == "requeued"
                    else gettext("Job %(id)s (%(func)s) on queue %(queue)s discarded."))
            messages.success(request, done % {"id": result.job_id, "func": result.func_name, "queue": result.queue})
        return redirect(f"{_failed_url()}?queue={queue}")
    if job is None:
        raise Http404(gettext("No such failed job."))
    return TemplateResponse(request, "ops/confirm_action.html",
                            _context(request, gettext("%(action)s failed job?") % {"action": label}, job=job, action=action, label=label,
                                     explanation=explanation))


def _failed_url() -> str:
    return reverse("ops:failed_jobs")


def wrap(view):  # noqa: ANN001, ANN201
    return admin.site.admin_view(view)
