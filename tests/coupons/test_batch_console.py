"""The batch console pages: generation button and progress (R-CODE-5), and the way to a partner distribution."""
from __future__ import annotations

import pytest
from django.urls import reverse

from coupons.bloom import bloom_drop
from coupons.services.generation import batch_generate
from coupons.models import CouponBatch
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = factories.TEST_ACTOR


@pytest.fixture(autouse=True)
def own_small_filter(settings, transactional_db):
    settings.GENERATION_CHUNK_SIZE = 1000
    settings.BLOOM_CAPACITY = 100_000
    bloom_drop()
    yield
    bloom_drop()


@pytest.fixture
def generated(tenant):
    inventory = factories.make_inventory(tenant, total_quantity=100_000)
    batch = factories.make_batch(inventory, quantity=2500, batch_code="PARTNER-1")
    return batch_generate(batch_id=batch.pk, actor=ACTOR)


def test_the_console_generate_button_queues_generation_and_the_progress_endpoint_reports_it(
        client, tenant, operator_user):
    inventory = factories.make_inventory(tenant, total_quantity=10_000)
    batch = factories.make_batch(inventory, quantity=3000)
    client.force_login(operator_user)
    page = client.get(reverse("admin:coupons_couponbatch_change", args=[batch.pk])).content.decode()
    assert reverse("admin:coupons_couponbatch_generate", args=[batch.pk]) in page

    started = client.post(reverse("admin:coupons_couponbatch_generate", args=[batch.pk]))
    progress = client.get(reverse("admin:coupons_couponbatch_progress", args=[batch.pk])).json()

    assert started.status_code == 302
    assert (progress["status"], progress["generated_count"], progress["percent"], progress["chunks"]) == (
        "COMPLETED", 3000, 100.0, 3)  # jobs run inline in tests


def test_a_viewer_can_watch_progress_but_not_generate_or_distribute(client, tenant, generated):
    viewer = factories.make_viewer(tenant)
    client.force_login(viewer)
    pending = factories.make_batch(generated.inventory, quantity=10)

    assert client.get(reverse("admin:coupons_couponbatch_progress", args=[pending.pk])).status_code == 200
    assert client.post(reverse("admin:coupons_couponbatch_generate", args=[pending.pk])).status_code == 403
    page = client.get(reverse("admin:coupons_couponbatch_change", args=[generated.pk])).content.decode()
    assert 'id="distribute-link"' not in page
    assert client.get(reverse("admin:partners_distribution_distribute") + f"?batch={generated.pk}").status_code == 403
    assert CouponBatch.objects.get(pk=pending.pk).status == "PENDING"


def test_an_operator_reaches_the_distribution_page_from_a_completed_batch(client, tenant, generated, operator_user):
    client.force_login(operator_user)
    page = client.get(reverse("admin:coupons_couponbatch_change", args=[generated.pk])).content.decode()
    url = reverse("admin:partners_distribution_distribute") + f"?batch={generated.pk}"
    assert f'href="{url}"' in page.replace("&amp;", "&")
    form = client.get(url).context["form"]
    assert (form.initial["batch"], form.initial["inventory"]) == (generated, generated.inventory)


def test_another_tenants_batch_is_not_found_for_progress_or_generate(client, generated, other_tenant):
    intruder = factories.make_operator(other_tenant)
    client.force_login(intruder)

    for name in ("progress", "generate"):
        url = reverse(f"admin:coupons_couponbatch_{name}", args=[generated.pk])
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
    # the distribution page does not preselect (or reveal) another tenant's batch
    form = client.get(reverse("admin:partners_distribution_distribute") + f"?batch={generated.pk}").context["form"]
    assert "batch" not in form.initial
    assert CouponBatch.objects.get(pk=generated.pk).status == "COMPLETED"
