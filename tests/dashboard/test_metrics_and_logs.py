"""R-OPS observability: /metrics after a claim and a redeem, its protection, job durations, request ids in logs."""
from __future__ import annotations

import io
import json
import logging

import pytest
from django.conf import settings
from prometheus_client import REGISTRY
from pythonjsonlogger.json import JsonFormatter

from core.log import RequestContextFilter
from tests import factories


def sample_job(x: int) -> int:
    return x * 2


def failing_job() -> None:
    raise RuntimeError("permanent")


def metric(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_metrics_count_a_committed_claim_and_redeem_and_the_requests(api, client, tenant,
                                                                       django_capture_on_commit_callbacks):
    """R-OPS: coupon_issues_total / coupon_redemptions_total move once per committed claim / redeem; requests are
    counted by view, method and status."""
    policy = factories.make_approved_policy(tenant, kind="percentage", rate=10, cap=5000, threshold=20000)
    inventory, _ = factories.make_pool(tenant, size=3, policy=policy)
    posts_before = metric("coupon_http_requests_total", view="api-claims", method="POST", status="201") or 0
    with django_capture_on_commit_callbacks(execute=True):
        code = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                        format="json").json()["coupon"]["code"]
        response = api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order_id": "o-1",
                                                               "order": factories.order(30_000)}, format="json")
        assert response.status_code == 200, response.json()
        # A refused claim (limit of one) is not counted.
        assert api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                        format="json").status_code == 409
    body = client.get("/metrics").content.decode()
    assert f'coupon_issues_total{{tenant="{tenant.pk}",via="inventory"}} 1.0' in body
    assert f'coupon_redemptions_total{{tenant="{tenant.pk}"}} 1.0' in body
    assert metric("coupon_http_requests_total", view="api-claims", method="POST", status="201") == posts_before + 1
    assert 'coupon_http_request_duration_seconds_bucket{le="0.005",method="POST",view="api-claims"}' in body


def test_metrics_are_refused_to_other_addresses_unless_they_send_the_token(client, db, settings):
    settings.METRICS_TOKEN = "t" * 32
    assert client.get("/metrics").status_code == 200  # loopback is allowed by default
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403 and b"bearer token" in response.content
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9",
                      HTTP_AUTHORIZATION="Bearer " + "t" * 32).status_code == 200
    assert client.post("/metrics").status_code == 405


def test_behind_trusted_proxies_metrics_judge_the_forwarded_caller(client, db, settings):
    """Issue #17: behind a proxy REMOTE_ADDR is the proxy's (often an allowed local address); with
    COUPON_TRUSTED_PROXY_COUNT set, the address the proxy forwarded is the caller."""
    settings.METRICS_TOKEN = ""
    settings.COUPON_TRUSTED_PROXY_COUNT = 1
    from_internet = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert from_internet.status_code == 403
    from_the_host = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert from_the_host.status_code == 200
    spoofed = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.9")
    assert spoofed.status_code == 403  # only the entry our proxy appended counts


def test_the_rq_worker_class_times_jobs_by_queue_function_and_outcome(db):
    """R-OPS: coupon_job_duration_seconds comes from the worker class settings.RQ names."""
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL")
    from redis import Redis
    from rq import Queue

    from core.worker import MetricsSimpleWorker

    assert settings.RQ["WORKER_CLASS"] == "core.worker.MetricsWorker"
    connection = Redis.from_url(settings.REDIS_URL)
    queue = Queue("metrics-test", connection=connection)
    queue.empty()
    labels = {"queue": "metrics-test", "function": "tests.dashboard.test_metrics_and_logs.sample_job"}
    before_ok = metric("coupon_job_duration_seconds_count", **labels, outcome="ok") or 0
    before_failed = metric("coupon_job_duration_seconds_count", queue="metrics-test",
                           function="tests.dashboard.test_metrics_and_logs.failing_job", outcome="failed") or 0
    queue.enqueue(sample_job, 21)
    queue.enqueue(failing_job)
    MetricsSimpleWorker([queue], connection=connection).work(burst=True)
    assert metric("coupon_job_duration_seconds_count", **labels, outcome="ok") == before_ok + 1
    assert metric("coupon_job_duration_seconds_count", queue="metrics-test",
                  function="tests.dashboard.test_metrics_and_logs.failing_job", outcome="failed") == before_failed + 1


def test_in_process_jobs_are_timed_like_the_workers_jobs(db, settings):
    """R-OPS: without Redis (the embedded quick start) jobs run in a thread pool of the web process; each attempt
    lands in coupon_job_duration_seconds under the same labels as a worker's."""
    import time

    from core import jobs

    settings.USE_REDIS, settings.JOBS_SYNC, settings.JOB_RETRY_INTERVALS = False, False, []
    ok = {"queue": "exports", "function": "tests.dashboard.test_metrics_and_logs.sample_job", "outcome": "ok"}
    failed = {"queue": "exports", "function": "tests.dashboard.test_metrics_and_logs.failing_job",
              "outcome": "failed"}
    before = (metric("coupon_job_duration_seconds_count", **ok) or 0,
              metric("coupon_job_duration_seconds_count", **failed) or 0)
    jobs.enqueue("exports", sample_job, 21)
    jobs.enqueue("exports", failing_job)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        after = (metric("coupon_job_duration_seconds_count", **ok) or 0,
                 metric("coupon_job_duration_seconds_count", **failed) or 0)
        if after == (before[0] + 1, before[1] + 1):
            break
        time.sleep(0.05)
    assert after == (before[0] + 1, before[1] + 1)


def test_a_request_id_is_echoed_or_made_up(client, db):
    assert client.get("/health/", HTTP_X_REQUEST_ID="abc-123").headers["X-Request-ID"] == "abc-123"
    made_up = client.get("/health/", HTTP_X_REQUEST_ID="bad id\n with spaces").headers["X-Request-ID"]
    assert len(made_up) == 32 and made_up != "bad id\n with spaces"


def test_json_log_lines_carry_the_request_id_and_the_tenant_id(api, tenant):
    """R-OPS: LOG_FORMAT=json lines name the request (X-Request-ID) and the API client's tenant."""
    spec = settings.LOGGING["formatters"]["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"]))
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = api.post("/api/v1/coupons/NOSUCHCODE/redeem", {"member_id": "m-1", "order_id": "o-1",
                                                                    "order": factories.order()},
                            format="json", HTTP_X_REQUEST_ID="req-42")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "req-42"
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["level"], line["logger"], line["request_id"], line["tenant_id"]) == (
        "WARNING", "django.request", "req-42", tenant.pk)
    assert "NOSUCHCODE" in line["message"]


def test_log_format_is_validated(monkeypatch):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']="
                             "'coupon_project.settings'; django.setup()"],
                            env={**__import__("os").environ, "LOG_FORMAT": "xml"}, capture_output=True, text=True)
    assert result.returncode != 0 and "LOG_FORMAT must be 'json' or 'text'" in result.stderr
