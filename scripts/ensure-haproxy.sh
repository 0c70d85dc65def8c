#!/usr/bin/env bash
# The three-host scale test (tests/scale, issue #23) puts Debian's HAProxy in front of three gunicorn hosts. When
# haproxy is missing, install Debian's package. If that is impossible, say so and go on: that test then FAILS with
# the same message (never skipped), and the rest of the suite still runs and reports.
set -uo pipefail

have() { command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]]; }

have || bash "$(dirname "$0")/apt-ensure.sh" haproxy "HAProxy is missing for the three-host scale test"

if have; then
  echo "HAProxy for the scale test: $( (haproxy -v 2>/dev/null || /usr/sbin/haproxy -v) | head -1)"
else
  echo "WARNING: no haproxy, and it could not be installed from Debian's haproxy package" \
       "(apt-get install -y haproxy, as root). The three-host scale test (tests/scale) will fail." >&2
fi
exit 0
