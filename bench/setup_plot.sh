#!/usr/bin/env bash
# Creates bench/.venv-plot with matplotlib, for the benchmark plots only.
#
# Why a third venv: matplotlib must stay out of the project's venv (the runtime is stdlib-only,
# the compiler's dependency list is what users install) and out of bench/.venv-dspy (it would
# inflate DSPy's measured install footprint). Idempotent; prints the venv's python path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-plot"
py=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  echo "setup_plot.sh: installing matplotlib into $venv" >&2
  "$venv/bin/python" -m pip -q --disable-pip-version-check install "matplotlib>=3.8,<4"
fi
echo "$venv/bin/python"
