"""Every management command answers --help, in English and in Korean: help texts are lazy translations (issue #11)
and argparse needs plain text (core/commands.py)."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.utils import translation

OUR_APPS = {app.split(".")[0] for app in settings.LOCAL_APPS}
OUR_COMMANDS = sorted(name for name, app in get_commands().items() if app in OUR_APPS)


def test_our_commands_are_found():
    assert {"expire_coupons", "reconcile", "bench", "demo_data"} <= set(OUR_COMMANDS)


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("name", OUR_COMMANDS)
def test_help_renders(name, language):
    command = load_command_class(get_commands()[name], name)
    with translation.override(language):
        text = command.create_parser("manage.py", name).format_help()
    assert text.startswith(f"usage: manage.py {name}")
