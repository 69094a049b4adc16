#!/usr/bin/env bash
# The history example end to end: start the local model, score the zero-shot source step on the
# test conversations, compile (bootstrap + build), score the built module on the same rows.
#     usage: examples/followup/run.sh [N_TEST_ROWS]   (default 40, all of them)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-40}
bash "$root/scripts/setup.sh"
url=$(bash "$root/scripts/lm/start.sh" qwen0.5b 8765 | tail -1)
pc="$root/.venv/bin/promptcast"
cd "$here"
head -n "$n" data/test.jsonl > .test-rows.jsonl
rm -rf promptcast.lock.json  # start from nothing (the committed lock is this run's output)

echo "== zero-shot source step on $n test conversations"
"$pc" eval --data .test-rows.jsonl --api-base "$url" --json > .zero-shot.json

echo "== compile: bootstrap on data/train.jsonl (dev: data/dev.jsonl), then build into ./build"
time "$pc" compile --api-base "$url"

echo "== built (optimized) module on the same $n conversations"
"$pc" eval --data .test-rows.jsonl --built build --api-base "$url" --json > .optimized.json

"$root/.venv/bin/python" - <<'PY'
import json
zero = json.load(open(".zero-shot.json"))
opt = json.load(open(".optimized.json"))
print(f"zero-shot accuracy: {zero['score']:.3f}  ({zero['n']} conversations, {zero['lm_calls']} LM calls)")
print(f"optimized accuracy: {opt['score']:.3f}  ({opt['n']} conversations, {opt['lm_calls']} LM calls)")
PY
