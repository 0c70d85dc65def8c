"""R-OPS-3: /health/ reports database, Redis and queues; 503 names what is down."""
from __future__ import annotations



def test_health_is_ok_with_database_and_redis(client, db, settings):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    if settings.USE_REDIS:
        assert body["redis"] == "ok"
        assert set(body["queues"]) == set(settings.JOB_QUEUES)
        assert all("queued" in q for q in body["queues"].values())


def test_health_answers_503_naming_redis_when_redis_is_down(client, db, settings):
    settings.USE_REDIS = True
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["redis"]
    assert body["redis"] == "down: ConnectionError"
    assert body["database"] == "ok"


def test_health_answers_503_naming_the_database_when_it_is_down(client, db, monkeypatch, settings):
    from django.db.backends.postgresql.base import DatabaseWrapper

    from core import health

    dead = DatabaseWrapper({**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": "1",
                            "OPTIONS": {"connect_timeout": 2}, "TIME_ZONE": None}, alias="dead")
    monkeypatch.setattr(health, "connection", dead)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["down"][0] == "database"
    assert response.json()["database"] == "down: OperationalError"


def test_anonymous_callers_get_no_queue_internals(client, db, settings):
    """Issue #17: a caller that is neither staff nor a metrics caller sees ok/down only."""
    settings.METRICS_ALLOWED_NETWORKS = []
    body = client.get("/health/", REMOTE_ADDR="203.0.113.5").json()
    assert "queues" not in body
    assert body["database"] == "ok"
    settings.USE_REDIS = True
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    down = client.get("/health/", REMOTE_ADDR="203.0.113.5")
    assert down.status_code == 503
    assert down.json() == {"database": "ok", "redis": "down", "down": ["redis"]}


def test_staff_see_the_queues(client, db, settings, tenant):
    from tests import factories

    settings.METRICS_ALLOWED_NETWORKS = []
    client.force_login(factories.make_operator(tenant))
    body = client.get("/health/", REMOTE_ADDR="203.0.113.5").json()
    assert "queues" in body
