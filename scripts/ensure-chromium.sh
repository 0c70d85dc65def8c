#!/usr/bin/env bash
# The browser tests (tests/browser) drive Debian's Chromium through the Python `playwright` package. Playwright's own
# browser download (`playwright install`) is never used. When /usr/bin/chromium is missing, install Debian's package.
# If that is impossible, say so and go on: the browser tests then FAIL with the same message (never skipped), and
# the rest of the suite still runs and reports.
set -uo pipefail

browser=${BROWSER_EXECUTABLE:-/usr/bin/chromium}
have() { [[ -x "$browser" ]] || command -v "$browser" >/dev/null 2>&1; }

if ! have && [[ "$browser" == /usr/bin/chromium ]]; then
  bash "$(dirname "$0")/apt-ensure.sh" chromium "Chromium is missing for the browser tests"
fi

# Korean screenshots need a Korean font (the journeys also run in Korean, issue #11): Debian's fonts-nanum.
if have && command -v fc-list >/dev/null 2>&1 && [[ -z "$(fc-list :lang=ko 2>/dev/null)" ]] \
   && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  fi
  echo "No Korean font; installing Debian's fonts-nanum for the Korean browser-test screenshots."
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq fonts-nanum >/dev/null 2>&1 \
    || echo "WARNING: fonts-nanum could not be installed: Korean screenshots will show boxes for Korean text." >&2
fi

if have; then
  echo "Chromium for the browser tests: $("$browser" --version 2>/dev/null || echo "$browser")"
else
  echo "WARNING: no Chromium at $browser, and it could not be installed from Debian's chromium package" \
       "(apt-get install -y chromium, as root). The browser tests (tests/browser) will fail." >&2
fi
exit 0
