#!/usr/bin/env bash
# Install Debian's chromium, which the report's browser test (tests/e2e/test_report_browser.py)
# drives headless. Idempotent: does nothing when /usr/bin/chromium (or $CHROMIUM) is already there.
# Needs root (CI runs as root); as another user it says what to run instead. Only Debian's package
# is used: no browser build is downloaded from anywhere else.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: $CHROMIUM is missing and this machine has no apt-get;" \
        "install a Chromium build by hand and set CHROMIUM to its path" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium.sh: $CHROMIUM is missing and installing it needs root:" \
        "run 'sudo apt-get update && sudo apt-get install -y chromium'" \
        "(or run this script as root)" >&2
    exit 1
fi
echo "install-chromium.sh: installing Debian's chromium" >&2
export DEBIAN_FRONTEND=noninteractive
# An old or empty package list makes 'apt-get install' fail to find the package: refresh it first.
apt-get update -qq
# fonts-dejavu-core: the page's text needs a font, and a minimal image may have none.
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ ! -x "$CHROMIUM" ]; then
    echo "install-chromium.sh: apt-get installed chromium but $CHROMIUM is not there" >&2
    exit 1
fi
"$CHROMIUM" --version >&2 || true
