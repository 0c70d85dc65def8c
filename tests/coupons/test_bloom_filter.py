"""The per-tenant Bloom filters (issue #23): cheap "certainly absent" answers, no false negatives, atomic merges,
rebuild (R-CODE-3)."""
from __future__ import annotations

import numpy as np
import pytest

from coupons import bloom
from coupons.bloom import (BitArray, BloomParams, BloomUnavailable, BloomWriter, FileBloomStore, as_code_array,
                           bloom_adding, bloom_drop, bloom_might_contain, bloom_rebuild, bloom_verify, get_store,
                           hash_codes, hash_one)
from coupons.services.generation import batch_generate
from coupons.models import CouponCode
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = factories.TEST_ACTOR


@pytest.fixture(autouse=True)
def own_small_filter(settings, transactional_db):
    settings.GENERATION_CHUNK_SIZE = 5000
    settings.BLOOM_CAPACITY = 200_000
    settings.BLOOM_ERROR_RATE = 1e-6
    bloom_drop()
    yield
    bloom_drop()


@pytest.fixture
def pool(tenant):
    return factories.make_inventory(tenant, total_quantity=1_000_000)


def shared_bits(tenant_id: int) -> BitArray:
    store = get_store(tenant_id)
    params = store.params()
    bits = BitArray(params)
    for start, piece in store.pieces(params):
        bits.bits[start:start + len(piece)] = np.frombuffer(piece, np.uint8)
    return bits


def test_the_filter_says_certainly_absent_for_at_least_99_percent_of_unknown_codes_without_a_query(
        pool, django_assert_num_queries):
    batch = factories.make_batch(pool, quantity=20_000)
    batch_generate(batch_id=batch.pk, actor=ACTOR)
    existing = set(CouponCode.objects.values_list("code", flat=True))
    unknown = [c for c in factories.random_codes(10_000, length=8) if c not in existing]

    with django_assert_num_queries(0):
        certainly_absent = sum(1 for code in unknown if not bloom_might_contain(code, pool.tenant_id))

    assert len(unknown) == 10_000
    assert certainly_absent >= 9900


def test_every_generated_code_might_be_present(pool):
    batch = factories.make_batch(pool, quantity=20_000, prefix="PX")
    batch_generate(batch_id=batch.pk, actor=ACTOR)
    codes = list(CouponCode.objects.values_list("code", flat=True))

    assert not shared_bits(pool.tenant_id).absent(as_code_array(codes)).any()
    assert all(bloom_might_contain(code, pool.tenant_id) for code in codes[:500])  # the single-code path agrees


def test_without_a_filter_every_code_might_be_present(tenant):
    assert get_store(tenant.pk).params() is None
    assert bloom_might_contain("ABCDEFGH", tenant.pk) is True


def test_a_filter_whose_bits_were_evicted_fails_open_instead_of_refusing_real_codes(pool, settings):
    """Redis evicted (or lost) the bits while the small parameters hash stayed: every probe of the missing bits would
    read 0 — 'certainly absent' — and refuse the tenant's real codes. The probe script sees the bits are gone and the
    lookup answers 'maybe' (the database decides), also in a process that cached the parameters before (review, #21)."""
    if settings.BLOOM_BACKEND != "redis":
        pytest.skip("the Redis backend's keys")
    batch = factories.make_batch(pool, quantity=500)
    batch_generate(batch_id=batch.pk, actor=ACTOR)
    codes = list(CouponCode.objects.values_list("code", flat=True)[:50])
    assert all(bloom_might_contain(code, pool.tenant_id) for code in codes)  # parameters now cached here
    store = get_store(pool.tenant_id)
    store.redis.delete(store.bits_key)
    assert store.redis.exists(store.meta_key)

    assert all(bloom_might_contain(code, pool.tenant_id) for code in codes)


def test_codes_that_cannot_exist_are_absent_without_asking_anything(tenant, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert bloom_might_contain("", tenant.pk) is False
        assert bloom_might_contain("A" * 49, tenant.pk) is False  # longer than the column


def test_the_single_code_hash_equals_the_vectorised_one():
    codes = ["ABC", "ABCDEFGH", "PREFIX23456789AB", "Z" * 48]
    for width in (17, 48):
        array = np.array([c.encode() for c in codes if len(c) <= width], dtype=f"S{width}")
        h1, h2 = hash_codes(array, seed=12345)
        assert [hash_one(c.encode(), 12345) for c in codes if len(c) <= width] == list(zip(h1.tolist(),
                                                                                          h2.tolist(), strict=True))


def test_two_writers_merging_at_once_keep_each_others_bits(tenant):
    bloom_rebuild(tenant_id=tenant.pk)
    store = get_store(tenant.pk)
    params = store.params()
    first, second = BloomWriter(store, params), BloomWriter(store, params)
    first.load()
    second.load()  # both start from the same snapshot
    codes_a = as_code_array(factories.random_codes(3000, length=8))
    codes_b = as_code_array(factories.random_codes(3000, length=8))

    first.add(codes_a)
    second.add(codes_b)
    first.publish()
    second.publish()

    merged = shared_bits(tenant.pk)
    assert not merged.absent(codes_a).any()  # a last-writer-wins SET would have lost these
    assert not merged.absent(codes_b).any()
    assert second.refreshes == 1  # the second saw the first's merge and took its bits
    assert not second.local.absent(codes_a).any()


def test_a_merge_into_a_rebuilt_filter_is_refused(tenant):
    bloom_rebuild(tenant_id=tenant.pk)
    store = get_store(tenant.pk)
    writer = BloomWriter(store, store.params())
    writer.load()
    writer.add(as_code_array(["ABCDEFGH"]))

    bloom_rebuild(tenant_id=tenant.pk)  # new epoch: this writer's snapshot no longer describes the shared bits

    with pytest.raises(BloomUnavailable):
        writer.publish()


def test_a_merge_into_a_missing_filter_is_refused(tenant):
    bloom_rebuild(tenant_id=tenant.pk)
    store = get_store(tenant.pk)
    writer = BloomWriter(store, store.params())
    writer.load()
    writer.add(as_code_array(["ABCDEFGH"]))
    store.drop()

    with pytest.raises(BloomUnavailable):
        writer.publish()
    assert store.params() is None  # the refused merge did not create a filter lacking the older codes


def test_rebuild_takes_every_code_of_the_database(pool):
    batch = factories.make_batch(pool, quantity=3000)
    codes = factories.random_codes(3000, length=10)
    CouponCode.objects.bulk_create([CouponCode(tenant_id=batch.tenant_id, inventory_id=batch.inventory_id,
                                               batch=batch, code=c) for c in set(codes)])

    result = bloom_rebuild(tenant_id=pool.tenant_id, capacity=100_000, error_rate=1e-4)

    assert result["codes"] == len(set(codes))
    assert (result["capacity"], result["hashes"]) == (100_000, 13)
    assert not shared_bits(pool.tenant_id).absent(as_code_array(codes)).any()
    assert bloom_verify(tenant_id=pool.tenant_id)["missing"] == 0


def test_a_rebuilt_redis_filter_never_expires(tenant, settings):
    if settings.BLOOM_BACKEND != "redis":
        pytest.skip("Redis backend only")
    bloom_rebuild(tenant_id=tenant.pk)
    store = get_store(tenant.pk)

    assert store.redis.ttl(store.bits_key) == -1
    assert store.redis.ttl(store.meta_key) == -1


def test_verify_reports_codes_written_behind_the_filters_back(pool):
    bloom_rebuild(tenant_id=pool.tenant_id)
    batch = factories.make_batch(pool, quantity=50)
    written = set(factories.random_codes(50, length=12))
    CouponCode.objects.bulk_create([CouponCode(tenant_id=batch.tenant_id, inventory_id=batch.inventory_id,
                                               batch=batch, code=c) for c in written])

    report = bloom_verify(tenant_id=pool.tenant_id)

    assert report["checked"] == 50
    assert report["missing"] >= 49  # a filter built before them cannot know them (one may be a false positive)


def test_codes_added_through_bloom_adding_might_be_present(tenant):
    bloom_rebuild(tenant_id=tenant.pk)
    codes = factories.random_codes(200, length=12)

    with bloom_adding(codes, tenant_id=tenant.pk):
        pass

    assert all(bloom_might_contain(code, tenant.pk) for code in codes)


def test_generation_rebuilds_a_missing_filter_from_the_database_first(pool):
    old = factories.make_batch(pool, quantity=40)
    old_codes = set(factories.random_codes(40, length=12))
    CouponCode.objects.bulk_create([CouponCode(tenant_id=old.tenant_id, inventory_id=old.inventory_id, batch=old,
                                               code=c) for c in old_codes])
    assert get_store(pool.tenant_id).params() is None

    batch_generate(batch_id=factories.make_batch(pool, quantity=100).pk, actor=ACTOR)

    assert not shared_bits(pool.tenant_id).absent(as_code_array(old_codes)).any()


def test_the_file_backend_shares_bits_between_readers_and_survives_a_rebuild(tenant, settings, tmp_path):
    settings.BLOOM_BACKEND = "file"
    settings.BLOOM_FILE = str(tmp_path / "codes.bloom")
    bloom_rebuild(tenant_id=tenant.pk)
    store = get_store(tenant.pk)
    assert isinstance(store, FileBloomStore)
    reader = FileBloomStore(store.path)  # another process's view of the same file
    writer = BloomWriter(store, store.params())
    writer.load()
    codes = factories.random_codes(500, length=8)
    writer.add(as_code_array(codes))
    params = reader.params()
    assert all(reader.test(params, bloom.offsets_one(c.encode(), params)) is False for c in codes[:20])

    writer.publish()
    assert all(reader.test(params, bloom.offsets_one(c.encode(), params)) for c in codes)

    bloom_rebuild(tenant_id=tenant.pk)  # a new file replaces the old one; the reader's old mapping is flagged superseded
    assert reader.test(params, bloom.offsets_one(codes[0].encode(), params)) is None
    assert bloom_might_contain(codes[0], tenant.pk) is False  # answered from the new file: built from the database


def test_sizing_follows_capacity_and_error_rate():
    params = BloomParams.sized(20_000_000, 1e-6)

    assert (params.m, params.k) == (575_103_552, 20)
    assert round(params.nbytes / 2**20, 1) == 68.6
