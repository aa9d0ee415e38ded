#!/usr/bin/env bash
# Provides a Python with torch, numpy and pytest for the bridge's tests, plus transformers and safetensors for the hf
# target's tests where the machine has them, on any machine of this kind: an existing one, else a venv from the
# machine's local wheel index (never PyPI, which is unreachable), else Debian's packages (no transformers there: the
# hf target tests then skip with a message), plus peft for the LoRA tests (they skip visibly without it).
set -uo pipefail
cd "$(dirname "$0")/.."
if node scripts/python.mjs torch numpy pytest transformers safetensors peft ruff >/dev/null 2>&1; then exit 0; fi
if [ -d /opt/pypi/simple ] || [ -d /opt/wheels ]; then
  pip=(.venv/bin/pip install -q --index-url file:///opt/pypi/simple --find-links /opt/wheels)
  if [ -x .venv/bin/python ] || python3 -m venv .venv; then
    "${pip[@]}" torch numpy pytest transformers==5.17.0 safetensors tokenizers || "${pip[@]}" torch numpy pytest
    "${pip[@]}" peft || echo "setup-python: peft did not install; the LoRA tests that need it will skip" >&2
    "${pip[@]}" ruff || echo "setup-python: ruff did not install; npm run lint will fail in CI" >&2
    node scripts/python.mjs torch numpy pytest >/dev/null 2>&1 && exit 0
  fi
  rm -rf .venv
fi
if node scripts/python.mjs torch numpy pytest >/dev/null 2>&1; then exit 0; fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy python3-pytest >/dev/null
node scripts/python.mjs torch numpy pytest >/dev/null
