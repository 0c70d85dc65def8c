"""R-RISK-3 webhooks: an alarm's delivery is written with it (outbox), POSTed to a real local HTTP server with an
HMAC-SHA256 signature of the body and a timestamp, every attempt recorded; failures are retried with backoff by the
job (RQ) and by `manage.py deliver_webhooks` (cron), and given up after MAX_ATTEMPTS."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from coupons.models import CouponInventory
from risk import budgets, webhooks
from risk.jobs import WebhookNotDelivered, deliver_webhook_job
from risk.models import Alarm, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests import factories
from tests.risk.util import claim
from tests.risk.webhook_receiver import receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def allow_private_receivers(settings):
    """The receiver here is a local HTTP server (127.0.0.1): allowed only with COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS.
    The SSRF tests below switch it off again."""
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


def raise_alarm(inventory, threshold=80):
    with transaction.atomic():
        return budgets.raise_alarm(inventory=inventory, budget="issue_count", threshold=threshold, spent=8, limit=10,
                                   now=timezone.now())


def test_an_alarm_crossed_by_a_claim_is_posted_signed_to_the_tenants_endpoint(tenant, api,
                                                                              django_capture_on_commit_callbacks):
    inventory, _ = factories.make_pool(tenant, size=5)
    CouponInventory.objects.filter(pk=inventory.pk).update(issue_budget_count=1)
    with receiver() as hook:
        endpoint = WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=hook.url)
        WebhookEndpoint.objects.create(tenant=tenant, name="off", url=hook.url + "/off", is_active=False)
        before = int(time.time())
        with django_capture_on_commit_callbacks(execute=True):
            assert claim(api, inventory, "m-1").status_code == 201
        # one claim reaches the whole budget of 1: it crosses 80 % and 100 % — two alarms, two POSTs; the inactive
        # endpoint gets nothing
        assert sorted(b["threshold"] for b in hook.bodies()) == [80, 100]
        request = next(r for r in hook.requests if json.loads(r["body"])["threshold"] == 100)
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/coupons"
    assert headers["X-Coupon-Signature"] == "sha256=" + hmac.new(endpoint.secret.encode(), body,
                                                                 hashlib.sha256).hexdigest()
    assert before <= int(headers["X-Coupon-Timestamp"]) <= int(time.time())
    assert headers["X-Coupon-Event"] == "budget.alarm" and headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    alarm = Alarm.objects.get(inventory=inventory, threshold=100)
    assert payload == {"event": "budget.alarm", "tenant": tenant.slug, "inventory": inventory.public_id,
                       "inventory_name": inventory.name, "budget": "issue_count", "threshold": 100, "spent": 1,
                       "limit": 1, "raised_at": alarm.raised_at.astimezone(ZoneInfo(tenant.time_zone)).replace(
                           microsecond=0).isoformat(), "alarm_id": alarm.pk,
                       "message": f"Budget alarm: the issue budget (count) of {inventory.name} has reached 100 % "
                                  "(1 of 1)."}
    delivery = WebhookDelivery.objects.get(alarm=alarm)
    assert headers["X-Coupon-Delivery"] == str(delivery.pk)
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 1)
    assert list(delivery.attempt_log.values_list("status_code", "error")) == [(200, "")]


def test_the_alarm_message_is_in_the_tenants_language_and_the_fields_are_not(tenant):
    """Issue #11: the one sentence for people follows the tenant's language; the machine fields never change."""
    tenant.language = "ko"
    tenant.save(update_fields=["language"])
    inventory, _ = factories.make_pool(tenant, size=1)
    with transaction.atomic():
        alarm = budgets.raise_alarm(inventory=inventory, budget="use_amount", threshold=80, spent=1_600_000,
                                    limit=2_000_000, now=timezone.now())
    payload = webhooks.alarm_payload(Alarm.objects.select_related("inventory__tenant").get(pk=alarm.pk))
    assert payload["message"] == (f"예산 알림: {inventory.name}의 사용 예산 (금액)이(가) 80 %에 도달했습니다 "
                                  "(2,000,000 중 1,600,000).")
    assert (payload["budget"], payload["spent"], payload["limit"]) == ("use_amount", 1_600_000, 2_000_000)


def test_a_failed_delivery_is_recorded_retried_with_backoff_and_delivered_by_the_cron_command(tenant, settings):
    settings.COUPON_WEBHOOK_JOB_ATTEMPTS = 1  # one attempt per job here: the job's own retries are tested below
    inventory, _ = factories.make_pool(tenant, size=1)
    with receiver() as hook:
        WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=hook.url)
        alarm = raise_alarm(inventory)
        delivery = WebhookDelivery.objects.get(alarm=alarm)
        hook.status = 500
        with pytest.raises(WebhookNotDelivered):  # the job fails, so RQ retries it with backoff
            deliver_webhook_job(delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("PENDING", 1, "HTTP 500")
        assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
        call_command("deliver_webhooks")  # not due yet: nothing sent
        assert len(hook.requests) == 1
        hook.status = 204
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        call_command("deliver_webhooks")
        call_command("deliver_webhooks")  # twice: nothing sent twice
        assert len(hook.requests) == 2
        assert hook.requests[0]["body"] == hook.requests[1]["body"]  # the same bytes on every attempt
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 2)
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)) == [500, 204]


def test_an_unreachable_endpoint_is_given_up_after_max_attempts(tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    WebhookEndpoint.objects.create(tenant=tenant, name="gone", url="http://127.0.0.1:9/nothing-listens")
    delivery = WebhookDelivery.objects.get(alarm=raise_alarm(inventory))
    for _ in range(webhooks.MAX_ATTEMPTS):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        webhooks.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "FAILED" and delivery.attempts == webhooks.MAX_ATTEMPTS
    assert "ConnectError" in delivery.last_error
    assert webhooks.webhook_deliver(delivery_id=delivery.pk) == "FAILED"  # no further attempt
    assert delivery.attempt_log.count() == webhooks.MAX_ATTEMPTS


def test_backoff_doubles_up_to_an_hour():
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_an_alarm_without_endpoints_writes_no_delivery_and_an_alarm_is_raised_once(tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    assert raise_alarm(inventory) is not None
    assert raise_alarm(inventory) is None
    assert Alarm.objects.count() == 1 and WebhookDelivery.objects.count() == 0


def test_deliver_webhooks_refuses_a_bad_limit():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--limit must be between 1 and 10000; got 0"):
        call_command("deliver_webhooks", "--limit", "0")


# --- SSRF guard (R-RISK-3 webhooks, issue #8 review) ---------------------------------------------------------------

@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("10.1.2.3", "private"),
    ("192.168.0.10", "private"), ("172.16.5.5", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"), ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"), ("100.64.0.1", "non-public"),
    ("8.8.8.8", None), ("2001:4860:4860::8888", None),
])
def test_addresses_a_webhook_may_not_go_to(address, kind):
    import ipaddress

    assert webhooks.address_problem(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("url, code, text", [
    ("ftp://hooks.example.com/x", "invalid_url", "http:// or https://"),
    ("file:///etc/passwd", "invalid_url", "http:// or https://"),
    ("http:///no-host", "invalid_url", "no host"),
    ("http://127.0.0.1:8080/hook", "unsafe_url", "resolves to a loopback address"),
    ("http://localhost/hook", "unsafe_url", "resolves to a loopback address"),
    ("http://[::1]/hook", "unsafe_url", "resolves to a loopback address"),
    ("http://10.0.0.7/hook", "unsafe_url", "resolves to a private address"),
    ("http://169.254.169.254/latest/meta-data", "unsafe_url", "resolves to a link-local address"),
])
def test_the_service_refuses_non_http_and_non_public_urls_and_saves_nothing(tenant, settings, url, code, text):
    from core.exceptions import InvalidInput
    from risk import services

    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(InvalidInput, match=text) as refused:
        services.webhook_endpoint_save(endpoint=WebhookEndpoint(tenant=tenant, name="x", url=url),
                                       actor=factories.TEST_ACTOR)
    assert refused.value.code == code
    assert not WebhookEndpoint.objects.exists()


def test_private_urls_are_saved_only_with_the_setting_and_never_other_schemes(tenant, settings):
    from core.exceptions import InvalidInput
    from risk import services

    save = lambda url: services.webhook_endpoint_save(  # noqa: E731
        endpoint=WebhookEndpoint(tenant=tenant, name="x", url=url), actor=factories.TEST_ACTOR)
    assert save("http://10.0.0.7/hook").pk  # the autouse fixture: private networks allowed
    with pytest.raises(InvalidInput, match="http:// or https://"):
        save("gopher://10.0.0.7/hook")
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    assert save("https://8.8.8.8/hook").pk  # a public address
    assert save("https://hooks.invalid/coupons").pk  # does not resolve now: checked again at every delivery


def test_a_delivery_to_a_host_resolving_privately_at_send_time_fails_without_connecting(tenant, settings):
    """Saved while allowed (or while its name pointed elsewhere): at send time "localhost" resolves to loopback →
    the attempt is recorded as refused, the delivery FAILED at once (no retry), and the receiver got nothing."""
    inventory, _ = factories.make_pool(tenant, size=1)
    with receiver() as hook:
        url = hook.url.replace("127.0.0.1", "localhost")
        WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=url)
        delivery = WebhookDelivery.objects.get(alarm=raise_alarm(inventory))
        settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
        deliver_webhook_job(delivery.pk)  # FAILED is final: the job does not ask RQ for a retry
        assert hook.requests == []
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("FAILED", 1)
        assert delivery.last_error.startswith("refused: The webhook host localhost resolves to a loopback address")
        assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [None]
        call_command("deliver_webhooks")
        assert hook.requests == [] and delivery.attempt_log.count() == 1
        # the same endpoint with private networks allowed is delivered (the guard was the only difference)
        settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
        second = WebhookDelivery.objects.get(alarm=raise_alarm(inventory, threshold=100))
        assert webhooks.webhook_deliver(delivery_id=second.pk) == "DELIVERED"
        assert len(hook.requests) == 1


def test_a_public_address_is_pinned_with_the_name_in_host_and_sni(settings):
    """The attempt connects to the address that was checked, so a changed DNS answer cannot redirect it."""
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    target = webhooks.delivery_target("https://8.8.8.8:8443/hooks?x=1")
    assert target == webhooks.Target(url="https://8.8.8.8:8443/hooks?x=1", host_header="8.8.8.8:8443",
                                      sni_hostname="8.8.8.8")
    target = webhooks.delivery_target("http://[2001:4860:4860::8888]/h")
    assert target.url == "http://[2001:4860:4860::8888]:80/h" and target.host_header == "[2001:4860:4860::8888]"


def test_a_pinned_delivery_reaches_the_checked_address_with_the_name_in_the_host_header(tenant, settings,
                                                                                       monkeypatch):
    """The pinned request really works: the address check is stubbed to accept loopback (only so the local server
    can stand in for a public one); the POST goes to the resolved 127.0.0.1 and carries Host: localhost:<port>."""
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setattr(webhooks, "address_problem", lambda address: None)
    inventory, _ = factories.make_pool(tenant, size=1)
    with receiver() as hook:
        url = hook.url.replace("127.0.0.1", "localhost") + "?k=v"
        assert webhooks.delivery_target(url).url.startswith(("http://127.0.0.1:", "http://[::1]:"))
        WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=url)
        delivery = WebhookDelivery.objects.get(alarm=raise_alarm(inventory))
        status = webhooks.webhook_deliver(delivery_id=delivery.pk)
        if status != "DELIVERED":  # "localhost" resolved to ::1 first, where the IPv4-only server does not listen
            pytest.skip(f"localhost resolves to ::1 first here: {WebhookDelivery.objects.get(pk=delivery.pk)}")
        assert [(r["path"], r["headers"]["Host"]) for r in hook.requests] == [
            ("/hooks/coupons?k=v", f"localhost:{hook.server.server_address[1]}")]


# --- issue #18: the job itself retries with backoff ----------------------------------------------------------------

class DownReceiver:
    """A real HTTP server whose port refuses connections (bound, not listening) until `up()`."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.statuses: list[int] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N802,N805
                handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                self.statuses.append(204)
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.server_bind()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/coupons"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def up(self) -> None:
        self.server.server_activate()
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def test_a_receiver_down_for_three_attempts_gets_the_delivery_from_the_same_job_after_backoff(tenant, settings,
                                                                                             monkeypatch):
    import risk.jobs

    settings.COUPON_WEBHOOK_JOB_ATTEMPTS, settings.COUPON_WEBHOOK_JOB_BACKOFF_SECONDS = 5, 0.01
    inventory, _ = factories.make_pool(tenant, size=1)
    hook = DownReceiver()
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # the job's backoff; the receiver comes back after the third failure
        pauses.append(seconds)
        if len(pauses) == 3:
            hook.up()

    monkeypatch.setattr(risk.jobs.time, "sleep", pause)
    try:
        WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=hook.url)
        delivery = WebhookDelivery.objects.get(alarm=raise_alarm(inventory))
        deliver_webhook_job(delivery.pk)  # one job run: three refused connections, then delivered
    finally:
        hook.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 4)
    assert pauses == [0.01, 0.02, 0.04]  # growing pauses between the attempts
    log = list(delivery.attempt_log.order_by("id").values_list("status_code", "error"))
    assert [code for code, _ in log] == [None, None, None, 204]
    assert all(error.startswith("ConnectError") for _, error in log[:3])
    assert hook.statuses == [204]


def test_a_job_whose_every_attempt_fails_is_a_transient_failure_so_rq_retries_it(tenant, settings, monkeypatch):
    import risk.jobs
    from core.jobs import is_transient

    settings.COUPON_WEBHOOK_JOB_ATTEMPTS, settings.COUPON_WEBHOOK_JOB_BACKOFF_SECONDS = 2, 0.01
    monkeypatch.setattr(risk.jobs.time, "sleep", lambda seconds: None)
    inventory, _ = factories.make_pool(tenant, size=1)
    hook = DownReceiver()  # never comes up
    try:
        WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=hook.url)
        delivery = WebhookDelivery.objects.get(alarm=raise_alarm(inventory))
        with pytest.raises(WebhookNotDelivered) as failure:
            deliver_webhook_job(delivery.pk)
    finally:
        hook.close()
    assert is_transient(failure.value)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("PENDING", 2)
