"""Console actions that change money or access ask first, and the confirming POST cannot widen the selection."""
from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from core.models import ApiClient
from core.services import api_client_create
from tests import factories

SYSTEM = factories.TEST_ACTOR


@pytest.fixture
def clients(tenant, other_tenant):
    ours, _ = api_client_create(tenant=tenant, name="mall app", scope="member", actor=SYSTEM)
    theirs, _ = api_client_create(tenant=other_tenant, name="SECRETB app", scope="member", actor=SYSTEM)
    return ours, theirs


def post_action(client, ids, follow=False, **extra):
    return client.post(reverse("admin:core_apiclient_changelist"),
                       {"action": "revoke", helpers.ACTION_CHECKBOX_NAME: [str(i) for i in ids], **extra},
                       follow=follow)


def test_revoking_api_clients_shows_what_will_change_and_changes_nothing_yet(client, tenant, clients):
    ours, _ = clients
    client.force_login(factories.make_operator(tenant))

    response = post_action(client, [ours.pk], index="0")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-confirm-action="revoke"' in body and "mall app" in body
    assert 'name="confirm" value="yes"' in body
    ours.refresh_from_db()
    assert ours.revoked_at is None


def test_the_confirming_post_runs_the_action_once_and_says_so(client, tenant, clients):
    ours, theirs = clients
    client.force_login(factories.make_operator(tenant))

    response = post_action(client, [ours.pk, theirs.pk], confirm="yes", follow=True)

    assert response.status_code == 200
    assert "Revoked 1 API client." in response.content.decode()
    assert ApiClient.objects.get(pk=ours.pk).revoked_at is not None
    assert ApiClient.objects.get(pk=theirs.pk).revoked_at is None  # another tenant's id is not in the selection
