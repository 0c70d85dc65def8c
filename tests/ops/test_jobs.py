"""Jobs on real RQ (R-OPS-1): transient failures are retried with backoff, permanent ones go to the failed registry
at once, and the console shows, re-queues and discards them — scoped to the operator's tenant."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from core.jobs import enqueue, is_transient
from core.models import AuditLog
from ops.permissions import JOB_OPERATORS_GROUP, ensure_job_operators_group
from tests import factories
from tests.ops import sample_jobs
from tests.ops.conftest import run_worker

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("rq")]


def job_operator(tenant):
    ensure_job_operators_group()
    user = factories.make_operator(tenant)
    user.groups.add(Group.objects.get(name=JOB_OPERATORS_GROUP))
    return user


def test_transient_and_permanent_errors_are_told_apart():
    """R-OPS-1: connection trouble and timeouts are retried; domain and programming errors are not."""
    from django.db import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from core.exceptions import InvalidInput

    assert is_transient(OperationalError("could not connect"))
    assert is_transient(RedisConnectionError("refused"))
    assert is_transient(TimeoutError())
    try:
        try:
            raise OperationalError("deadlock detected")
        except OperationalError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_transient(outer)  # the cause decides
    assert not is_transient(InvalidInput("bad"))
    from core.redis import DependencyUnavailable
    from rq.exceptions import AbandonedJobError

    assert is_transient(DependencyUnavailable())  # issue #18: "not now" (Redis not answering), not "no"
    assert is_transient(AbandonedJobError())  # issue #18: the worker died under the job; the job resumes
    assert not is_transient(ValueError("bad"))
    assert not is_transient(KeyError("x"))


def test_a_transiently_failing_job_succeeds_on_an_immediate_retry(rq_queues, settings):
    """R-OPS-1: two lost connections, then success — all inside one burst of a real worker."""
    settings.JOB_RETRY_INTERVALS = [0, 0, 0]
    job_id = enqueue("generation", sample_jobs.flaky, "now", 2)
    run_worker([rq_queues["generation"]])
    job = rq_queues["generation"].fetch_job(job_id)
    assert job.get_status() == "finished"
    assert sample_jobs.attempts("now") == 3 and sample_jobs.done("now")
    assert rq_queues["generation"].failed_job_registry.count == 0


def test_a_transient_failure_is_retried_after_its_backoff_interval(rq_queues, settings):
    """R-OPS-1: the retry waits in the scheduled registry for its interval, then the scheduler runs it."""
    settings.JOB_RETRY_INTERVALS = [2, 60]
    job_id = enqueue("expiry", sample_jobs.flaky, "later", 1)
    queue = rq_queues["expiry"]
    failed_at = time.monotonic()
    run_worker([queue])
    job = queue.fetch_job(job_id)
    assert job.get_status() == "scheduled"
    assert job_id in queue.scheduled_job_registry
    assert job.retries_left == 1
    assert job.meta["failure"] == "transient"
    assert not sample_jobs.done("later")
    if time.monotonic() - failed_at < 1.5:  # (a loaded machine may already be past the interval)
        run_worker([queue], with_scheduler=True)  # not due yet: stays scheduled
        assert not sample_jobs.done("later")
    time.sleep(max(0.0, failed_at + 2.2 - time.monotonic()))
    run_worker([queue], with_scheduler=True)
    assert sample_jobs.done("later") and sample_jobs.attempts("later") == 2
    assert queue.fetch_job(job_id).get_status() == "finished"


def test_a_permanent_failure_goes_to_the_failed_registry_without_retries(rq_queues, settings):
    """R-OPS-1: a DomainError is not retried even though the job has retries configured."""
    settings.JOB_RETRY_INTERVALS = [0, 0, 0]
    job_id = enqueue("uploads", sample_jobs.refused_until_fixed, "perm")
    queue = rq_queues["uploads"]
    run_worker([queue])
    assert sample_jobs.attempts("perm") == 1
    assert job_id in queue.failed_job_registry
    job = queue.fetch_job(job_id)
    assert job.meta["failure"] == "permanent"
    error = job.latest_result().exc_string
    assert "InvalidInput" in error and "SECRET-CAUSE" in error


def test_a_transient_failure_that_outlasts_its_retries_lands_in_the_failed_registry(rq_queues, settings):
    settings.JOB_RETRY_INTERVALS = [0, 0]
    job_id = enqueue("grants", sample_jobs.flaky, "always", 99)
    run_worker([rq_queues["grants"]])
    assert sample_jobs.attempts("always") == 3  # first run + two retries
    assert job_id in rq_queues["grants"].failed_job_registry


def test_failed_job_is_shown_in_the_console_and_requeued_from_it(rq_queues, settings, admin_client, admin_user):
    """R-OPS-1 must-show: fails permanently → on the console page with its error → re-queued by POST → succeeds."""
    settings.JOB_RETRY_INTERVALS = [0]
    queue = rq_queues["uploads"]
    job_id = enqueue("uploads", sample_jobs.refused_until_fixed, "console")
    run_worker([queue])
    assert job_id in queue.failed_job_registry

    overview = admin_client.get(reverse("ops:jobs")).content.decode()
    assert 'data-queue="uploads"' in overview and 'id="no-workers"' in overview
    listing = admin_client.get(reverse("ops:failed_jobs") + "?queue=uploads").content.decode()
    assert f'data-job-id="{job_id}"' in listing and "SECRET-CAUSE" in listing
    detail = admin_client.get(reverse("ops:failed_job", args=["uploads", job_id])).content.decode()
    assert "Traceback" in detail and "InvalidInput" in detail

    url = reverse("ops:failed_job_action", args=["uploads", job_id, "requeue"])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Yes, re-queue" in confirm.content.decode()
    assert job_id in queue.failed_job_registry  # the GET changed nothing
    admin_client.post(url)  # no confirmation: nothing happens
    assert job_id in queue.failed_job_registry

    sample_jobs.redis().set(f"{sample_jobs.PREFIX}console:fixed", "1")  # the operator fixed the cause
    response = admin_client.post(url, {"confirm": "yes"}, follow=True)
    body = response.content.decode()
    assert f"Job {job_id} (tests.ops.sample_jobs.refused_until_fixed) on queue uploads requeued." in body
    assert job_id not in queue.failed_job_registry and job_id in queue.job_ids
    row = AuditLog.objects.get(action="job.requeue")
    assert (row.object_type, row.object_id, row.actor_id) == ("rq.Job", job_id, str(admin_user.pk))
    assert row.before["queue"] == "uploads" and "SECRET-CAUSE" in row.before["error"]

    run_worker([queue])
    assert sample_jobs.done("console") and sample_jobs.attempts("console") == 2
    assert queue.fetch_job(job_id).get_status() == "finished"


def test_failed_job_is_discarded_from_the_console(rq_queues, settings, admin_client):
    settings.JOB_RETRY_INTERVALS = [0]
    queue = rq_queues["draws"]
    job_id = enqueue("draws", sample_jobs.refused_until_fixed, "discard")
    run_worker([queue])
    url = reverse("ops:failed_job_action", args=["draws", job_id, "discard"])
    body = admin_client.post(url, {"confirm": "yes"}, follow=True).content.decode()
    assert "discarded." in body
    assert job_id not in queue.failed_job_registry and queue.fetch_job(job_id) is None
    assert AuditLog.objects.filter(action="job.discard", object_id=job_id).count() == 1
    again = admin_client.post(url, {"confirm": "yes"}, follow=True).content.decode()
    assert "No such failed job" in again  # a second click is refused, not a 500
    assert AuditLog.objects.filter(action="job.discard", object_id=job_id).count() == 1


def test_a_tenant_operator_sees_and_requeues_only_their_tenants_failed_jobs(rq_queues, settings, client, tenant,
                                                                             other_tenant):
    """R-OPS-1, R-TEN-3: tenant A's job operator never sees, opens or re-queues tenant B's (or platform) jobs."""
    settings.JOB_RETRY_INTERVALS = [0]
    queue = rq_queues["exports"]
    mine = enqueue("exports", sample_jobs.refused_until_fixed, "mine", tenant_id=tenant.pk)
    theirs = enqueue("exports", sample_jobs.refused_until_fixed, "SECRETB", tenant_id=other_tenant.pk)
    platform = enqueue("exports", sample_jobs.refused_until_fixed, "platform")
    run_worker([queue])
    assert {mine, theirs, platform} <= set(queue.failed_job_registry.get_job_ids())

    client.force_login(job_operator(tenant))
    listing = client.get(reverse("ops:failed_jobs")).content.decode()
    assert mine in listing and theirs not in listing and platform not in listing and "SECRETB" not in listing
    overview = client.get(reverse("ops:jobs")).content.decode()
    assert 'id="queues"' not in overview and 'id="workers"' not in overview  # platform-wide figures
    for job_id in (theirs, platform):
        assert client.get(reverse("ops:failed_job", args=["exports", job_id])).status_code == 404
        for action in ("requeue", "discard"):
            url = reverse("ops:failed_job_action", args=["exports", job_id, action])
            assert client.get(url).status_code == 404
            client.post(url, {"confirm": "yes"})
            assert job_id in queue.failed_job_registry
    assert not AuditLog.objects.filter(action__startswith="job.").exists()

    client.post(reverse("ops:failed_job_action", args=["exports", mine, "requeue"]), {"confirm": "yes"})
    assert mine not in queue.failed_job_registry
    assert AuditLog.objects.get(action="job.requeue").tenant_id == tenant.pk


def test_users_without_the_permission_cannot_open_the_job_pages(rq_queues, client, tenant):
    client.force_login(factories.make_operator(tenant))
    assert client.get(reverse("ops:jobs")).status_code == 403
    assert client.get(reverse("ops:failed_jobs")).status_code == 403
    body = client.get(reverse("admin:index")).content.decode()
    assert reverse("ops:jobs") not in body


def test_view_only_job_operators_cannot_requeue(rq_queues, settings, client, tenant):
    from django.contrib.auth.models import Permission

    settings.JOB_RETRY_INTERVALS = [0]
    queue = rq_queues["default"]
    job_id = enqueue("default", sample_jobs.refused_until_fixed, "viewonly", tenant_id=tenant.pk)
    run_worker([queue])
    user = factories.make_viewer(tenant)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="ops", codename="view_jobs"))
    client.force_login(user)
    assert job_id in client.get(reverse("ops:failed_jobs")).content.decode()
    assert client.post(reverse("ops:failed_job_action", args=["default", job_id, "requeue"]),
                       {"confirm": "yes"}).status_code == 403
    assert job_id in queue.failed_job_registry


def test_without_redis_the_pages_say_jobs_run_in_process(admin_client, settings):
    settings.USE_REDIS = False
    for name in ("ops:jobs", "ops:failed_jobs"):
        response = admin_client.get(reverse(name))
        assert response.status_code == 200
        assert 'id="jobs-not-configured"' in response.content.decode()


def test_the_job_pages_are_in_the_console_navigation_for_superusers(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("ops:jobs") in body and reverse("ops:failed_jobs") in body
