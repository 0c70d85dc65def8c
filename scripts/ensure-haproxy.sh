#!/usr/bin/env bash
# The three-host scale test (tests/scale, issue #23) puts Debian's HAProxy in front of three gunicorn hosts. When
# haproxy is missing, install Debian's package. If that is impossible, say so and go on: that test then SKIPS with
# the same message, and the rest of the suite still runs and reports.
set -uo pipefail

have() { command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]]; }

if ! have && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  fi
  echo "HAProxy is missing; installing Debian's haproxy package for the three-host scale test."
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq haproxy >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq haproxy; }
fi

if have; then
  echo "HAProxy for the scale test: $( (haproxy -v 2>/dev/null || /usr/sbin/haproxy -v) | head -1)"
else
  echo "WARNING: no haproxy, and it could not be installed from Debian's haproxy package" \
       "(apt-get install -y haproxy, as root). The three-host scale test (tests/scale) will be skipped." >&2
fi
exit 0
