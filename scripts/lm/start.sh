#!/usr/bin/env bash
# Copied from the promptcast workspace's shared/lm/start.sh (the local-model kit this project is
# developed against) so that a checkout alone can set up and start the model; behaviour unchanged.
# Starts the local OpenAI-compatible LM server on 127.0.0.1 in the background (setting it up first
# if needed), waits until it answers, and prints its base URL. Stop it with stop.sh.
#   usage: start.sh [MODEL] [PORT] [extra server flags...]   (defaults: qwen0.5b 8765)
# The model alias served is MODEL itself: with litellm use model="openai/MODEL", api_base=URL, api_key="local".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${PROMPTCAST_LM_HOME:-$HOME/.cache/promptcast-lm}
model=${1:-qwen0.5b}; port=${2:-8765}; shift $(( $# > 2 ? 2 : $# ))
gguf=$("$here/setup.sh" "$model" | tail -1)
pidfile="$home/server-$port.pid"; log="$home/server-$port.log"
url="http://127.0.0.1:$port/v1"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$url"; exit 0; fi
setsid "$home/venv/bin/python" "$here/serve.py" --model "$gguf" --model_alias "$model" \
  --host 127.0.0.1 --port "$port" --n_ctx 4096 --n_threads "$(nproc)" --n_threads_batch "$(nproc)" --seed 0 "$@" \
  >"$log" 2>&1 < /dev/null &
echo $! > "$pidfile"
for _ in $(seq 1 120); do
  if curl -sf "$url/models" >/dev/null 2>&1; then echo "$url"; exit 0; fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "start.sh: server died; see $log" >&2; tail -20 "$log" >&2; exit 1; }
  sleep 0.5
done
echo "start.sh: server did not answer within 60 s; see $log" >&2; exit 1
