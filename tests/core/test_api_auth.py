"""R-TEN-2 and API.md Conventions: Bearer tokens, hashed storage, revocation, last use, the error shape."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from core.audit import Actor
from core.models import ApiClient
from core.services import api_client_revoke, api_client_rotate_token
from core.tokens import hash_token

URL = "/api/v1/client"


def get(token: str | None, header: str | None = None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    elif token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(URL)


def test_a_valid_token_identifies_tenant_and_client(tenant, member_client):
    client, token = member_client
    response = get(token)
    assert response.status_code == 200
    assert response.json() == {"tenant": tenant.slug, "client": client.name, "scope": "member",
                               "currency": "KRW", "rounding_unit": 10}


def test_the_token_is_stored_only_as_a_hash(member_client):
    client, token = member_client
    row = ApiClient.objects.get(pk=client.pk)
    assert row.token_hash == hash_token(token)
    assert token not in str(ApiClient.objects.filter(pk=client.pk).values().get())


@pytest.mark.parametrize("header,code", [
    (None, "not_authenticated"),
    ("Bearer cpn_aaaaaaaaaaaa_wrongsecret", "authentication_failed"),
    ("Bearer not-a-token", "authentication_failed"),
    ("Basic dXNlcjpwYXNz", "authentication_failed"),
    ("Bearer ", "authentication_failed"),
])
def test_missing_or_bad_tokens_answer_401_in_the_error_shape(db, header, code):
    response = get(None, header=header)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == code and body["message"] and body["details"] == {}
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_correct_prefix_with_a_wrong_secret_is_refused(member_client):
    client, token = member_client
    forged = token[: token.rindex("_") + 1] + "x" * 43
    assert get(forged).status_code == 401


def test_a_revoked_token_is_refused(member_client):
    client, token = member_client
    api_client_revoke(client=client, actor=Actor.system())
    response = get(token)
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_rotating_a_token_without_grace_retires_the_old_one(member_client):
    client, token = member_client
    new = api_client_rotate_token(client=client, actor=Actor.system(), grace_seconds=0)
    assert get(token).status_code == 401
    assert get(new).status_code == 200


def test_last_used_time_is_recorded(member_client):
    client, token = member_client
    assert client.last_used_at is None
    get(token)
    client.refresh_from_db()
    assert client.last_used_at is not None


def test_an_unknown_api_route_answers_404_in_the_error_shape(db):
    response = APIClient().get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_create_api_client_command_prints_a_working_token(tenant, capsys):
    call_command("create_api_client", tenant.slug, "--scope", "operator", "--name", "back office")
    token = capsys.readouterr().out.strip()
    response = get(token)
    assert response.status_code == 200 and response.json()["scope"] == "operator"


def test_create_api_client_for_an_unknown_tenant_fails_clearly(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant with slug or name 'ghost'"):
        call_command("create_api_client", "ghost")
    assert not ApiClient.objects.exists()


def test_create_tenant_command_validates_currency(db):
    from django.core.management.base import CommandError

    from core.models import Tenant

    with pytest.raises(CommandError, match="not an ISO 4217 code"):
        call_command("create_tenant", "Acme", "--currency", "WON!")
    call_command("create_tenant", "Acme", "--currency", "krw", "--rounding-unit", "10")
    tenant = Tenant.objects.get(name="Acme")
    assert (tenant.currency, tenant.rounding_unit, tenant.slug) == ("KRW", 10, "acme")


def test_the_openapi_schema_is_served_and_documents_bearer_auth(db):
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json() if response["Content-Type"].startswith("application/json") else None
    if schema is None:
        import yaml  # drf-spectacular depends on PyYAML

        schema = yaml.safe_load(response.content)
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http", "scheme": "bearer",
        "description": "Tenant API token (`cpn_…`), shown once at creation."}
    assert "/api/v1/client" in schema["paths"]


def test_the_api_docs_page_is_served_with_local_assets(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content
