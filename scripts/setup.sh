#!/usr/bin/env bash
# Creates .venv (if missing) and installs promptcast with its dev tools into it, editable.
# Idempotent; used by scripts/test.sh and examples/trec/run.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
if [ ! -x "$root/.venv/bin/python" ]; then "$py" -m venv "$root/.venv"; fi
# [train]: the local trainer's torch/transformers/peft/gguf (issue 23), for its slow test; ~55 s
# on top of [dev] here (torch's CPU wheel is on the machine's disk).
"$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev,train]" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$root/.venv/bin/python" -c "import promptcast, promptcast_runtime" 
