"""Every console page, in Korean and in English, at 1366 × 768 and 1920 × 1080 (issue #20 "Must show").

A crawler (tests/browser/crawler.py) signs in as the superuser, then as the tenant's operator, on the demo tenant
(the product's ``demo_data`` in the run's language, plus rows for every list: tests/browser/seed.py), discovers the
console's pages from the admin index, the navigation bar and the links of the pages it visits — so a page added
tomorrow is crawled without a change here — and fails on a raw or unstyled error page, English words in the Korean
console outside ``crawler.WHITELIST`` and a table column hidden past the window's edge. Each page at each width
leaves a screenshot; ``index.html`` in the artifacts folder lists them by page, language and width.

One test per language and role; the browser and its context are reused for every page of the run.
"""
from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS_DIR, STEP_TIMEOUT_MS
from tests.browser.crawler import Crawler, enum_values
from tests.browser.seed import seed_tenant

pytestmark = [pytest.mark.browser]

# Latin identifiers the seed itself chose and a Korean page legitimately shows as data: the demo's login names
# (admin, operator, approver), the demo tenant's slug and the seed's audit actor ("tests"). The role groups are not
# data: they have Korean display names (core.roles.group_label, issue #20), so "viewer" or "job operators" on a
# Korean page is a failure.
DATA_WORDS = frozenset({"admin", "operator", "approver", "demo", "tests"})


@pytest.fixture
def crawl_session(browser, live_server, lang, browser_settings, transactional_db, settings, tmp_path):
    settings.VAR_DIR = str(tmp_path / "var")
    seeded = seed_tenant(lang)
    context = browser.new_context(locale=lang, extra_http_headers={"Accept-Language": lang},
                                  viewport={"width": 1366, "height": 768})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield seeded, page, live_server.url
    finally:
        context.close()


def _login(page, base: str, username: str) -> None:
    from tests.browser.console import PASSWORD

    page.context.clear_cookies()
    page.goto(base + "/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_selector("#logout-form", state="attached")


def _crawl(page, base: str, lang: str, role: str, **kwargs) -> Crawler:
    crawler = Crawler(page=page, base_url=base, lang=lang, artifacts=ARTIFACTS_DIR, label=f"crawl-{role}",
                      enums=enum_values(), data_words=DATA_WORDS, **kwargs)
    for old in ARTIFACTS_DIR.glob(f"crawl-{role}-{lang}-*"):
        old.unlink()
    crawler.crawl()
    crawler.save_manifest()
    return crawler


def test_every_console_page_reads_in_the_console_language_and_fits_the_window(crawl_session, lang):
    seeded, page, base = crawl_session
    _login(page, base, seeded.admin.username)
    admin = _crawl(page, base, lang, "superuser")
    # The crawl really went through the console: every app's lists, their rows and the custom pages.
    patterns = admin.seen_patterns
    for expected in ("/admin/dashboard/", "/admin/ops/jobs/", "/admin/exports/export/", "/admin/draws/draw/<n>/change/",
                     "/admin/partners/partnerupload/upload/", "/admin/coupons/couponpolicy/<n>/decide/"):
        assert expected in patterns, f"the crawl never reached {expected}"
    assert len(patterns) >= 80

    _login(page, base, seeded.operator.username)
    # The operator role: what it sees first, and the pages it may not open or that do not exist — each the
    # console's styled page in its language (a raw "403 Forbidden" was the issue).
    operator = _crawl(page, base, lang, "operator", allow_forbidden=True, widths=((1366, 768),), follow_links=False,
                      extra_paths=("/admin/ops/jobs/failed/", "/admin/ops/jobs/", "/admin/core/user/",
                                   f"/admin/core/user/{seeded.admin.pk}/change/", "/admin/no-such-page/",
                                   "/admin/exports/export/", "/admin/partners/partneruploadfailure/",
                                   "/admin/dashboard/"))
    statuses = {c.url: c.status for c in operator.results}
    assert statuses["/admin/ops/jobs/failed/"] == 403 and statuses["/admin/no-such-page/"] == 404
    failures = admin.failures() + operator.failures()
    assert not failures, f"{len(failures)} problems on console pages:\n" + "\n".join(failures)
