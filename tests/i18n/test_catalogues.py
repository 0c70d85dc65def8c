"""Must show (issue #11): the Korean catalogues are complete, and up to date with the sources.

- every entry of a swept catalogue is translated and none is fuzzy;
- ``makemessages`` run over a copy of the sources finds exactly the msgids committed (no string marked in the code
  but missing from the catalogue, none left over). Needs GNU gettext's xgettext (``make test`` installs it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core.catalogues import LANGUAGES
from tests.i18n import checks

BASE_DIR = checks.BASE_DIR


def catalogue_dirs() -> list[str]:
    """"." is the project catalogue (templates/, settings); the others are those of apps whose Python is swept
    (an app's templates live in templates/, so their strings are in the project catalogue)."""
    return [".", *(app for app, kinds in checks.SWEPT.items() if kinds - {"templates"})]


def po_path(base: Path, where: str, language: str) -> Path:
    return base / where / "locale" / language / "LC_MESSAGES" / "django.po"


def read(path: Path):
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parent.parent.name)


def msgids(path: Path) -> set[tuple[str, str | None]]:
    return {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in read(path) if m.id}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("where", catalogue_dirs())
def test_catalogue_is_fully_translated(where, language):
    path = po_path(BASE_DIR, where, language)
    if where != "." and not path.exists():
        assert not checks.source_problems(where), f"{where} has no {language} catalogue"
        pytest.skip(f"{where} has no translatable strings")
    catalog = read(path)
    untranslated = [m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple)
                                                          else m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"{path.relative_to(BASE_DIR)}: {len(untranslated)} untranslated: {untranslated[:20]}"
    assert not fuzzy, f"{path.relative_to(BASE_DIR)}: {len(fuzzy)} fuzzy: {fuzzy[:20]}"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """A copy of the sources with catalogues freshly extracted by ``make messages`` (core.catalogues --extract)."""
    if shutil.which("xgettext") is None:
        pytest.fail("GNU gettext (xgettext) is not installed: `make test` installs it, or apt-get install gettext")
    copy = tmp_path_factory.mktemp("i18n") / "src"
    shutil.copytree(BASE_DIR, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "var", "node_modules", "staticfiles", "test-artifacts", ".pytest_cache", ".hypothesis",
        "__pycache__", "*.mo", "tests"))  # bench is an app now (#22); core.catalogues ignores it
    env = {**os.environ, "DJANGO_SECRET_KEY": "x" * 50, "COUPON_VAR_DIR": str(copy / "var")}
    result = subprocess.run([sys.executable, "-m", "core.catalogues", "--extract"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return copy


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("where", catalogue_dirs())
def test_committed_catalogue_matches_the_sources(extracted, where, language):
    fresh = po_path(extracted, where, language)
    committed = po_path(BASE_DIR, where, language)
    fresh_ids = msgids(fresh) if fresh.exists() else set()
    committed_ids = msgids(committed) if committed.exists() else set()
    missing = sorted(i for i, _c in fresh_ids - committed_ids)
    stale = sorted(i for i, _c in committed_ids - fresh_ids)
    assert not missing and not stale, (
        f"{committed.relative_to(BASE_DIR)} is out of date — run `make messages` and translate. "
        f"Missing: {missing[:20]} Stale: {stale[:20]}")
