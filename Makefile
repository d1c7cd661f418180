# The README's commands: `make run` (extractive answers, no compiler), `make llm` (the local model of the
# written mode: llama.cpp compiled, weights joined) and `make test` (everything, the real model included).
.PHONY: run llm stack test lint eval bench

run:
	bash scripts/setup.sh
	.venv/bin/ptce app

llm:
	bash scripts/setup.sh --llm

# Chroma server + the local model served once (ptce serve-llm) + the app using both (see Procfile).
stack:
	bash scripts/setup.sh --llm
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/honcho start -f Procfile

test:
	bash scripts/setup.sh --dev
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check src tests app benchmarks
	.venv/bin/ruff format --check src tests app benchmarks
	.venv/bin/mypy src
	.venv/bin/lint-imports

eval:
	.venv/bin/ptce eval evals/dev.jsonl evals/heldout.jsonl evals/heldout-blind.jsonl evals/heldout-blind-2.jsonl evals/heldout-blind-3.jsonl evals/heldout-blind-4.jsonl evals/heldout-blind-5.jsonl evals/heldout-blind-6.jsonl --check
