"""Back-office journeys in a real Chromium against a live server (R-OPS, R-REP; issue #9 "Must show").

Each test sets up what its journey needs through the services (fast, in Python), then does the journey itself the
way an operator does: through the console's pages, forms, buttons and actions, with a screenshot per step. The
database is checked after each journey: the pages must not only look right, the work must be done.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone, translation
from playwright.sync_api import expect

from core.roles import ROLE_APPROVER
from coupons.models import CouponBatch, CouponCode, CouponInventory, CouponPolicy
from draws.models import Draw, DrawWinner
from events.models import Event
from partners.models import PartnerUpload
from partners.services import partner_create
from tests import factories
from tests.draws.helpers import ended_event_with

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_an_operator_logs_in_to_the_console(console, tenant, lang):
    """R-TEN-3: a tenant operator signs in and lands on the console index with the tenant's work areas, in the
    tenant's language; a wrong password is refused on the login page. Issue #11: the switcher in the console header
    changes the language at once, the choice is the user's from then on, and switching back restores it."""
    operator = factories.make_operator(tenant)
    console.goto("/admin/login/?next=/admin/")
    console.page.fill("#id_username", operator.username)
    console.page.fill("#id_password", "not-the-password")
    console.page.click("#login-form [type=submit]")
    expect(console.page.locator(".errornote")).to_be_visible()
    console.shot("wrong-password")

    console.login(operator.username)
    for href in ("/admin/events/event/", "/admin/coupons/couponpolicy/", "/admin/coupons/couponbatch/",
                 "/admin/partners/partnerupload/", "/admin/draws/draw/"):
        expect(console.link(href).first).to_be_visible()
    console.shot("index")

    other = "en" if lang == "ko" else "ko"
    console.switch_language(other)
    assert console.path() == "/admin/"  # back on the page the switch was made on
    operator.refresh_from_db()
    assert operator.language == other
    console.goto("/admin/events/event/")  # the user's choice now wins over the tenant's language on every page
    console.shot("switched-to-the-other-language")
    console.switch_language(lang)
    assert console.path() == "/admin/events/event/"
    console.shot("switched-back")
    operator.refresh_from_db()
    assert operator.language == lang


def test_an_operator_creates_an_event_and_a_policy_and_a_second_user_approves_it(console, tenant):
    """R-EVT-1, R-POL-1, R-POL-5: event and policy through the admin forms; the author — even one holding the
    approve permission — cannot approve their own policy; a second user (an approver) does."""
    author = factories.make_operator(tenant)
    author.groups.add(Group.objects.get(name=ROLE_APPROVER))
    approver = factories.make_approver(tenant)
    now = timezone.now()

    console.login(author.username)
    console.goto("/admin/events/event/add/")
    console.fill("name", "Spring festival")
    console.select("status", Event.Status.OPEN)
    console.fill_datetime("starts_at", now - timedelta(hours=1))
    console.fill_datetime("ends_at", now + timedelta(days=14))
    console.fill("max_participants", 5000)
    console.shot("event-form")
    console.save()
    console.expect_success_message()
    event = Event.objects.get(tenant=tenant, name="Spring festival")
    assert (event.status, event.max_participants) == (Event.Status.OPEN, 5000)
    expect(console.link(f"/admin/events/event/{event.pk}/change/").first).to_be_visible()
    console.shot("event-saved")

    console.goto("/admin/coupons/couponpolicy/add/")
    console.fill("name", "5,000 off")
    console.select("kind", "amount")
    console.fill("amount", 5000)
    console.select("validity_type", "fixed")
    console.fill_datetime("valid_from", now - timedelta(hours=1))
    console.fill_datetime("valid_until", now + timedelta(days=30))
    console.shot("policy-form")
    console.save()
    console.expect_success_message()
    policy = CouponPolicy.objects.get(tenant=tenant, name="5,000 off")
    assert (policy.status, policy.amount, policy.created_by_id) == (CouponPolicy.Status.DRAFT, 5000, author.pk)

    decide = f"/admin/coupons/couponpolicy/{policy.pk}/decide/"
    console.goto(f"/admin/coupons/couponpolicy/{policy.pk}/change/")
    console.link(decide).click()
    console.page.click("button[name=decision][value=submit]")
    console.expect_success_message()
    policy.refresh_from_db()
    assert policy.status == CouponPolicy.Status.PENDING
    console.goto(decide)
    expect(console.page.locator("button[name=decision][value=approve]")).to_have_count(0)
    console.shot("author-cannot-approve")
    console.logout()

    console.login(approver.username)
    console.goto(decide)
    console.shot("approver-decides")
    console.page.click("button[name=decision][value=approve]")
    console.expect_success_message()
    console.shot("approved")
    policy.refresh_from_db()
    assert (policy.status, policy.decided_by_id) == (CouponPolicy.Status.APPROVED, approver.pk)
    # approved policies are read-only in the console (R-POL-5): no save button on its page
    console.goto(f"/admin/coupons/couponpolicy/{policy.pk}/change/")
    expect(console.page.locator("input[name=_save]")).to_have_count(0)


def test_an_operator_creates_an_inventory_and_a_batch_and_watches_generation_finish(console, tenant, held_jobs):
    """R-INV-1, R-CODE-5: inventory and batch through the admin forms; "Generate codes" queues the job; the batch
    page's progress bar shows it queued, follows it while a worker runs it and shows it finished — without the
    operator reloading the page."""
    event = factories.make_event(tenant, name="Summer event")
    policy = factories.make_approved_policy(tenant)
    quantity = 20_000
    jobs = held_jobs("generation")

    console.login(factories.make_operator(tenant).username)
    console.goto("/admin/coupons/couponinventory/add/")
    console.fill("name", "Summer pool")
    console.select("event", event.pk)
    console.select("policy", policy.pk)
    console.fill("total_quantity", quantity)
    console.shot("inventory-form")
    console.save()
    console.expect_success_message()
    inventory = CouponInventory.objects.get(tenant=tenant, name="Summer pool")
    assert (inventory.event_id, inventory.policy_id, inventory.total_quantity) == (event.pk, policy.pk, quantity)

    console.goto("/admin/coupons/couponbatch/add/")
    console.select("inventory", inventory.pk)
    console.fill("batch_code", "SUMMER-1")
    console.fill("quantity", quantity)
    console.shot("batch-form")
    console.save()
    console.expect_success_message()
    batch = CouponBatch.objects.get(tenant=tenant, batch_code="SUMMER-1")
    assert (batch.inventory_id, batch.quantity, batch.status) == (inventory.pk, quantity, CouponBatch.Status.PENDING)

    console.goto(f"/admin/coupons/couponbatch/{batch.pk}/change/")
    progress, bar = console.page.locator("#generation-progress"), console.page.locator("#generation-bar")
    console.page.click("#generation-start")
    console.expect_success_message()
    assert console.path() == f"/admin/coupons/couponbatch/{batch.pk}/change/"
    assert len(jobs.held) == 1  # queued, not yet run: the page shows it waiting
    expect(progress).to_have_attribute("data-status", "PENDING")
    assert bar.evaluate("e => e.style.width") == "0%"
    console.shot("generation-queued")

    jobs.release()  # a worker picks the job up; the page polls its progress and reloads itself once it is done
    expect(progress).to_have_attribute("data-status", "COMPLETED", timeout=60_000)
    jobs.join()
    expect(console.page.locator("#generation-start")).to_have_count(0)
    expect(bar).to_have_attribute("style", re.compile(r"width:\s*100%"))
    # and drawn full: the bar's width animates, so wait until it spans its track
    console.page.wait_for_function("() => { const b = document.getElementById('generation-bar');"
                                   " return b.offsetWidth >= b.parentElement.clientWidth - 1; }")
    console.shot("generation-finished")
    batch.refresh_from_db()
    assert (batch.status, batch.generated_count) == (CouponBatch.Status.COMPLETED, quantity)
    assert CouponCode.objects.filter(batch=batch).count() == quantity


def test_an_operator_uploads_a_partner_file_with_bad_rows_and_sees_them_listed(console, tenant):
    """R-PART-1, R-PART-5: the upload page takes the file; good rows are mapped to codes, each bad row is listed
    with its line and reason."""
    inventory, _codes = factories.make_pool(tenant, size=10)
    partner = partner_create(tenant=tenant, name="Convenience stores", code="GS25", actor=factories.TEST_ACTOR)
    too_long = "A" * 70
    content = "\n".join(["partner_code", "GOOD0001", "GOOD0002", "BAD-CODE!", "GOOD0001", too_long, "GOOD0003",
                         ""]).encode()

    console.login(factories.make_operator(tenant).username)
    console.goto("/admin/partners/partnerupload/")
    console.link("/admin/partners/partnerupload/upload/").first.click()
    console.select("partner", partner.pk)
    console.select("inventory", inventory.pk)
    console.page.set_input_files("#id_file", files=[{"name": "gs25-codes.csv", "mimeType": "text/csv",
                                                     "buffer": content}])
    console.shot("upload-form")
    console.page.click("form[enctype='multipart/form-data'] [type=submit]")
    console.expect_success_message()
    upload = PartnerUpload.objects.get(tenant=tenant, original_name="gs25-codes.csv")
    assert console.path() == f"/admin/partners/partnerupload/{upload.pk}/change/"
    assert (upload.status, upload.rows, upload.mapped, upload.failed) == (PartnerUpload.Status.DONE, 6, 3, 3)
    expect(console.page.locator("progress").first).to_have_attribute("value", "6")
    console.shot("upload-done")

    console.link(f"/admin/partners/partneruploadfailure/?upload__id__exact={upload.pk}").first.click()
    # the click only starts the navigation: read the list once its page has loaded
    console.page.wait_for_url(re.compile(rf"/admin/partners/partneruploadfailure/\?upload__id__exact={upload.pk}$"))
    rows = console.result_rows()
    console.shot("failures")
    with translation.override(console.lang):  # the list shows each reason's label in the console's language
        expected = {(f.line, f.value, str(f.get_reason_display())) for f in upload.failures.all()}
    assert {line for line, _v, _r in expected} == {4, 5, 6}  # file lines (the header is line 1)
    listed = {(int(r[2]), r[3], r[4]) for r in rows}  # checkbox, upload, line, value, reason, message
    assert listed == expected, rows


def test_an_operator_runs_a_draw_and_sees_the_winners(console, tenant):
    """R-DRAW-1..3: a draw made through the form with a prize tier, its seed committed, run from the list; the
    winners list shows exactly the drawn members."""
    members = [f"member-{i:03d}" for i in range(30)]
    event = ended_event_with(tenant, members)

    console.login(factories.make_operator(tenant).username)
    console.goto("/admin/draws/draw/add/")
    console.select("event", event.pk)
    console.fill("name", "Grand prize draw")
    console.fill_datetime("draw_at", timezone.now() - timedelta(minutes=1))
    console.fill("tiers-0-position", 1)
    console.fill("tiers-0-name", "first prize")
    console.fill("tiers-0-winners", 3)
    console.shot("draw-form")
    console.save()
    console.expect_success_message()
    draw = Draw.objects.get(tenant=tenant, name="Grand prize draw")
    assert list(draw.tiers.values_list("name", "winners")) == [("first prize", 3)]

    console.run_action("/admin/draws/draw/", "commit_seed", [draw.pk])
    console.expect_success_message()
    draw.refresh_from_db()
    assert draw.status == Draw.Status.COMMITTED and draw.seed_hash
    console.run_action("/admin/draws/draw/", "run_now", [draw.pk])
    console.expect_success_message()
    console.shot("drawn")
    draw.refresh_from_db()
    assert (draw.status, draw.participants_count) == (Draw.Status.DONE, 30)

    console.goto(f"/admin/draws/drawwinner/?q={draw.public_id}")
    console.shot("winners")
    winners = set(DrawWinner.objects.filter(draw=draw).values_list("member_id", flat=True))
    assert len(winners) == 3 and winners <= set(members)
    listed = {row[1] for row in console.result_rows()}  # checkbox, member id, …
    assert listed == winners
    console.goto(f"/admin/draws/draw/{draw.pk}/change/")
    expect(console.page.locator(".field-revealed_seed .readonly")).to_contain_text(draw.seed)
