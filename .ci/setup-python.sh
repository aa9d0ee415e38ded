#!/usr/bin/env bash
# Provides a Python with torch, numpy and pytest for the bridge's tests, on any machine of this kind: an existing one,
# else a venv from the machine's local wheel index (never PyPI, which is unreachable), else Debian's packages.
set -uo pipefail
cd "$(dirname "$0")/.."
if node scripts/python.mjs torch numpy pytest >/dev/null 2>&1; then exit 0; fi
if [ -d /opt/pypi/simple ] || [ -d /opt/wheels ]; then
  python3 -m venv .venv && .venv/bin/pip install -q --index-url file:///opt/pypi/simple --find-links /opt/wheels torch numpy pytest \
    && node scripts/python.mjs torch numpy pytest >/dev/null 2>&1 && exit 0
  rm -rf .venv
fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy python3-pytest >/dev/null
node scripts/python.mjs torch numpy pytest >/dev/null
