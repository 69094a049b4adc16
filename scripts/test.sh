#!/usr/bin/env bash
# The test command: install, start the local model, lint + type-check, run every test
# (including the `slow` ones against the real local model). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
PROMPTCAST_TEST_LM_URL=$(bash scripts/lm/start.sh qwen0.5b 8765 | tail -1)
export PROMPTCAST_TEST_LM_URL
echo "local model: $PROMPTCAST_TEST_LM_URL"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
