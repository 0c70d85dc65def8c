#!/usr/bin/env bash
# Install a Debian package when a test needs its program and it is missing: `apt-ensure.sh <package> <why>`.
# Runs apt-get as root, or with `sudo -n`; updates the package lists only if the first try fails. Never fails itself:
# the caller checks for the program afterwards and says what is missing.
set -uo pipefail
package=$1
why=$2
command -v apt-get >/dev/null 2>&1 || exit 0
sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
fi
echo "$why: installing Debian's $package package."
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq "$package" >/dev/null 2>&1 \
  || { $sudo apt-get update -qq && $sudo apt-get install -y -qq "$package"; }
exit 0
