from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _english_console(request):
    """These tests read the console's English texts; the tenants' default language is Korean (issue #11)."""
    for name in ("tenant", "other_tenant"):
        if name in request.fixturenames:
            tenant = request.getfixturevalue(name)
            tenant.language = "en"
            tenant.save(update_fields=["language"])


@pytest.fixture(autouse=True)
def _no_dashboard_cache(settings):
    """Tests write rows dated in the past; the cache of past days (dashboard.selectors) would hide them."""
    settings.DASHBOARD_CACHE_SECONDS = 0
