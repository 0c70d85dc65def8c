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
