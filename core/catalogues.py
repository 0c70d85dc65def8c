"""Extract and build the message catalogues: every committed ``locale/<lang>/LC_MESSAGES/*.po`` → its ``.mo`` (issue #11).

Design: docs/design/console-and-i18n.md#core-catalogues.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

BASE_DIR = Path(__file__).resolve().parent.parent
_SKIP = {".venv", "var", "node_modules", ".git", "staticfiles"}
# Languages with a catalogue (English is the source language: its text is the msgid) and their plural rule.
LANGUAGES = {"ko": "nplurals=1; plural=0;"}
IGNORE = [".venv", "var", "tests", "bench", "scripts", "staticfiles", "test-artifacts", "node_modules"]


def po_files(base_dir: Path = BASE_DIR) -> list[Path]:
    found = []
    for po in base_dir.glob("**/locale/*/LC_MESSAGES/*.po"):
        if not _SKIP.intersection(po.relative_to(base_dir).parts):
            found.append(po)
    return sorted(found)


def compile_all(base_dir: Path = BASE_DIR, *, force: bool = False) -> list[Path]:
    """Compile each ``.po`` whose ``.mo`` is missing or older; returns the ``.mo`` files written."""
    written = []
    for po in po_files(base_dir):
        mo = po.with_suffix(".mo")
        if not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parent.parent.name)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        tmp.replace(mo)  # atomic: parallel test workers never read a half-written file
        written.append(mo)
    return written


def extract(base_dir: Path = BASE_DIR) -> list[Path]:
    """Run ``makemessages`` over ``base_dir`` (a checkout; must be the current directory's project)."""
    import django  # noqa: PLC0415  (the catalogue build runs without Django set up; only extraction needs it)
    from django.conf import settings  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coupon_project.settings")
    django.setup()
    for app in settings.LOCAL_APPS:
        (base_dir / app.split(".")[0] / "locale").mkdir(exist_ok=True)
    (base_dir / "locale").mkdir(exist_ok=True)
    call_command("makemessages", locale=list(LANGUAGES), no_obsolete=True, ignore_patterns=IGNORE, add_location="file",
                 verbosity=0)
    files = po_files(base_dir)
    for po in files:
        _fix_new_header(po)
    return files


def _fix_new_header(po: Path) -> None:
    """A catalogue makemessages just created has a fuzzy header and placeholder plural forms: fill them in."""
    text = po.read_text(encoding="utf-8")
    language = po.parent.parent.name
    fixed = text.replace('#, fuzzy\nmsgid ""\nmsgstr ""\n', 'msgid ""\nmsgstr ""\n', 1)
    if language in LANGUAGES:
        fixed = fixed.replace("nplurals=INTEGER; plural=EXPRESSION;", LANGUAGES[language], 1)
    fixed = re.sub(r'^"Language: \\n"$', f'"Language: {language}\\\\n"', fixed, count=1, flags=re.M)
    if fixed != text:
        po.write_text(fixed, encoding="utf-8")


if __name__ == "__main__":
    if "--extract" in sys.argv:
        sys.path.insert(0, str(Path.cwd()))
        extract(Path.cwd())
    done = compile_all(Path.cwd() if "--extract" in sys.argv else BASE_DIR, force="--force" in sys.argv)
    print(f"compiled {len(done)} message catalogue(s)" + "".join(f"\n  {p.relative_to(BASE_DIR)}" for p in done))
