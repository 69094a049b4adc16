#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install promptcast, set up and start the local
# model (qwen0.5b via llama.cpp, ~6 minutes to compile the first time), compile the TREC
# classifier (optimize + build), then score zero-shot source vs the built module on held-back
# test questions.    usage: examples/trec/run.sh [N_TEST_ROWS]   (default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-100}
bash "$root/scripts/setup.sh"
url=$(bash "$root/scripts/lm/start.sh" qwen0.5b 8765 | tail -1)
pc="$root/.venv/bin/promptcast"
cd "$here"
head -n "$n" data/test.jsonl > .test-rows.jsonl
rm -f promptcast.lock.json  # start from nothing (the committed lock is this run's output)

echo "== zero-shot source program on $n test questions"
"$pc" eval --data .test-rows.jsonl --api-base "$url" --json > .zero-shot.json

echo "== compile: optimize on data/train.jsonl (dev: data/dev.jsonl), then build into ./build"
time "$pc" compile --api-base "$url"

echo "== built (optimized) module on the same $n questions"
"$pc" eval --data .test-rows.jsonl --built build --api-base "$url" --json > .optimized.json

"$root/.venv/bin/python" - <<'PY'
import json
zero = json.load(open(".zero-shot.json"))
opt = json.load(open(".optimized.json"))
print(f"zero-shot accuracy: {zero['score']:.2f}  ({zero['n']} questions, {zero['lm_calls']} LM calls)")
print(f"optimized accuracy: {opt['score']:.2f}  ({opt['n']} questions, {opt['lm_calls']} LM calls)")
print("generated module: examples/trec/build/triage/classify.py; lock: examples/trec/promptcast.lock.json")
PY
