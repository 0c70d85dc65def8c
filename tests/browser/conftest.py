"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server (R-OPS).

- One browser per test session (``browser``), a fresh context — cookies, storage, downloads — per test (``console``).
- The browser is ``BROWSER_EXECUTABLE`` (default /usr/bin/chromium, from Debian's ``chromium`` package, which
  ``make test`` installs when it is missing: scripts/ensure-chromium.sh). Playwright's own browser downloads are
  never used. A missing browser FAILS these tests; they are never skipped.
- Screenshots go to ``BROWSER_ARTIFACTS_DIR`` (default var/test-artifacts/browser): one per journey step, and one
  named ``…-failed.png`` when a test fails. The session's summary prints the folder.
- Every journey runs once per console language (``lang``: ``ko``, then ``en``; issue #11). The language is set the
  way a real user gets it: the test's ``tenant`` speaks it (``Tenant.language``, which a signed-in user without a
  preference of their own sees) and the browser asks for it (``Accept-Language`` and ``navigator.language``, which
  the login page follows). ``Console.shot`` checks the page really is in that language before each screenshot
  (``<html lang>``, and in ``ko`` a Korean label of ours), so a run that silently fell back to English fails.
  Screenshots are named ``<test>-<lang>-<nn>-<step>.png``; ``index.html`` in the folder shows each journey's
  steps side by side in both languages, and the session summary says which journeys passed in which language.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.utils.module_loading import import_string

from tests import factories
from tests.browser.console import Console

CONSOLE_LANGUAGES = ("ko", "en")

BROWSER_EXECUTABLE = os.environ.get("BROWSER_EXECUTABLE", "/usr/bin/chromium")
ARTIFACTS_DIR = Path(os.environ.get("BROWSER_ARTIFACTS_DIR",
                                    Path(django_settings.BASE_DIR) / "var" / "test-artifacts" / "browser"))
HEADLESS = os.environ.get("BROWSER_HEADED", "") == ""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STEP_TIMEOUT_MS = 20_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup`` the journeys of one language share a worker (and its one browser), and the two
    languages can run side by side on two workers."""
    for item in items:
        lang = getattr(getattr(item, "callspec", None), "params", {}).get("lang")
        if lang in CONSOLE_LANGUAGES and item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group(f"browser-{lang}"))


# journey (test file::function) -> language -> outcome of its call phase; filled on the controller under xdist too
_OUTCOMES: dict[str, dict[str, str]] = {}


def pytest_runtest_logreport(report: Any) -> None:
    # tests/browser/<file>::<test>[<lang>], with "@<group>" after it under --dist loadgroup
    found = re.fullmatch(r"(tests/browser/[^@\[]+)\[([a-z]+)\](@.*)?", report.nodeid)
    if not found or found[2] not in CONSOLE_LANGUAGES:
        return
    journey, lang = found[1], found[2]
    if report.when == "call" or report.outcome != "passed":  # a setup error counts as a failed journey
        _OUTCOMES.setdefault(journey, {})[lang] = "skipped" if report.skipped else report.outcome


def _crawl_index() -> list[str]:
    """The crawl's screenshots (test_console_crawl.py): one row per page, one column per language × width, from the
    manifests the crawler leaves (``crawl-<role>-<lang>.json``); a page with problems is marked and lists them."""
    import json

    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(ARTIFACTS_DIR.glob("crawl-*.json"))]
    if not manifests:
        return []
    parts = []
    for label in sorted({m["label"] for m in manifests}):
        runs = [m for m in manifests if m["label"] == label]
        columns = sorted({(p["lang"], p["width"]) for m in runs for p in m["pages"]},
                         key=lambda c: (CONSOLE_LANGUAGES.index(c[0]) if c[0] in CONSOLE_LANGUAGES else 9, c[1]))
        pages: dict[str, dict[tuple[str, int], dict]] = {}
        for m in runs:
            for p in m["pages"]:
                pages.setdefault(p["pattern"], {})[(p["lang"], p["width"])] = p
        timing = ", ".join(f"{m['lang']}: {m['seconds']} s" for m in runs)
        parts.append(f"<h2 id='{escape(label)}'>{escape(label)}: {len(pages)} pages ({escape(timing)})</h2>"
                     "<table class=crawl><tr><th>page</th>"
                     + "".join(f"<th>{escape(lang)} {width}px</th>" for lang, width in columns) + "</tr>")
        for pattern, by_col in sorted(pages.items()):
            cells = []
            for col in columns:
                p = by_col.get(col)
                if p is None:
                    cells.append("<td></td>")
                    continue
                problems = "".join(f"<li>{escape(x)}</li>" for x in p["problems"])
                cells.append(f"<td class='{'bad' if p['problems'] else 'ok'}'><a href='{escape(p['screenshot'])}'>"
                             f"<img loading=lazy src='{escape(p['screenshot'])}'></a>"
                             f"<br>{p['status']} {escape(p['title'])}<ul>{problems}</ul></td>")
            parts.append(f"<tr><th>{escape(pattern)}<br><small>{escape(next(iter(by_col.values()))['url'])}"
                         "</small></th>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    return parts


def _write_index(journeys: list[str]) -> Path | None:
    """``index.html``: each journey's screenshots, ko and en side by side, step by step; then the crawl's pages by
    language and width."""
    shots = sorted(ARTIFACTS_DIR.glob("*.png"))
    crawl = _crawl_index()
    if not shots and not crawl:
        return None
    parts = ["<!doctype html><meta charset=utf-8><title>Console journeys in ko and en</title>",
             "<style>img{width:100%;border:1px solid #ccc} td{vertical-align:top;width:50%} "
             "h2{margin-top:2em} table.crawl td{width:auto;max-width:22em;font-size:.8em} "
             "table.crawl img{max-height:14em;object-fit:cover;object-position:top} td.bad{background:#fdd} "
             "table.crawl th{text-align:left;vertical-align:top;font-size:.85em}</style>",
             "<h1>Console screenshots</h1><p>Journeys: each step in ko and en side by side. Crawl: every console page"
             " by language and width (tests/browser/test_console_crawl.py).</p>"]
    for journey in journeys:
        name = journey.rsplit("::", 1)[-1]
        by_lang = {lang: [s.name for s in shots if s.name.startswith(f"{name}-{lang}-")] for lang in CONSOLE_LANGUAGES}
        rows = max(len(v) for v in by_lang.values())
        if not rows:
            continue
        parts.append(f"<h2>{escape(name)}</h2><table><tr>"
                     + "".join(f"<th>{lang}</th>" for lang in CONSOLE_LANGUAGES) + "</tr>")
        for i in range(rows):
            cells = []
            for lang in CONSOLE_LANGUAGES:
                files = by_lang[lang]
                cells.append(f"<td><a href='{escape(files[i])}'>{escape(files[i])}<br><img loading=lazy "
                             f"src='{escape(files[i])}'></a></td>" if i < len(files) else "<td></td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.extend(crawl)
    index = ARTIFACTS_DIR / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index


def _steps(journey: str, lang: str) -> list[str]:
    name = journey.rsplit("::", 1)[-1]
    prefix = f"{name}-{lang}-"
    return [s.name[len(prefix) + 3:-4] for s in sorted(ARTIFACTS_DIR.glob(f"{prefix}[0-9][0-9]-*.png"))
            if not s.name.endswith("-failed.png")]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if _OUTCOMES:
        write = terminalreporter.write_line
        terminalreporter.section("console journeys by language (issue #11)")
        width = max(len(j) for j in _OUTCOMES)
        write(f"{'journey':<{width}} " + " ".join(f"{lang:<8}" for lang in CONSOLE_LANGUAGES))
        for journey, by_lang in sorted(_OUTCOMES.items()):
            write(f"{journey:<{width}} " + " ".join(f"{by_lang.get(lang, '-'):<8}" for lang in CONSOLE_LANGUAGES))
        uneven = [j for j, by_lang in _OUTCOMES.items() if len({by_lang.get(lang) for lang in CONSOLE_LANGUAGES}) > 1]
        if uneven:
            write("journeys that do NOT work in every language: " + ", ".join(sorted(uneven)), red=True)
        else:
            write(f"every journey ran with the same outcome in {' and '.join(CONSOLE_LANGUAGES)}", green=True)
        # the same steps (screenshots) in each language: a journey that took another path in one language shows here
        differing = [j for j, by_lang in _OUTCOMES.items()
                     if all(o == "passed" for o in by_lang.values())
                     and len({tuple(_steps(j, lang)) for lang in CONSOLE_LANGUAGES}) > 1]
        if differing:
            write("journeys whose steps differ between languages: " + ", ".join(sorted(differing)), red=True)
        index = _write_index(sorted(_OUTCOMES))
        if index:
            write(f"screenshots side by side: {index}")
        if "ko" in CONSOLE_LANGUAGES and not _has_korean_font():
            write("WARNING: no Korean font (fc-list :lang=ko is empty): the ko screenshots show boxes for Korean "
                  "text; install Debian's fonts-nanum (scripts/ensure-chromium.sh does)", yellow=True)
    if ARTIFACTS_DIR.is_dir() and any(ARTIFACTS_DIR.glob("*.png")):
        terminalreporter.write_line(f"browser test screenshots: {ARTIFACTS_DIR}")


def _has_korean_font() -> bool:
    if not shutil.which("fc-list"):
        return True  # cannot tell
    found = subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (Path(BROWSER_EXECUTABLE).is_file() or shutil.which(BROWSER_EXECUTABLE)):
        pytest.fail(f"No Chromium at {BROWSER_EXECUTABLE}: the browser tests cannot run. Install Debian's package "
                    "(`apt-get install -y chromium`, which `make test` does through scripts/ensure-chromium.sh) or "
                    "set BROWSER_EXECUTABLE to a Chromium binary.", pytrace=False)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on this thread, which Django's ORM guard takes for async code;
    # the tests' ORM calls are plain synchronous calls between browser steps.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=BROWSER_EXECUTABLE, headless=HEADLESS,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=CONSOLE_LANGUAGES)
def lang(request: pytest.FixtureRequest) -> str:
    """The console language of the journey: every browser test runs once per language (issue #11)."""
    return request.param


@pytest.fixture
def tenant(db: Any, lang: str) -> Any:
    """The journey's tenant speaks the journey's language: its staff see the console in it (core.i18n)."""
    return factories.make_tenant(language=lang)


@pytest.fixture
def browser_settings(settings: Any, tmp_path: Path) -> Any:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # logins in tests, not security
    return settings


@pytest.fixture
def console(request: pytest.FixtureRequest, browser: Any, live_server: Any, lang: str,
            browser_settings: Any) -> Iterator[Console]:
    # <test>-<lang>[-<other parameters>]: the screenshots are <test>-<lang>-<nn>-<step>.png
    others = [p for p in getattr(getattr(request.node, "callspec", None), "id", "").split("-") if p and p != lang]
    name = "-".join([request.node.originalname, lang, *others]).replace("/", "_")
    for old in ARTIFACTS_DIR.glob(f"{name}-*.png"):
        old.unlink()
    context = browser.new_context(locale=lang, accept_downloads=True, viewport={"width": 1280, "height": 900},
                                  extra_http_headers={"Accept-Language": lang})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    driver = Console(page=page, base_url=live_server.url, artifacts=ARTIFACTS_DIR, test_name=name, lang=lang)
    try:
        yield driver
    finally:
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            try:
                driver.shot("failed")
            except Exception:  # noqa: BLE001 - the test's own failure is what matters
                pass
        context.close()


class HeldJobs:
    """Jobs of the named queues are held instead of run, until the test releases them (in a background thread, as a
    worker would run them): the console can then be watched while a job is queued, running and finished."""

    def __init__(self, queues: set[str], passthrough: Callable[..., str]) -> None:
        self.queues = queues
        self.passthrough = passthrough
        self.held: list[tuple[str, Callable[..., Any], tuple, dict]] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def enqueue(self, queue: str, func: Callable[..., Any] | str, *args: Any, job_id: str | None = None,
                tenant_id: int | None = None, **kwargs: Any) -> str:
        """core.jobs.enqueue's signature: ``tenant_id`` is the job's metadata, not an argument of ``func``; ``func``
        may be a dotted path."""
        if queue not in self.queues:
            return self.passthrough(queue, func, *args, job_id=job_id, tenant_id=tenant_id, **kwargs)
        self.held.append((queue, import_string(func) if isinstance(func, str) else func, args, kwargs))
        return job_id or uuid.uuid4().hex

    def release(self) -> threading.Thread:
        jobs, self.held = self.held, []
        assert jobs, "no job was queued"

        def work() -> None:
            try:
                for _queue, func, args, kwargs in jobs:
                    func(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self.errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=work, name="held-jobs", daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def join(self, timeout: float = 120) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a released job is still running"
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def held_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., HeldJobs]]:
    import core.jobs

    made: list[HeldJobs] = []

    def hold(*queues: str) -> HeldJobs:
        jobs = HeldJobs(set(queues), core.jobs.enqueue)
        monkeypatch.setattr(core.jobs, "enqueue", jobs.enqueue)
        made.append(jobs)
        return jobs

    yield hold
    for jobs in made:
        jobs.join()
