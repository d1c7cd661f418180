#!/usr/bin/env bash
# Installs what the project needs into .venv (idempotent; fast when nothing changed).
#   scripts/setup.sh          the app and the CLI: the extractive answer (no compiler needed)
#   scripts/setup.sh --llm    plus the local LLM of the written mode (llama.cpp compiled, weights)
#   scripts/setup.sh --dev    plus the LLM, the test tools and Debian's Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
extras=""
case "${1:-}" in
  --llm) extras="llm" ;;
  --dev) dev=1; extras="llm,dev" ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--llm|--dev]" >&2; exit 2 ;;
esac

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi

# One stamp per part (base, llm, dev) of this dependency list: `make run` after `make test` or `make llm`
# finds its part installed and reinstalls nothing; a changed pyproject.toml invalidates them all.
hash=$(sha256sum pyproject.toml | cut -c1-16)
parts="base ${extras//,/ }"
missing=0
for part in $parts; do [ -f ".venv/.installed-$hash-$part" ] || missing=1; done
if [ "$missing" = 1 ]; then
  if [ -n "$extras" ]; then
    echo "==> installing Python packages with [$extras] (first time: about 15 minutes, llama.cpp is compiled)"
  else
    echo "==> installing Python packages (first time: a few minutes; the local LLM comes with: make llm)"
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # torch first, pinned: the CPU wheel lies on these machines' disk (an unpinned torch pulls CUDA builds).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  # A native llama.cpp build crashes with SIGILL on these VMs (they advertise AMX but cannot run it).
  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e ".${extras:+[$extras]}"
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
  for part in $parts; do touch ".venv/.installed-$hash-$part"; done
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
