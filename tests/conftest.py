from __future__ import annotations

import pytest

from tests import factories


def pytest_configure(config):
    """Compile the message catalogues (.po → .mo, pure Python) so tests see the committed translations (issue #11)."""
    from core.catalogues import compile_all

    compile_all()


@pytest.fixture(autouse=True)
def _jobs_inline(settings):
    """Jobs run inline in tests unless a test says otherwise (core.jobs); configuration is never cached across
    the changes a test makes (issuing's inventory cache)."""
    settings.JOBS_SYNC = True
    settings.COUPON_CONFIG_CACHE_SECONDS = 0


@pytest.fixture
def tenant(db):
    return factories.make_tenant()


@pytest.fixture
def other_tenant(db):
    return factories.make_tenant()


@pytest.fixture
def operator_user(tenant):
    return factories.make_operator(tenant)


@pytest.fixture
def approver_user(tenant):
    return factories.make_approver(tenant)


@pytest.fixture
def approved_policy(tenant):
    return factories.make_approved_policy(tenant)


@pytest.fixture
def inventory(tenant, approved_policy):
    return factories.make_inventory(tenant, policy=approved_policy)


@pytest.fixture
def member_client(tenant):
    """(ApiClient, token) of member scope."""
    return factories.make_client(tenant)


@pytest.fixture
def api(member_client):
    """A DRF APIClient authenticated with a member token."""
    return factories.api_for(member_client[1])


@pytest.fixture
def operator_api(tenant):
    """A DRF APIClient of an operator-scope client of ``tenant`` (revoking, grants, exports, uploads: issue #16)."""
    return factories.make_operator_api(tenant)


@pytest.fixture(autouse=True)
def _patient_redis(settings):
    """The suite's shared Redis serves two xdist workers on a loaded two-core machine, where one reply can take more
    than the production read timeout (0.5 s): that stall would be a spurious 503 in an unrelated test (a CI run saw
    one). The fault suite runs its servers with the production defaults in their own environment
    (tests/faults/harness.py), and the tests of the timeouts themselves set what they need."""
    settings.COUPON_REDIS_TIMEOUT_SECONDS = max(float(settings.COUPON_REDIS_TIMEOUT_SECONDS), 5.0)


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Tests render admin pages without running collectstatic first."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(settings):
    """Rate-limit and failed-guess counters live in the shared cache (Redis) and outlive a test's transaction: each
    test counts under its own prefix, so no test inherits another's (or an earlier run's) counts (R-RISK-4)."""
    import uuid

    settings.RATELIMIT_CACHE_PREFIX = f"rl:{uuid.uuid4().hex}:"


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language. A request through the locale middlewares leaves its language
    active in the thread (as in any server thread until its next request); without this, a command or service called
    later on the same xdist worker would answer in whatever language an earlier test's request used (issue #11)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory):
    """A 3-node Redis Cluster of stock ``redis-server`` processes for this session (tests/redis_cluster.py, issue #23);
    started on first use, killed at the end. Never the shared Redis."""
    from tests.redis_cluster import RedisClusterNodes

    nodes = RedisClusterNodes(tmp_path_factory.mktemp("redis-cluster"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def on_redis_cluster(settings, redis_cluster_nodes):
    """The app's own Redis keys (limits, frequency counters, member locks, the Bloom filter) go to the test cluster
    for this test (``REDIS_CLUSTER_URL``); RQ and the cache stay on the shared Redis. Yields a cluster client."""
    from core import redis as core_redis
    from coupons import bloom

    def forget() -> None:
        core_redis.reset_clients()
        bloom._params_cache.clear()

    settings.REDIS_CLUSTER_URL = redis_cluster_nodes.url
    forget()
    yield core_redis.client()
    forget()


@pytest.fixture
def every_query_names_its_tenant():
    """``with every_query_names_its_tenant(): …`` fails any statement on a tenant table without a tenant_id predicate
    (tests/tenant_queries.py, issue #23); set-up stays outside the block, so only what is inside is checked."""
    from tests.tenant_queries import every_query_names_its_tenant as mode

    return mode
