"""Fixtures of the fault suite (marker ``faults``, issue #18): a throwaway PostgreSQL cluster and Redis server for the
whole session, migrated once; the test process's Django pointed at them while a fault test runs (to create its data
with the factories and to read results), then pointed back."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.faults.harness import REPO, Stack
from tests.faults.services import Postgres, RedisServer, scratch_dir

DB_NAME = "coupons_faults"


@pytest.fixture(scope="session")
def stack():
    root = scratch_dir()
    pg = Postgres(root / "pg")
    redis = RedisServer(root / "redis")
    built = None
    try:
        pg.init()
        pg.start()
        redis.start()
        built = Stack(root=root, pg=pg, redis=redis, db_url=pg.create_database(DB_NAME))
        done = subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=built.env(),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        yield built
    finally:
        if built is not None:
            built.reap()
        redis.kill()
        pg.stop()
        if os.environ.get("COUPON_FAULT_KEEP"):  # keep the servers' and workers' logs for a post-mortem
            print(f"fault suite files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def on_stack(stack, django_db_blocker, settings):
    """This process's Django on the throwaway database and Redis for the test; the services up when it starts."""
    from django.db import connections

    from core import redis as core_redis
    from coupons import bloom

    if stack.pg.proc is None:
        stack.pg.start()
    if stack.redis.proc is None:
        stack.redis.start()
    import redis

    redis.Redis.from_url(stack.redis.url()).flushall()  # no job, lock or worker left over from an earlier test
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update({"NAME": DB_NAME, "HOST": "127.0.0.1", "PORT": str(stack.pg.port),
                                     "USER": "postgres", "PASSWORD": ""})
    settings.REDIS_URL = stack.redis.url()
    core_redis.reset_clients()
    bloom._redis_clients.clear()
    bloom._stores.clear()
    bloom._params_cache.clear()
    try:
        with django_db_blocker.unblock():
            yield stack
    finally:
        stack.reap()
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        core_redis.reset_clients()
        bloom._redis_clients.clear()
        bloom._stores.clear()
        bloom._params_cache.clear()
