"""Prometheus metrics (prometheus_client): HTTP requests, job durations, coupon issues and redemptions.

Design: docs/design/jobs-and-operations.md#core-metrics.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest)

from core.addresses import connection_ip
from prometheus_client import multiprocess

HTTP_REQUESTS = Counter("coupon_http_requests", "HTTP requests answered, by view, method and status.",
                        ["view", "method", "status"])
HTTP_LATENCY = Histogram("coupon_http_request_duration_seconds", "Time to answer an HTTP request, by view and method.",
                         ["view", "method"],
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
JOB_DURATION = Histogram("coupon_job_duration_seconds", "Time an RQ job ran, by queue, function and outcome.",
                         ["queue", "function", "outcome"],
                         buckets=(.05, .1, .5, 1, 5, 15, 60, 300, 900, 3600, 10800))
ISSUES = Counter("coupon_issues", "Coupons issued to members (committed), by tenant id and way of issue.",
                 ["tenant", "via"])
REDEMPTIONS = Counter("coupon_redemptions", "Coupons redeemed (committed), by tenant id.", ["tenant"])


def record_issue(tenant_id: int, via: str) -> None:
    """Call through ``transaction.on_commit``: a rolled-back claim is never counted."""
    ISSUES.labels(tenant=str(tenant_id), via=via).inc()


def record_redemption(tenant_id: int) -> None:
    """Call through ``transaction.on_commit``."""
    REDEMPTIONS.labels(tenant=str(tenant_id)).inc()


def record_job(*, queue: str, function: str, ok: bool, seconds: float) -> None:
    JOB_DURATION.labels(queue=queue, function=function, outcome="ok" if ok else "failed").observe(seconds)


class MetricsMiddleware:
    """Counts and times every request. The view label is the URL name (bounded), never the raw path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match is not None else "unresolved"
        method = request.method if request.method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
                                                      "OPTIONS") else "other"
        HTTP_REQUESTS.labels(view=view, method=method, status=str(response.status_code)).inc()
        HTTP_LATENCY.labels(view=view, method=method).observe(time.perf_counter() - started)
        return response


def _registry() -> Any:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def operator_caller(request: HttpRequest) -> bool:
    """A caller trusted with operational detail (/metrics, /health/'s queues): the metrics bearer token, or an
    address in COUPON_METRICS_ALLOWED_IPS — the connection's, or behind COUPON_TRUSTED_PROXY_COUNT trusted proxies
    the one they forwarded (issue #17: behind a proxy REMOTE_ADDR is the proxy, and may well be allowed)."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(connection_ip(request))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics in the Prometheus text format; 403 unless the caller's address is allowed or it sends the
    bearer token (COUPON_METRICS_ALLOWED_IPS / COUPON_METRICS_TOKEN)."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponse("Use GET.\n", status=405, content_type="text/plain", headers={"Allow": "GET, HEAD"})
    if not operator_caller(request):
        return HttpResponse("Forbidden: this address may not read metrics; send the metrics bearer token.\n",
                            status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
