"""Issue #2: settings come from the environment, bad values stop the process loudly; deploy checks pass."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    base.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("env,message", [
    ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
    ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL must point to PostgreSQL"),
    ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL='http://127.0.0.1:6379' must start with redis://"),
    ({"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_CLUSTER_URL": "unix:///tmp/redis.sock"},
     "REDIS_CLUSTER_URL='unix:///tmp/redis.sock' must start with redis:// or rediss://"),
    ({"REDIS_URL": "", "REDIS_CLUSTER_URL": "redis://127.0.0.1:7101/0"}, "REDIS_CLUSTER_URL needs REDIS_URL too"),
    ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY must be at least 32 characters"),
    ({"DJANGO_CONN_MAX_AGE": "forever"}, "forever"),
    ({"COUPON_RATE_CODE_LOOKUP_IP": "lots"}, "COUPON_RATE_CODE_LOOKUP_IP='lots' is not a rate such as 3000/m"),
    ({"COUPON_FAILED_GUESS_LIMIT": "-1"}, "COUPON_FAILED_GUESS_LIMIT must be 0 or more; got -1"),
    ({"COUPON_TOKEN_ROTATION_GRACE_SECONDS": "-5"}, "COUPON_TOKEN_ROTATION_GRACE_SECONDS must be 0 or more"),
    ({"COUPON_TOKEN_CACHE_SECONDS": "3600"}, "COUPON_TOKEN_CACHE_SECONDS must be 0–60 seconds"),
    ({"COUPON_CONFIG_CACHE_SECONDS": "-1"}, "COUPON_CONFIG_CACHE_SECONDS must be 0–60 seconds"),
])
def test_a_bad_environment_value_stops_the_process_with_a_message_naming_it(env, message):
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_deploy_checks_pass_with_production_like_settings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_DEBUG="false", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="coupons.example.com", DJANGO_SECURE_SSL_REDIRECT="true",
        DJANGO_SECURE_COOKIES="true", DJANGO_SECURE_HSTS_SECONDS="31536000",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_models_and_migrations_are_in_step():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
