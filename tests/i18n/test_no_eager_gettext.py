"""Issue #11: a message translated at import time is frozen in the language of whoever imported the module first
(English at startup), so it never follows the request's language. Class and module level texts must be lazy."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

EAGER = {"gettext", "ngettext", "pgettext", "npgettext"}


def eager_calls_at_import(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.asname or alias.name for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
             for alias in node.names if alias.name in EAGER}
    found: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if (not inside and isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
                    and child.func.id in names):
                found.append(f"{path}:{child.lineno}: {child.func.id}() runs at import time; use gettext_lazy")
            visit(child, inside)

    visit(tree, False)
    return found


def our_modules() -> list[Path]:
    base = Path(settings.BASE_DIR)
    apps = [app.split(".")[0] for app in settings.LOCAL_APPS]
    return [path for app in apps for path in sorted((base / app).rglob("*.py")) if "migrations" not in path.parts]


def test_no_text_is_translated_at_import_time():
    problems = [problem for path in our_modules() for problem in eager_calls_at_import(path)]
    assert problems == []


def test_the_check_finds_an_eager_class_level_message(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from django.utils.translation import gettext as _\n"
                      "class E(Exception):\n    default_message = _('Frozen at import')\n"
                      "def f():\n    return _('fine inside a function')\n")
    assert eager_calls_at_import(sample) == [f"{sample}:3: _() runs at import time; use gettext_lazy"]


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_domain_error_default_message_follows_the_active_language(language):
    from coupons.exceptions import SelfApproval

    with translation.override("en"):
        english = SelfApproval().message
    with translation.override(language):
        message = SelfApproval().message
    assert SelfApproval.code == "self_approval"
    assert (message == english) is (language == "en")
