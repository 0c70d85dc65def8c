"""Driving the console in a real browser: a thin layer over a Playwright page for the journeys (R-OPS).

Elements are found by stable attributes — ids, ``name``s, ``href``s, option values, ``data-*`` — never by English
text, so the same journeys run with the console in Korean and in English: ``Console.lang`` is the console's language
(conftest.py sets it); a journey that must read translated text translates the label in ``Console.lang``
(``translation.override``) instead of spelling it inline.

Each step can leave a screenshot: ``<artifacts>/<test>-<lang>-<nn>-<step>.png`` (see conftest.py for the folder).
Before each screenshot the page is checked to be in the console's language: ``<html lang>``, and in Korean a Korean
label of ours (the site header), so a Korean run that silently fell back to English fails (issue #11).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone
from playwright.sync_api import Page, expect

PASSWORD = "pw-for-tests-1"  # tests.factories.make_user's default
# A label of ours every console page shows (core/admin.py site_header), spelt out in each language: not looked up
# in the catalogue, so an untranslated or missing catalogue cannot make the check pass.
SITE_HEADER = {"ko": "쿠폰 플랫폼 — 백오피스", "en": "Coupon platform — back office"}


@dataclass
class Console:
    page: Page
    base_url: str
    artifacts: Path
    test_name: str
    lang: str = "en"
    shots: list[Path] = field(default_factory=list)

    # navigation ------------------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def goto(self, path: str) -> None:
        response = self.page.goto(self.url(path))
        assert response is not None and response.ok, f"GET {path} answered {response and response.status}"

    def path(self) -> str:
        return re.sub(r"^https?://[^/]+", "", self.page.url)

    def shot(self, step: str, *, check_language: bool = True) -> Path:
        """A full-page screenshot kept as a test artifact, once the page is checked to be in the console's
        language."""
        if check_language:
            self.expect_language()
        path = self.artifacts / f"{self.test_name}-{len(self.shots) + 1:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    # language --------------------------------------------------------------------------------------------------------

    def expect_language(self, lang: str | None = None) -> None:
        """The page is a console page in ``lang`` (default: the console's language)."""
        lang = lang or self.lang
        expect(self.page.locator("html")).to_have_attribute("lang", lang)
        expect(self.page.locator("#site-name")).to_contain_text(SITE_HEADER[lang])

    def switch_language(self, lang: str) -> None:
        """Choose a language in the switcher of the console header; the page comes back in it."""
        with self.page.expect_navigation():
            self.page.select_option("#console-language-select", value=lang)  # the form submits itself on change
        self.lang = lang
        self.expect_language()
        expect(self.page.locator("#console-language-select")).to_have_value(lang)

    # session ---------------------------------------------------------------------------------------------------------

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/admin/login/?next=/admin/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("#login-form [type=submit]")
        expect(self.page.locator("#logout-form")).to_be_attached()
        assert self.path() == "/admin/", f"after login the console shows {self.path()}"

    def logout(self) -> None:
        self.page.click("#logout-form [type=submit]")
        expect(self.page.locator("#logout-form")).to_have_count(0)

    # forms -----------------------------------------------------------------------------------------------------------

    def fill(self, name: str, value: Any) -> None:
        self.page.fill(f"#id_{name}", str(value))

    def select(self, name: str, value: Any) -> None:
        """Choose an option of a <select> by its value (a primary key or a choice's stored value)."""
        self.page.select_option(f"#id_{name}", value=str(value))

    def fill_datetime(self, name: str, when: datetime) -> None:
        """The admin's split date/time widget, in the console's time zone."""
        local = timezone.localtime(when)
        self.page.fill(f"#id_{name}_0", local.strftime("%Y-%m-%d"))
        self.page.fill(f"#id_{name}_1", local.strftime("%H:%M:%S"))

    def save(self, button: str = "_save") -> None:
        """Submit an admin change form; fail with the form's own error messages if it was refused."""
        self.page.click(f"input[name={button}]")
        self.page.wait_for_load_state()
        self.assert_no_form_errors()

    def assert_no_form_errors(self) -> None:
        errors = self.page.locator(".errornote:visible, ul.errorlist li:visible, ul.messagelist li.error")
        if errors.count():
            raise AssertionError(f"the console refused the form at {self.path()}: {errors.all_inner_texts()}")

    def expect_success_message(self) -> None:
        expect(self.page.locator("ul.messagelist li.success").first).to_be_visible()
        self.assert_no_form_errors()

    # change lists ----------------------------------------------------------------------------------------------------

    def run_action(self, changelist: str, action: str, ids: list[int]) -> None:
        """Tick rows of a change list by primary key, choose an action by its name and run it."""
        if self.path().split("?")[0] != changelist:
            self.goto(changelist)
        for pk in ids:
            self.page.check(f"input[name=_selected_action][value='{pk}']")
        self.page.select_option("#changelist-form select[name=action]", value=action)
        self.page.click("#changelist-form button[name=index]")
        self.page.wait_for_load_state()
        confirm = self.page.locator(f"[data-confirm-action='{action}']")
        if confirm.count():  # actions that change money or access ask first (core/admin_confirm.py)
            self.shot(f"confirm-{action}")
            self.page.click("#confirm-action-yes")
            self.page.wait_for_load_state()

    def result_rows(self) -> list[list[str]]:
        """The cells (text) of each row of a change list's result table (once the page shows one)."""
        expect(self.page.locator("#result_list")).to_be_visible()
        rows = self.page.locator("#result_list tbody tr")
        return [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count())]

    def link(self, href_part: str) -> Any:
        return self.page.locator(f"a[href*='{href_part}']")
