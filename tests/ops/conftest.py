from __future__ import annotations

import pytest


@pytest.fixture
def rq_queues(settings):
    """Real RQ on the test Redis db: jobs are queued (not run inline) and every queue, registry and worker record
    starts empty."""
    if not settings.USE_REDIS:
        pytest.skip("needs REDIS_URL (real Redis for RQ)")
    import django_rq
    from redis import Redis

    settings.JOBS_SYNC = False
    conn = Redis.from_url(settings.REDIS_URL)

    def clean() -> None:
        for pattern in ("rq:*", "tests:ops:*"):
            keys = list(conn.scan_iter(pattern, count=1000))
            if keys:
                conn.delete(*keys)

    clean()
    yield {name: django_rq.get_queue(name) for name in settings.JOB_QUEUES}
    clean()


def run_worker(queues, *, with_scheduler: bool = False) -> None:
    """A real RQ worker (in this process, so it shares the test's database transaction) until the queues are empty."""
    from rq import SimpleWorker

    queues = list(queues)
    worker = SimpleWorker(queues, connection=queues[0].connection)
    worker.work(burst=True, with_scheduler=with_scheduler)
