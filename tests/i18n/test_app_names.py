"""Issue #11: the app names the console shows in its sidebar and breadcrumbs are translated (found by the Korean
browser run: COUPONS, DRAWS, … stayed English)."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise

# bench (manage.py bench) is developer tooling: no console pages, no catalogue (#22).
OUR_APPS = [app.split(".")[0] for app in settings.LOCAL_APPS if app != "bench"]


@pytest.mark.parametrize("label", OUR_APPS)
def test_every_app_name_is_translated_into_korean(label):
    config = apps.get_app_config(label)
    assert isinstance(config.verbose_name, Promise), f"{label}: verbose_name is not a lazy translation"
    with translation.override("en"):
        english = str(config.verbose_name)
    with translation.override("ko"):
        korean = str(config.verbose_name)
    assert korean != english, f"{label}: {english!r} has no Korean translation"
