"""Must show (issue #11): every user-visible string of our apps is marked for translation.

Run per app and kind of check (``SWEPT`` in checks.py lists what is swept so far; the final state is every app).
"""
from __future__ import annotations

import pytest

from tests.i18n import checks

FINDERS = {
    "models": checks.model_problems,
    "console": checks.admin_problems,
    "commands": checks.command_problems,
    "sources": checks.source_problems,
    "templates": checks.template_problems,
}


@pytest.mark.parametrize("app_label, kind",
                         [(app, kind) for app, kinds in checks.SWEPT.items() for kind in sorted(kinds)])
def test_user_visible_text_is_marked_for_translation(app_label, kind):
    problems = FINDERS[kind](app_label)
    assert not problems, f"{len(problems)} unmarked string(s) in {app_label} ({kind}):\n" + "\n".join(problems)


def test_swept_apps_are_our_apps():
    assert set(checks.SWEPT) <= set(checks.OUR_APPS)
    assert all(kinds <= checks.KINDS for kinds in checks.SWEPT.values())


def test_sweep_progress():
    """Not a check: says (as a skip reason, ``pytest -rs``) which apps and kinds are not swept yet."""
    left = {app: sorted(checks.KINDS - checks.SWEPT.get(app, frozenset())) for app in checks.OUR_APPS}
    left = {app: kinds for app, kinds in left.items() if kinds}
    if left:
        pytest.skip("not swept yet: " + "; ".join(f"{app} ({', '.join(kinds)})" for app, kinds in left.items()))


@pytest.mark.parametrize("source, found", [
    ('{% load i18n %}<p>{% translate "Hello" %}</p>', []),
    ("<p>Hello {{ name }}</p>", ["Hello 0"]),
    ('{% blocktranslate %}Hi {{ name }}{% endblocktranslate %}<b>{{ n }}</b>', []),
    ('<input type="submit" value="Save"><input type="hidden" value="next">', ["Save"]),
    ('<a title="Open" href="/x">{% translate "x" %}</a><style>a { color: red }</style>', ["Open"]),
    ("{% comment %}A note for developers{% endcomment %}<span>₩ 12,300 &rsaquo;</span>", []),
])
def test_the_template_check_finds_text_outside_translate(source, found):
    assert checks.untranslated_template_text(source) == found


def test_the_source_check_finds_unwrapped_messages(tmp_path, monkeypatch):
    module = tmp_path / "sample.py"
    module.write_text(
        "from django.utils.translation import gettext as _\n"
        "def act(self, request, n):\n"
        "    self.message_user(request, f'Removed {n} rows.')\n"
        "    self.message_user(request, _('Removed %(n)s rows.') % {'n': n})\n"
        "    raise InvalidInput('Bad input.')\n"
        "class Gone(NotFound):\n"
        "    default_message = 'Gone.'\n")
    monkeypatch.setattr(checks, "app_python_files", lambda app: [module])
    monkeypatch.setattr(checks, "BASE_DIR", tmp_path)
    problems = checks.source_problems("core")
    assert [p.split(": ", 1)[0] for p in problems] == ["sample.py:7", "sample.py:3", "sample.py:5"]
