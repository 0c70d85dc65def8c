"""The crawl's rules (tests/browser/crawler.py) without a browser: what counts as English in the Korean console,
and how pages are reduced to patterns — so the crawl demonstrably fails on the issue's examples (#20)."""
from __future__ import annotations

import pytest

from tests.browser.crawler import english_words, enum_values, pattern_of

ENUMS = frozenset({"PENDING", "android"})


@pytest.mark.parametrize(("text", "flagged"), [
    ("“5,000원 할인권” 승인 여부 결정", []),
    ("Decide on '5,000원 할인권'", ["Decide", "on"]),
    ("사유: Reason:", ["Reason"]),
    ("발급 후 시간 수. valid_until을 넘지 않습니다.", ["valid_until"]),
    ("공용 코드 (R-ISS-1).", ["R-ISS-1"]),
    ("채널: android", ["android"]),
    ("상태: PENDING", ["PENDING"]),
    ("필터 — usages: event, policy", ["usages", "event", "policy"]),
    ("CSV 또는 Excel 파일, 최대 100MB", []),  # whitelisted names and units
    ("코드 ABCD2345, 해시 3f9a0c1d, https://hooks.example.com/x, a@b.kr", []),  # data
    ("작업 coupon.redeem 기준", []),  # a dotted identifier is code
    ("KRW 금액", []),  # an upper-case abbreviation that is not a stored value
])
def test_english_words_in_korean_text(text, flagged):
    assert english_words(text, ENUMS) == flagged


def test_enum_values_include_the_models_stored_choices(db):
    values = enum_values()
    assert {"PENDING", "COMPLETED", "block", "signup"} <= values


def test_pages_are_reduced_to_patterns():
    assert pattern_of("/admin/coupons/couponbatch/12/change/") == "/admin/coupons/couponbatch/<n>/change/"
    assert pattern_of("/admin/coupons/couponpolicy/5/decide/") == "/admin/coupons/couponpolicy/<n>/decide/"
    assert pattern_of("/admin/ops/jobs/") == "/admin/ops/jobs/"
