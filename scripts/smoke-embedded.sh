#!/usr/bin/env bash
# The zero-setup path of the README, end to end: no DATABASE_URL, no REDIS_URL → embedded PostgreSQL 18 and
# in-process jobs. Serve like `make run` does, then check health, the console login page, the API with the demo
# token and the API docs; stop, and check the embedded server stopped with it.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${SMOKE_PORT:-8765}
var_dir=$(mktemp -d /tmp/coupon-smoke.XXXXXX)
chmod 755 "$var_dir"
log="$var_dir/serve.log"
unset DATABASE_URL REDIS_URL
export COUPON_VAR_DIR="$var_dir"

.venv/bin/python manage.py serve --bind "127.0.0.1:$port" --workers 1 >"$log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT

.venv/bin/python - "$port" "$var_dir" "$pid" <<'PY'
import json, os, sys, time
import httpx

port, var_dir, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
deadline = time.time() + 240
while True:
    try:
        health = httpx.get(f"{base}/health/", timeout=5)
        break
    except httpx.TransportError:
        if time.time() > deadline:
            sys.exit("smoke: the server did not come up in 240 s; see serve.log")
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("smoke: `manage.py serve` exited before serving; see serve.log")
        time.sleep(1)

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        sys.exit(1)

body = health.json()
check(health.status_code == 200 and body["database"] == "ok", f"/health/ 200 on the embedded database: {body}")
login = httpx.get(f"{base}/admin/login/", timeout=10)
check(login.status_code == 200 and "Log in" in login.text, "console login page")
creds = json.load(open(os.path.join(var_dir, "demo_credentials.json")))
me = httpx.get(f"{base}/api/v1/client", headers={"Authorization": f"Bearer {creds['member_token']}"}, timeout=10)
check(me.status_code == 200 and me.json()["tenant"] == "demo", f"API with the demo member token: {me.text}")
demo = json.loads(open(os.path.join(var_dir, "demo.json")).read())
claim = httpx.post(f"{base}/api/v1/claims", json={"member_id": "smoke-1", "inventory": demo["inventory"]},
                   headers={"Authorization": f"Bearer {creds['member_token']}"}, timeout=10)
check(claim.status_code == 201 and claim.json()["coupon"]["status"] == "ISSUED", f"a claim with the demo token: {claim.text[:200]}")
session = httpx.Client(base_url=base, timeout=10)
page = session.get("/admin/login/")
csrf = session.cookies.get("csrftoken")
logged = session.post("/admin/login/?next=/admin/", data={"username": "admin", "password": creds["password"],
                      "csrfmiddlewaretoken": csrf, "next": "/admin/"}, headers={"Referer": f"{base}/admin/login/"})
check(logged.status_code == 302 and logged.headers["location"] == "/admin/", "console login with the printed password")
check(session.get("/admin/").status_code == 200, "console index after login")
schema = httpx.get(f"{base}/api/schema/", timeout=10)
check(schema.status_code == 200 and "openapi" in schema.text, "OpenAPI schema")
docs = httpx.get(f"{base}/api/docs/", timeout=10)
check(docs.status_code == 200 and "swagger" in docs.text.lower(), "API docs page")
static = httpx.get(f"{base}/static/admin/css/base.css", timeout=10)
check(static.status_code == 200, "console static files served")
PY

cleanup
trap - EXIT
sleep 1
if pgrep -f "postgres.*$var_dir/pgdata" >/dev/null; then
  echo "FAIL embedded PostgreSQL still running after the server stopped" >&2
  exit 1
fi
echo "ok   embedded PostgreSQL stopped with the server"
echo "Embedded smoke test passed."
rm -rf "$var_dir" 2>/dev/null || true
