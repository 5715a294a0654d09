#!/bin/sh
# Chromium for the console's browser tests (test/e2e/console.test.ts): Debian's own package,
# driven by playwright-core (no browser download). Does nothing when it is installed already.
set -e
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian's chromium (apt-get) for the console's browser tests"
$SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
command -v chromium >/dev/null
