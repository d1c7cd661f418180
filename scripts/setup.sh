#!/usr/bin/env bash
# Installs everything the project needs into .venv (idempotent; fast when nothing changed).
#   scripts/setup.sh          the app, the CLI and the local LLM
#   scripts/setup.sh --dev    plus the test tools and Debian's Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
extras="llm"
[ "$dev" = 1 ] && extras="llm,dev"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed.
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras/,/-}"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages (first time: about 15 minutes, llama.cpp is compiled)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # torch first, pinned: the CPU wheel lies on these machines' disk (an unpinned torch pulls CUDA builds).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  # A native llama.cpp build crashes with SIGILL on these VMs (they advertise AMX but cannot run it).
  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".[${extras}]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ "$dev" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Debian's Chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# Build the embedding model folder and join the local LLM's weights once (both cached, hash-checked).
.venv/bin/ptce doctor --prepare
