"""Issue #11: the console language (user's choice, else the tenant's), the header switcher and the preferences page,
and dates shown in the tenant's time zone."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from core.models import AuditLog, User
from tests import factories

pytestmark = pytest.mark.django_db

KOREAN_TITLE = "쿠폰 백오피스"
ENGLISH_TITLE = "Coupon back office"


def page(client, name="admin:index", **kwargs):
    response = client.get(reverse(name), **kwargs)
    assert response.status_code == 200
    return response.content.decode()


def test_the_console_speaks_the_tenants_language_by_default(client):
    user = factories.make_operator(factories.make_tenant(language="ko"))
    client.force_login(user)
    body = page(client, HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="ko"' in body and KOREAN_TITLE in body
    client.force_login(factories.make_operator(factories.make_tenant(language="en")))
    body = page(client, HTTP_ACCEPT_LANGUAGE="ko")
    assert '<html lang="en"' in body and ENGLISH_TITLE in body


def test_the_users_own_choice_wins_over_the_tenants(client):
    user = factories.make_operator(factories.make_tenant(language="ko"))
    user.language = "en"
    user.save()
    client.force_login(user)
    assert ENGLISH_TITLE in page(client)


def test_before_login_the_console_follows_accept_language(client):
    assert '<html lang="ko"' in page(client, "admin:login", HTTP_ACCEPT_LANGUAGE="ko")
    assert '<html lang="en"' in page(client, "admin:login", HTTP_ACCEPT_LANGUAGE="en")


def test_the_header_switcher_sets_the_users_preference_and_returns_to_the_page(client, tenant):
    user = factories.make_operator(tenant)
    client.force_login(user)
    body = page(client)
    assert 'id="console-language"' in body and reverse("console-language") in body
    events = reverse("admin:events_event_changelist")
    response = client.post(reverse("console-language"), {"language": "ko", "next": events})
    assert response.status_code == 302 and response["Location"] == events
    user.refresh_from_db()
    assert user.language == "ko"
    assert KOREAN_TITLE in page(client, "admin:events_event_changelist")
    row = AuditLog.objects.get(action="user.language_set", object_id=str(user.pk))
    assert (row.before, row.after, row.tenant_id) == ({"language": ""}, {"language": "ko"}, tenant.pk)


def test_the_switcher_refuses_get_foreign_redirects_and_unknown_languages(client, tenant):
    user = factories.make_operator(tenant)
    client.force_login(user)
    assert client.get(reverse("console-language")).status_code == 405
    response = client.post(reverse("console-language"), {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == reverse("admin:index")
    response = client.post(reverse("console-language"), {"language": "fr"}, follow=True)
    assert "Unknown language “fr”." in response.content.decode()
    user.refresh_from_db()
    assert user.language == "en"
    assert AuditLog.objects.filter(action="user.language_set").count() == 1  # the "en" one only


def test_the_switcher_needs_a_csrf_token_and_a_login(tenant):
    user = factories.make_operator(tenant)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(reverse("console-language"), {"language": "ko"}).status_code == 403
    anonymous = Client()
    response = anonymous.post(reverse("console-language"), {"language": "ko"})
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    user.refresh_from_db()
    assert user.language == ""


def test_the_preferences_page_sets_and_clears_the_choice(client):
    tenant = factories.make_tenant(language="ko")
    user = factories.make_operator(tenant)
    client.force_login(user)
    body = page(client, "console-preferences")
    assert "회사 설정과 같게 (한국어)" in body  # "same as my company (Korean)", in the tenant's language
    response = client.post(reverse("console-preferences"), {"language": "en"}, follow=True)
    assert "Your preferences were saved." in response.content.decode()
    assert User.objects.get(pk=user.pk).language == "en"
    client.post(reverse("console-preferences"), {"language": ""})
    assert User.objects.get(pk=user.pk).language == ""
    assert KOREAN_TITLE in page(client)


@pytest.mark.parametrize("zone, shown", [("Asia/Seoul", "09:30:00"), ("America/New_York", "19:30:00")])
def test_console_dates_are_shown_in_the_tenants_time_zone(client, zone, shown):
    tenant = factories.make_tenant(time_zone=zone)
    event = factories.make_event(tenant, starts_at=datetime(2026, 3, 1, 0, 30, tzinfo=UTC),
                                 ends_at=datetime(2026, 3, 31, tzinfo=UTC))
    client.force_login(factories.make_operator(tenant))
    body = client.get(reverse("admin:events_event_change", args=[event.pk])).content.decode()
    assert f'name="starts_at_1" value="{shown}"' in body


def test_a_tenant_time_zone_must_be_an_iana_name():
    from django.core.exceptions import ValidationError

    tenant = factories.make_tenant()
    tenant.time_zone = "Seoul"
    with pytest.raises(ValidationError) as error:
        tenant.full_clean()
    assert "time_zone" in error.value.message_dict
