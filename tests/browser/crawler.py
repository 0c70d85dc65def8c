"""A crawler over the console (issue #20): every page an operator can reach, checked in a real Chromium.

Pages are DISCOVERED, never listed: the admin index (every app's change lists and add pages), the console
navigation bar (core/console.py: dashboard, jobs, exports, …), then every console link found on the pages visited —
a change page of each list's first row, the custom pages linked from them (draw page, distribution page, upload
page, …). A new ModelAdmin or console page is crawled the day it is registered. Links are reduced to a *pattern*
(numbers → ``<n>``) and each pattern is visited once, so a list of 500 rows costs one change page, not 500.

Each page is checked, at each width (1366 × 768 and 1920 × 1080), for:

- a raw error page: a status ≥ 500, or any answer that is not a styled console page (no site header, no
  ``<html lang>`` of the console's language) — 403 and 404 included;
- English in the Korean console: a visible word with a lower-case Latin letter (``valid_until``, ``Reason:``,
  ``android``), a stored enum value of any model (``PENDING``) or a requirement id (``R-ISS-1``), outside
  ``WHITELIST`` (proper nouns, units, formats) — the seeded data of a Korean run is Korean, so what is left is the
  console's own text;
- a table column outside the viewport: a table cell in the page's content whose right edge is past the window's
  or its scrolling box's visible edge (a column hidden behind a horizontal scroll).

This module has no pytest in it: tests/browser/test_console_crawl.py drives it, and it can run by hand against a
dev server (``python -m tests.browser.crawler http://127.0.0.1:8000 admin <password> ko``).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

WIDTHS = ((1366, 768), (1920, 1080))
SITE_HEADER = {"ko": "쿠폰 플랫폼 — 백오피스", "en": "Coupon platform — back office"}

# Latin words a Korean console may show: proper nouns, product and format names, units. Compared case-insensitively.
WHITELIST = frozenset(w.lower() for w in (
    "Excel", "CSV", "XLSX", "JSON", "API", "URL", "HTTP", "HTTPS", "SHA", "HMAC", "ID", "IP", "KST", "UTC", "KRW",
    "Redis", "PostgreSQL", "RQ", "Django", "Seoul", "Asia", "English", "Bearer", "Webhook", "SKU",
    "iOS", "GS", "SMS", "QR", "PNG", "YYYY", "MM", "DD", "LDAP", "SSO",
    # keys of a keyboard, named as printed on them (Django's own help for multiple selection)
    "Control", "Command", "Mac",
    # column keys of the files an operator writes (the upload pages name them so the file can be made)
    "member_id", "partner_code",
))
# Whitespace-separated chunks that are data, not language: URLs, e-mail addresses, anything with a digit (codes,
# hashes, amounts, dates), masked secrets, file names, dotted identifiers (an audit action: coupon.redeem).
_DATA_CHUNK = re.compile(r"://|@|\d|\*|\.(xlsx|csv|json|png|txt)\b|^\W*[a-z_]+\.[a-z_.]*\W*$", re.I)
_WORD = re.compile(r"[A-Za-z][A-Za-z_]*")
_REQUIREMENT_ID = re.compile(r"\bR-[A-Z]+-\d+\b")

# Links never followed: they change state, leave the console or download a file.
_SKIP = re.compile(r"/(logout|delete|history|password|language|r/\d+/\d+|jsi18n)/|/download|/file/|\.(xlsx|csv)$"
                   r"|_popup=|/api/")


@dataclass
class PageCheck:
    url: str
    pattern: str
    lang: str
    width: int
    status: int
    title: str = ""
    screenshot: str = ""
    problems: list[str] = field(default_factory=list)


def enum_values() -> frozenset[str]:
    """Every stored value of a model field's choices that is a word: shown raw, it is untranslated internals."""
    from django.apps import apps

    values: set[str] = set()
    for model in apps.get_models():
        for f in model._meta.get_fields():
            for value, _label in getattr(f, "flatchoices", None) or ():
                if isinstance(value, str) and re.fullmatch(r"[A-Za-z_]{3,}", value):
                    values.add(value)
    return frozenset(values)


def pattern_of(path: str) -> str:
    return re.sub(r"/\d+(?=/)", "/<n>", path)


def english_words(text: str, enums: frozenset[str]) -> list[str]:
    """The words of ``text`` a Korean reader should not see (see the module docstring)."""
    found: list[str] = []
    for req in _REQUIREMENT_ID.findall(text):
        found.append(req)
    for chunk in text.split():
        if _DATA_CHUNK.search(chunk):
            continue
        for word in _WORD.findall(chunk):
            if word.lower() in WHITELIST or len(word) < 2:
                continue
            if any(c.islower() for c in word) or word in enums:
                found.append(word)
    return found


# The visible text of the page's own content, plus the header and navigation: what the operator reads.
# Text in <code>, <kbd> and <pre> is code by the page's own declaration (a command line, a column key) and is left out.
_TEXT_JS = """() => {
  const hidden = Array.from(document.querySelectorAll('code, kbd, pre'));
  hidden.forEach(el => { el.dataset.crawlText = el.style.display; el.style.display = 'none'; });
  const parts = [];
  for (const sel of ['#header', '#console-nav', '.breadcrumbs', '#content', 'ul.messagelist', '#nav-sidebar']) {
    for (const el of document.querySelectorAll(sel)) parts.push(el.innerText);
  }
  hidden.forEach(el => { el.style.display = el.dataset.crawlText; delete el.dataset.crawlText; });
  return parts.join('\\n');
}"""

# Cells of tables in the content whose right edge is past the window or past their scrolling box's visible edge.
_HIDDEN_COLUMNS_JS = """() => {
  const out = [];
  const winRight = document.documentElement.clientWidth;
  for (const table of document.querySelectorAll('#content table')) {
    if (!table.offsetParent) continue;  // not displayed
    const row = table.querySelector('thead tr') || table.querySelector('tr');
    if (!row) continue;
    let limit = winRight;
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      const ov = getComputedStyle(el).overflowX;
      if (ov === 'auto' || ov === 'scroll' || ov === 'hidden') limit = Math.min(limit, el.getBoundingClientRect().right);
    }
    for (const cell of row.children) {
      const r = cell.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.right > limit + 2) {
        const name = (cell.innerText || cell.className || cell.tagName).trim().split('\\n')[0].slice(0, 40);
        out.push((table.id ? '#' + table.id : 'table') + ' column "' + name + '" ends at ' + Math.round(r.right)
                 + 'px, visible to ' + Math.round(limit) + 'px');
      }
    }
  }
  return out;
}"""

_LINKS_JS = """() => Array.from(document.querySelectorAll(
    '#content a[href], #console-nav a[href], #nav-sidebar a[href], #header a[href]'))
  .filter(a => !a.hasAttribute('download'))
  .map(a => a.getAttribute('href'))"""


@dataclass
class Crawler:
    page: Any
    base_url: str
    lang: str
    artifacts: Path
    label: str  # screenshot prefix: crawl-<role>
    enums: frozenset[str] = frozenset()
    widths: tuple[tuple[int, int], ...] = WIDTHS
    allow_forbidden: bool = False  # the operator role: a 403 is an answer, if it is the console's styled page
    data_words: frozenset[str] = frozenset()  # Latin identifiers the seeded data uses (log-in names, …)
    extra_paths: tuple[str, ...] = ()  # visited too, where a 403 or a 404 is the answer (its page must be styled)
    follow_links: bool = True  # False: only the start page and extra_paths (a second role's spot check)
    results: list[PageCheck] = field(default_factory=list)
    seen_patterns: set[str] = field(default_factory=set)
    empty_lists: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def crawl(self, start: str = "/admin/", limit: int = 400) -> list[PageCheck]:
        started = time.monotonic()
        queue = [start, *self.extra_paths]
        self.seen_patterns.update(pattern_of(p) for p in queue)
        while queue and len(self.results) < limit * len(self.widths):
            path = queue.pop(0)
            links = self.visit(path, errors_expected=path in self.extra_paths)
            for link in links if self.follow_links else ():
                pat = pattern_of(link)
                if pat not in self.seen_patterns:
                    self.seen_patterns.add(pat)
                    queue.append(link)
        self.seconds = time.monotonic() - started
        return self.results

    def _normalise(self, href: str, here: str) -> str | None:
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            return None
        parts = urlsplit(href)
        if parts.netloc and self.base_url.split("//", 1)[-1].rstrip("/") != parts.netloc:
            return None
        path = parts.path
        if not path.startswith("/"):
            base = here.rsplit("/", 1)[0] + "/"
            path = base + path if path else here
        if not path.startswith("/admin/") or _SKIP.search(path + ("?" + parts.query if parts.query else "")):
            return None
        return path

    def visit(self, path: str, *, errors_expected: bool = False) -> list[str]:
        page = self.page
        page.set_viewport_size({"width": self.widths[0][0], "height": self.widths[0][1]})
        response = page.goto(self.base_url.rstrip("/") + path)
        status = response.status if response is not None else 0
        links: list[str] = []
        for width, height in self.widths:
            if (width, height) != self.widths[0]:  # loaded again: the layout's defaults depend on the width
                page.set_viewport_size({"width": width, "height": height})
                page.reload()
            check = PageCheck(url=path, pattern=pattern_of(path), lang=self.lang, width=width, status=status,
                              title=page.title())
            check.problems.extend(self._problems(status, errors_expected=errors_expected))
            shot = self.artifacts / f"{self.label}-{self.lang}-{width}-{_slug(check.pattern)}.jpg"
            # what the operator sees in that window (a full-page image of a long list costs seconds per page)
            page.screenshot(path=str(shot), type="jpeg", quality=70)
            check.screenshot = shot.name
            self.results.append(check)
        if status < 400:
            if re.fullmatch(r"/admin/\w+/\w+/", path) and page.locator("#changelist").count() and \
                    page.locator("#result_list tbody tr").count() == 0:
                self.empty_lists.append(path)
            for href in page.evaluate(_LINKS_JS):
                norm = self._normalise(href, path)
                if norm:
                    links.append(norm)
        return links

    def _problems(self, status: int, *, errors_expected: bool = False) -> list[str]:
        page = self.page
        problems: list[str] = []
        styled = page.locator("#site-name").count() and SITE_HEADER[self.lang] in page.locator(
            "#site-name").inner_text()
        lang_attr = page.locator("html").get_attribute("lang") if page.locator("html").count() else None
        if status >= 500 or status == 0:
            problems.append(f"answered {status}")
        elif status >= 400 and not (status == 403 and self.allow_forbidden) and not (
                errors_expected and status in (403, 404)):
            problems.append(f"answered {status}")
        if not styled:
            problems.append("not a styled console page (no site header in the console's language): "
                            + page.locator("body").inner_text()[:120].replace("\n", " "))
        if lang_attr != self.lang:
            problems.append(f"<html lang={lang_attr!r}>, not {self.lang!r}")
        if self.lang == "ko":
            words = [w for w in english_words(page.evaluate(_TEXT_JS), self.enums) if w.lower() not in self.data_words]
            if words:
                problems.append("English in the Korean console: " + ", ".join(sorted(set(words))[:25]))
        problems.extend(page.evaluate(_HIDDEN_COLUMNS_JS))
        return problems

    def failures(self) -> list[str]:
        return [f"{c.url} [{c.lang} {c.width}px]: {p}" for c in self.results for p in c.problems]

    def save_manifest(self) -> Path:
        path = self.artifacts / f"{self.label}-{self.lang}.json"
        path.write_text(json.dumps({"label": self.label, "lang": self.lang, "seconds": round(self.seconds, 1),
                                    "empty_lists": self.empty_lists,
                                    "pages": [asdict(c) for c in self.results]}, ensure_ascii=False, indent=1),
                        encoding="utf-8")
        return path


def _slug(pattern: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", pattern.removeprefix("/admin/")).strip("_") or "index"


def main() -> None:  # pragma: no cover - a manual tool
    import os
    import sys

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coupon_project.settings")
    django.setup()
    from playwright.sync_api import sync_playwright

    base, user, password, lang = sys.argv[1:5]
    out = Path(os.environ.get("CRAWL_OUT", "/tmp/crawl"))
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        context = browser.new_context(locale=lang, extra_http_headers={"Accept-Language": lang})
        page = context.new_page()
        page.goto(base + "/admin/login/?next=/admin/")
        page.fill("#id_username", user)
        page.fill("#id_password", password)
        page.click("#login-form [type=submit]")
        page.wait_for_load_state()
        crawler = Crawler(page=page, base_url=base, lang=lang, artifacts=out, label=f"crawl-{user}",
                          enums=enum_values(), allow_forbidden=user != "admin")
        crawler.crawl()
        crawler.save_manifest()
        for line in crawler.failures():
            print(line)
        print(f"{len(crawler.results)} checks, {crawler.seconds:.0f} s; empty lists: {crawler.empty_lists}")


if __name__ == "__main__":  # pragma: no cover
    main()
