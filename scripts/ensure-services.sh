#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis that `make test` uses answer. When they point at this machine and are
# installed but stopped, start them (the commands the machine's own docs give); otherwise say what is missing.
# Then make sure the browser tests have their Chromium (scripts/ensure-chromium.sh) and the three-host scale test
# its HAProxy (scripts/ensure-haproxy.sh).
set -uo pipefail

db_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/coupons}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/1}

pg_up() { .venv/bin/python - "$db_url" <<'PY' 2>/dev/null
import sys, psycopg
from urllib.parse import urlsplit, urlunsplit
parts = urlsplit(sys.argv[1].replace("postgres://", "postgresql://", 1))
# connect to the maintenance database: the test database is created by the test runner
url = urlunsplit(parts._replace(path="/postgres"))
psycopg.connect(url, connect_timeout=3).close()
PY
}
redis_up() { .venv/bin/python -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()" "$redis_url" 2>/dev/null; }
is_local() { [[ "$1" == *"127.0.0.1"* || "$1" == *"localhost"* ]]; }

if ! pg_up; then
  if is_local "$db_url" && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not answering; starting the local cluster."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { echo "PostgreSQL at $db_url is not reachable. Start it, or set DATABASE_URL to one that is." >&2; exit 1; }
fi

if ! redis_up; then
  if is_local "$redis_url" && command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not answering; starting a local redis-server."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  fi
  redis_up || { echo "Redis at $redis_url is not reachable. Start it, or set REDIS_URL to one that is." >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up."

# The browser tests' Chromium (Debian's package), installed when missing; never fatal here: see the script.
bash "$(dirname "$0")/ensure-chromium.sh"

# The three-host scale test's load balancer (Debian's haproxy), installed when missing; never fatal here either.
bash "$(dirname "$0")/ensure-haproxy.sh"
