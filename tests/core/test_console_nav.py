"""The console navigation (core/console.py): registered pages show for users allowed to open them, only."""
from __future__ import annotations

import pytest
from django.urls import reverse

from core import console
from tests import factories


@pytest.fixture
def nav_page():
    console.register_page("Audit trail (test)", "admin:core_auditlog_changelist", permission="core.view_auditlog",
                          order=1)
    console.register_page("Superusers only (test)", "admin:index", permission=lambda r: r.user.is_superuser)
    console.register_page("Broken (test)", "no-such-url-name")
    yield
    for name in ("admin:core_auditlog_changelist", "admin:index", "no-such-url-name"):
        console._pages.pop(name, None)


def test_registered_pages_show_in_the_console_for_allowed_users(client, tenant, nav_page):
    user = factories.make_operator(tenant)
    client.force_login(user)
    body = client.get(reverse("admin:index")).content.decode()
    allowed = user.has_perm("core.view_auditlog")
    assert ("Audit trail (test)" in body) is allowed
    assert "Superusers only (test)" not in body
    assert "Broken (test)" not in body  # an unknown url name is skipped, never a 500


def test_superuser_sees_permission_callable_pages(admin_client, nav_page):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert "Superusers only (test)" in body
    assert 'id="console-nav"' in body
