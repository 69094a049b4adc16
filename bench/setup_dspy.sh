#!/usr/bin/env bash
# Creates bench/.venv-dspy with dspy==3.4.1, apart from the project's own venv.
#
# Why a separate venv: the benchmarks compare promptcast against DSPy, and DSPy must never
# leak into the project's environment (promptcast's own import-cost and dependency figures
# would be wrong, and the production runtime must stay stdlib-only).
# Idempotent: a second run only checks the installed version (a few seconds).
#   usage: bench/setup_dspy.sh            prints the venv's python path on success
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-dspy"
want=3.4.1
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("dspy"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "setup_dspy.sh: installing dspy==$want into $venv" >&2
  "$venv/bin/python" -m pip -q --disable-pip-version-check install "dspy==$want"
fi
# MIPROv2 needs optuna (DSPy's `optuna` extra); the footprint section counts dspy's own
# requirements only, so this does not inflate DSPy's install size.
if ! "$venv/bin/python" -c 'import optuna' 2>/dev/null; then
  "$venv/bin/python" -m pip -q --disable-pip-version-check install "dspy[optuna]==$want"
fi
echo "$venv/bin/python"
