#!/usr/bin/env bash
# Issue 18, items 4 and 5 on the real local model (qwen0.5b at $URL, llama-cpp-python's server as
# scripts/lm/start.sh runs it). Small on purpose (a shared 2-core machine): a handful of rows.
#   usage: bash bench/tools_and_schemas.sh [OUT_DIR]   (default /tmp/tools_and_schemas)
# 1. the agent example with protocol="auto": optimize probes `tools` once and, as the server
#    answers without `tool_calls`, locks the text protocol (note + lock);
# 2. the agent example scored (eval, zero-shot) in each protocol on the same dev rows;
# 3. the TREC example as a json step: zero-shot with the plain JSON mode (no probe: eval of an
#    unoptimized step) vs the probed `json_object` + schema (optimize's zero-shot "before" score).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/tools_and_schemas}
URL=${URL:-http://127.0.0.1:8765/v1}
pc="$here/.venv/bin/promptcast"
rm -rf "$out" && mkdir -p "$out"
lm=(--model openai/qwen0.5b --api-base "$URL")

agent() {  # agent <dir> <package> <protocol>: examples/agent as <package>, with that protocol
  cp -r "$here/examples/agent" "$1"
  rm -rf "$1/build" "$1/.promptcast" "$1/promptcast.lock.json"
  mv "$1/planets" "$1/$2"
  sed -i "s/max_iters=5)/max_iters=5, protocol=\"$3\")/" "$1/$2/solve.py"
  sed -i "s/planets/$2/g" "$1/pyproject.toml"
  head -2 "$here/examples/agent/data/train.jsonl" > "$1/data/train.jsonl"
  head -5 "$here/examples/agent/data/dev.jsonl" > "$1/data/dev.jsonl"
}

# 1. protocol="auto": the probe, the lock.
agent "$out/auto" planets_auto auto
(cd "$out/auto" && "$pc" optimize "${lm[@]}" --threads 1 \
  --optimizer-arg max_bootstrapped_demos=1) > "$out/auto.txt" 2>&1
grep -E "protocol|tools:|dev " "$out/auto.txt" || true

# 2. each protocol zero-shot on the same 5 dev rows.
for protocol in text tools; do
  agent "$out/$protocol" "planets_$protocol" "$protocol"
  (cd "$out/$protocol" && "$pc" eval "planets_$protocol.solve:answer" --data data/dev.jsonl \
    --label answer --metric "planets_$protocol.metrics:close_enough" "${lm[@]}" --threads 1 \
    --json) > "$out/eval_$protocol.json" 2> "$out/eval_$protocol.err" || true
  echo "agent, protocol=$protocol: $(head -c 400 "$out/eval_$protocol.json")"
done

# 3. TREC as a json step, 20 dev rows: plain JSON mode vs the probed json_object + schema.
cp -r "$here/examples/trec" "$out/trec"
rm -rf "$out/trec/build" "$out/trec/.promptcast" "$out/trec/promptcast.lock.json"
mv "$out/trec/triage" "$out/trec/triage_json"
sed -i 's/^@pc.predict$/@pc.predict(adapter="json")/' "$out/trec/triage_json/classify.py"
sed -i 's/triage/triage_json/g; /optimizer_args/,$d' "$out/trec/pyproject.toml"
head -20 "$here/examples/trec/data/dev.jsonl" > "$out/trec/data/dev.jsonl"
head -4 "$here/examples/trec/data/train.jsonl" > "$out/trec/data/train.jsonl"
(cd "$out/trec" && "$pc" eval triage_json.classify:question_type --data data/dev.jsonl \
  --label coarse --metric exact_match "${lm[@]}" --threads 1 --json) \
  > "$out/trec_plain.json" 2> "$out/trec_plain.err" || true
echo "trec json, plain json_object: $(head -c 400 "$out/trec_plain.json")"
(cd "$out/trec" && "$pc" optimize "${lm[@]}" --threads 1 --optimizer labeled \
  --optimizer-arg k=4) > "$out/trec_schema.txt" 2>&1
grep -E "response_format|dev exact_match" "$out/trec_schema.txt" || true
