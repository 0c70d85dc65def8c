"""R-TEN-2 in the console: an operator creates an API client for their own tenant and sees the token once."""
from __future__ import annotations

import re

from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from core.models import ApiClient, AuditLog


def test_operator_creates_a_client_for_their_tenant_and_sees_a_working_token_once(client, tenant, operator_user):
    client.force_login(operator_user)
    response = client.post(reverse("admin:core_apiclient_add"), {"name": "mall app", "scope": "member"})
    assert response.status_code == 302
    created = ApiClient.objects.get(name="mall app")
    assert created.tenant == tenant
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    token = re.search(r"(cpn_\S+)", " ".join(shown)).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/client").json()["client"] == "mall app"
    first_view = client.get(response["Location"]).content.decode()  # the page after the redirect shows it …
    assert token in first_view
    again = client.get(reverse("admin:core_apiclient_change", args=[created.pk])).content.decode()
    assert token not in again  # … and nothing shows it again
    assert AuditLog.objects.filter(action="api_client.create", object_id=str(created.pk)).count() == 1


def test_revoke_action_stops_the_token(client, tenant, operator_user, member_client):
    api_client, token = member_client
    client.force_login(operator_user)
    client.post(reverse("admin:core_apiclient_changelist"), {"action": "revoke", "_selected_action": [api_client.pk],
                                                                 "confirm": "yes"})
    api_client.refresh_from_db()
    assert api_client.revoked_at is not None
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/client").status_code == 401


def test_a_viewer_cannot_create_clients(client, tenant):
    from tests.factories import make_viewer

    client.force_login(make_viewer(tenant))
    assert client.post(reverse("admin:core_apiclient_add"), {"name": "x", "scope": "member"}).status_code == 403
    assert not ApiClient.objects.filter(name="x").exists()


def test_the_login_page_explains_who_signs_in_here(client, db):
    page = client.get(reverse("admin:login")).content.decode()
    assert "Sign in with your back-office account" in page
    assert "Coupon platform — back office" in page
