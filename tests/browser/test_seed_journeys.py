"""Seed 001's journeys in the console, in a real Chromium (issue #15 "Must show"), in Korean and in English: codes
handed to a partner from the batch page, with the file downloaded; a draw run from its own page, its winners with
their prize coupons and its failures listed. See test_console_journeys.py for how the journeys are built."""
from __future__ import annotations

import csv

import pytest
from django.utils import translation
from playwright.sync_api import expect

from coupons.models import CouponCode
from draws.models import Draw, DrawWinner
from draws.services import TierSpec, draw_create
from partners.models import Distribution
from partners.services import partner_create
from tests import factories
from tests.draws.helpers import ended_event_with

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _download_codes(console, step: str) -> list[str]:
    with console.page.expect_download() as info:
        console.page.click("#download-csv")
    download = info.value
    path = console.artifacts / f"{console.test_name}-{step}-{download.suggested_filename}"
    download.save_as(path)
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == ["code"]
    return [row[0] for row in rows[1:]]


def _distribute_from_batch(console, batch, partner, quantity: int, step: str) -> Distribution:
    console.goto(f"/admin/coupons/couponbatch/{batch.pk}/change/")
    console.page.click("#distribute-link")
    console.select("partner", partner.pk)
    console.fill("quantity", quantity)
    console.shot(f"{step}-form")
    console.page.click("#distribute-form [type=submit]")
    console.expect_success_message()
    dist = Distribution.objects.filter(partner=partner).order_by("-pk").first()
    assert console.path() == f"/admin/partners/distribution/{dist.pk}/change/"
    with translation.override(console.lang):
        expect(console.page.locator("#distribution-counts")).to_contain_text(f"{quantity}")
    console.shot(f"{step}-reserved")
    return dist


def test_an_operator_hands_codes_to_a_partner_and_downloads_the_file(console, tenant):
    """Flow 1: 50 codes of a batch go to GS25, the file holds exactly them and downloads again the same; a second
    distribution gets 50 other codes; none of them is left in the pool."""
    inventory = factories.make_inventory(tenant, total_quantity=300, name="Partner pool")
    batch = factories.make_batch(inventory, quantity=300, batch_code="PARTNER-300")
    factories.make_codes(batch, 300)
    partner = partner_create(tenant=tenant, name="GS25 convenience stores", code="GS25", actor=factories.TEST_ACTOR)

    console.login(factories.make_operator(tenant).username)
    first = _distribute_from_batch(console, batch, partner, 50, "first")
    first_codes = _download_codes(console, "first")
    reserved = list(CouponCode.objects.filter(distribution_id=first.pk).order_by("id").values_list("code", flat=True))
    assert first_codes == reserved and len(set(reserved)) == 50
    assert _download_codes(console, "again") == first_codes

    _distribute_from_batch(console, batch, partner, 50, "second")
    second_codes = _download_codes(console, "second")
    assert len(set(second_codes)) == 50 and not set(first_codes) & set(second_codes)
    assert CouponCode.objects.filter(batch=batch, status="DISTRIBUTED").count() == 100
    assert CouponCode.objects.filter(batch=batch, status="AVAILABLE").count() == 200


def test_an_operator_runs_a_draw_from_its_page_and_sees_winners_prizes_and_failures(console, tenant):
    """The draw page: the published hash, then one click runs the draw; the winners are listed with their prize
    coupons, and the prize that could not be granted (the prize pool had two codes for three winners) is listed
    with its reason in the console's language."""
    members = [f"member-{i:03d}" for i in range(30)]
    event = ended_event_with(tenant, members)
    prize_pool = factories.make_inventory(tenant, event=event, total_quantity=10, name="Prize pool")
    factories.make_codes(factories.make_batch(prize_pool, quantity=2), 2)
    draw = draw_create(event=event, name="Grand prize draw", draw_at=event.ends_at, actor=factories.TEST_ACTOR,
                       tiers=[TierSpec(name="first prize", winners=3, inventory=prize_pool),
                              TierSpec(name="second prize", winners=5)])

    console.login(factories.make_operator(tenant).username)
    console.goto(f"/admin/draws/draw/{draw.pk}/change/")
    expect(console.page.locator("#draw-result")).to_contain_text(draw.seed_hash)
    console.shot("committed")
    console.page.click("#draw-run")
    console.page.wait_for_load_state()
    expect(console.page.locator("ul.messagelist li.success").first).to_be_visible()
    draw.refresh_from_db()
    assert draw.status == Draw.Status.DONE
    rows = console.page.locator("#draw-winners tr.winner-row")
    expect(rows).to_have_count(8)
    console.shot("winners")
    winners = DrawWinner.objects.filter(draw=draw).select_related("coupon").order_by("tier__position", "rank")
    granted = [w for w in winners if w.coupon_id]
    assert len(granted) == 2 and all(w.coupon.member_id == w.member_id for w in granted)
    for winner in granted:
        expect(console.page.locator("#draw-winners")).to_contain_text(winner.coupon.code)
    failed = [w for w in winners if w.grant_error]
    assert [w.grant_error for w in failed] == ["sold_out"]
    from coupons.exceptions import SoldOut

    with translation.override(console.lang):
        reason = str(SoldOut.default_message)
    expect(console.page.locator("#draw-failures")).to_contain_text(reason)
    expect(console.page.locator("#draw-failures")).to_contain_text(failed[0].member_id)
    console.shot("failures")
