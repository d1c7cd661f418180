#!/usr/bin/env bash
# Time from `make run` on a fresh checkout to the first answer on screen (issue 16, item 1).
#
#   bash benchmarks/first_run.sh [QUESTION]
#
# Clones this repository (its committed HEAD) into a temporary folder, runs what `make run` runs there
# (scripts/setup.sh: a new .venv with the extractive answer's packages, no llama.cpp; then `ptce app`)
# with an empty model cache and index, and asks one question:
#   - in headless Chromium when DRIVER_PYTHON (default: this checkout's .venv/bin/python, which `make test`
#     fills) has Playwright
#     and /usr/bin/chromium exists: the time runs until the answer's first source card is visible;
#   - else through the CLI (`ptce ask`), once the app's page answers.
# pip's own cache is kept (a fresh machine would download the same wheels once). Prints each step's time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
question=${1:-"Quels sont les huit leviers identifiés par l'étude ?"}
driver=${DRIVER_PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d /tmp/ptce-first-run.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
app_pid=""
cleanup() { if [ -n "$app_pid" ]; then kill -- -"$app_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

echo "load before: $(uptime)"
git clone --quiet "$repo" "$work/ptce"
cd "$work/ptce"
export PTCE_CACHE_DIR="$work/cache" PTCE_INDEX_DIR="$work/index" PTCE_AUDIT_DB="$work/audit.sqlite3"
start=$(date +%s.%N)

bash scripts/setup.sh >"$work/setup.log" 2>&1
setup_done=$(date +%s.%N)
echo "setup done after $(python3 -c "print(round($setup_done - $start))") s"

# `make run`'s second step, in its own process group so that the trap stops all of it.
setsid .venv/bin/ptce app --port "$port" >"$work/app.log" 2>&1 &
app_pid=$!
until curl -fs "http://127.0.0.1:$port/_stcore/health" >/dev/null; do
  kill -0 "$app_pid" 2>/dev/null || { cat "$work/app.log"; exit 1; }
  sleep 0.5
done
server_up=$(date +%s.%N)

if "$driver" -c 'import playwright' 2>/dev/null && [ -x /usr/bin/chromium ]; then
  how="headless Chromium"
  "$driver" - "http://127.0.0.1:$port" "$question" <<'EOF'
import sys
from playwright.sync_api import sync_playwright

url, question = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(locale="fr-FR")
    page.goto(url)
    box = page.get_by_placeholder("Posez une question sur l'étude…")
    box.wait_for(timeout=900_000)
    box.fill(question)
    box.press("Enter")
    page.locator("#t1-source-1").wait_for(timeout=900_000)  # waits for the models and the index too
    browser.close()
EOF
else
  how="ptce ingest, then ptce ask"  # the app would build the index on the first page; the CLI asks for it
  .venv/bin/ptce ingest >"$work/ingest.log" 2>&1
  .venv/bin/ptce ask "$question" >"$work/answer.txt"
fi
answered=$(date +%s.%N)

python3 - "$start" "$setup_done" "$server_up" "$answered" "$how" <<'EOF'
import sys

start, setup, server, answer = (float(x) for x in sys.argv[1:5])
print(f"setup (scripts/setup.sh, fresh .venv): {setup - start:.0f} s")
print(f"ptce app until the server answers:     {server - setup:.0f} s")
print(f"first question until its answer ({sys.argv[5]}): {answer - server:.0f} s")
print(f"make run -> first answer: {answer - start:.0f} s ({(answer - start) / 60:.1f} min)")
EOF
echo "load after: $(uptime)"
echo "llama_cpp installed: $(.venv/bin/python -c 'import importlib.util; print(importlib.util.find_spec("llama_cpp") is not None)')"
rm -rf "$work"
