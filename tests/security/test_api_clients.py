"""R-TEN-2 / issue #8: API clients with an optional IP allow-list, token rotation without downtime (two valid tokens
during a rollover), and revocation/expiry that reach every process within the token cache's lifetime."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.utils import timezone
from rest_framework.test import APIClient

from core.api import authentication
from core.exceptions import InvalidInput, InvalidState
from core.models import ApiClient, AuditLog
from tests import factories
from core.services import (api_client_end_rollover, api_client_revoke, api_client_rotate_token,
                           api_client_set_networks, parse_networks)

ACTOR = factories.TEST_ACTOR


@pytest.fixture(autouse=True)
def fresh_token_cache():
    authentication._verified.clear()
    yield
    authentication._verified.clear()


def get(token: str, **extra):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/client", **extra)


# --- rotation -------------------------------------------------------------------------------------------------------

def test_after_rotation_both_tokens_work_during_the_grace_period_then_only_the_new_one(member_client, settings):
    settings.COUPON_TOKEN_ROTATION_GRACE_SECONDS = 3600
    client, old = member_client
    new = api_client_rotate_token(client=client, actor=ACTOR)
    assert get(old).status_code == 200
    assert get(new).status_code == 200
    client.refresh_from_db()
    assert timedelta(minutes=59) < client.previous_valid_until - timezone.now() <= timedelta(hours=1)
    # The grace period ends (moved into the past here instead of waiting an hour): the old token stops.
    ApiClient.objects.filter(pk=client.pk).update(previous_valid_until=timezone.now() - timedelta(seconds=1))
    authentication._verified.clear()  # another process, which has not cached the old token
    assert get(old).status_code == 401
    assert get(new).status_code == 200


def test_a_cached_previous_token_is_not_trusted_past_its_end_of_validity(member_client, settings):
    """The per-process cache keeps an entry for a rotated-out token no longer than that token is valid."""
    settings.COUPON_TOKEN_CACHE_SECONDS = 60
    client, old = member_client
    api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=3)  # 3 s: ample even on a loaded machine
    assert get(old).status_code == 200  # verified and cached, for at most the 3 s left
    time.sleep(3.2)
    assert get(old).status_code == 401


def test_rotating_again_stops_the_oldest_token_at_once(member_client):
    client, first = member_client
    second = api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=3600)
    third = api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=3600)
    assert [get(t).status_code for t in (first, second, third)] == [401, 200, 200]


def test_ending_the_rollover_stops_the_previous_token_now(member_client):
    client, old = member_client
    new = api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=3600)
    assert get(old).status_code == 200
    api_client_end_rollover(client=client, actor=ACTOR)
    assert get(old).status_code == 401 and get(new).status_code == 200
    assert AuditLog.objects.filter(action="api_client.end_rollover", object_id=str(client.pk)).count() == 1
    with pytest.raises(InvalidState):
        api_client_end_rollover(client=client, actor=ACTOR)


def test_revoking_stops_both_tokens_of_a_rollover(member_client):
    client, old = member_client
    new = api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=3600)
    api_client_revoke(client=client, actor=ACTOR)
    assert get(old).status_code == 401 and get(new).status_code == 401


def test_a_negative_grace_period_is_refused_and_changes_nothing(member_client):
    client, token = member_client
    with pytest.raises(InvalidInput):
        api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=-1)
    client.refresh_from_db()
    assert client.previous_key_prefix is None and get(token).status_code == 200


def test_rotation_is_audited_with_both_prefixes(member_client):
    client, _ = member_client
    old_prefix = client.key_prefix
    api_client_rotate_token(client=client, actor=ACTOR, grace_seconds=60)
    row = AuditLog.objects.get(action="api_client.rotate_token", object_id=str(client.pk))
    assert row.before["key_prefix"] == old_prefix
    assert row.after["key_prefix"] == client.key_prefix and row.after["previous_key_prefix"] == old_prefix


# --- revocation and the per-process cache ---------------------------------------------------------------------------

def test_revocation_by_another_process_takes_effect_within_the_cache_ttl(member_client, settings):
    """The revoking process forgets the token at once; any other process within COUPON_TOKEN_CACHE_SECONDS. Simulated
    here by revoking in the database only (what this process sees of a revocation done elsewhere)."""
    settings.COUPON_TOKEN_CACHE_SECONDS = 3  # ample, even on a loaded machine, for the two requests in between
    client, token = member_client
    assert get(token).status_code == 200  # cached now
    ApiClient.objects.filter(pk=client.pk).update(revoked_at=timezone.now())
    assert get(token).status_code == 200  # still within this process's cache entry
    time.sleep(3.2)
    response = get(token)
    assert response.status_code == 401 and "revoked" in response.json()["message"]


def test_revocation_in_this_process_takes_effect_at_once(member_client, settings):
    settings.COUPON_TOKEN_CACHE_SECONDS = 60
    client, token = member_client
    assert get(token).status_code == 200
    api_client_revoke(client=client, actor=ACTOR)
    assert get(token).status_code == 401


# --- IP allow-list --------------------------------------------------------------------------------------------------

def test_an_allow_list_admits_its_networks_and_refuses_other_addresses(member_client):
    client, token = member_client
    api_client_set_networks(client=client, networks="203.0.113.0/24\n2001:db8::/32", actor=ACTOR)
    assert get(token, REMOTE_ADDR="203.0.113.77").status_code == 200
    assert get(token, REMOTE_ADDR="2001:db8::5").status_code == 200
    refused = get(token, REMOTE_ADDR="198.51.100.1")
    assert refused.status_code == 403
    assert refused.json()["code"] == "ip_not_allowed"
    assert "IP address" in refused.json()["message"]


def test_an_empty_allow_list_admits_any_address(member_client):
    _, token = member_client
    assert get(token, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_x_forwarded_for_is_ignored_unless_a_trusted_proxy_is_configured(member_client, settings):
    client, token = member_client
    api_client_set_networks(client=client, networks="203.0.113.9", actor=ACTOR)
    forged = {"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert get(token, **forged).status_code == 403
    settings.COUPON_TRUSTED_PROXY_COUNT = 1
    # Behind one proxy the address it appended (rightmost) counts; entries further left are the client's own claim.
    assert get(token, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
    assert get(token, REMOTE_ADDR="10.0.0.2",
               HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1").status_code == 403
    assert get(token, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip").status_code == 403


def test_allow_list_changes_reach_this_process_at_once(member_client, settings):
    settings.COUPON_TOKEN_CACHE_SECONDS = 60
    client, token = member_client
    assert get(token, REMOTE_ADDR="198.51.100.1").status_code == 200
    api_client_set_networks(client=client, networks="203.0.113.0/24", actor=ACTOR)
    assert get(token, REMOTE_ADDR="198.51.100.1").status_code == 403
    api_client_set_networks(client=client, networks="", actor=ACTOR)
    assert get(token, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_a_bad_network_is_refused_naming_the_line_and_changes_nothing(member_client):
    client, _ = member_client
    with pytest.raises(InvalidInput) as caught:
        api_client_set_networks(client=client, networks="203.0.113.0/24\n300.1.2.3/8", actor=ACTOR)
    assert "Line 2" in caught.value.message and "300.1.2.3/8" in caught.value.message
    client.refresh_from_db()
    assert client.allowed_networks == ""
    assert parse_networks(" 10.0.0.1 \n10.0.0.0/8, 10.1.2.3/8 ") == ["10.0.0.1/32", "10.0.0.0/8"]


# --- console --------------------------------------------------------------------------------------------------------

def test_console_rotate_action_keeps_the_old_token_for_the_grace_period(tenant, member_client, operator_user,
                                                                        client, settings):
    settings.COUPON_TOKEN_ROTATION_GRACE_SECONDS = 600
    api_client, old = member_client
    client.force_login(operator_user)
    response = client.post("/admin/core/apiclient/", {"action": "rotate_token", "_selected_action": [api_client.pk],
                                                  "confirm": "yes"},
                           follow=True)
    assert response.status_code == 200
    text = [str(m) for m in response.context["messages"]]
    new = next(m.split("(shown only once): ")[1].split(" ")[0] for m in text if "New token" in m)
    assert "keeps working until" in text[0]
    assert get(old).status_code == 200 and get(new).status_code == 200
    client.post("/admin/core/apiclient/", {"action": "end_rollover", "_selected_action": [api_client.pk],
                                                  "confirm": "yes"})
    assert get(old).status_code == 401 and get(new).status_code == 200


def test_console_edits_the_allow_list_through_the_service(tenant, member_client, operator_user, client):
    api_client, token = member_client
    client.force_login(operator_user)
    url = f"/admin/core/apiclient/{api_client.pk}/change/"
    bad = client.post(url, {"allowed_networks": "not a network"})
    assert bad.status_code == 200 and "not an IP address or network" in bad.content.decode()
    ok = client.post(url, {"allowed_networks": "203.0.113.0/24"})
    assert ok.status_code == 302
    api_client.refresh_from_db()
    assert api_client.allowed_networks == "203.0.113.0/24"
    assert AuditLog.objects.filter(action="api_client.set_networks", object_id=str(api_client.pk)).exists()
    assert get(token, REMOTE_ADDR="198.51.100.1").status_code == 403
    assert site._registry[ApiClient] is not None
