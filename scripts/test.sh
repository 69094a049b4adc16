#!/usr/bin/env bash
# The test command: install, start the local model, lint + type-check, run every test
# (including the `slow` ones against the real local model). Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# The HTML report is tested in a real headless browser (tests/test_report_html.py fails without
# one): Chromium from the OS packages, ~70 s to install on a fresh Debian machine.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/dev/null || echo "warning: could not install chromium; the report browser tests will fail"
  else
    echo "warning: chromium is missing (apt-get install -y chromium); the report browser tests will fail"
  fi
fi
PROMPTCAST_TEST_LM_URL=$(bash scripts/lm/start.sh qwen0.5b 8765 | tail -1)
export PROMPTCAST_TEST_LM_URL
echo "local model: $PROMPTCAST_TEST_LM_URL"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
