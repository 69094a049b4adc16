# Copied from the promptcast workspace's shared/lm/serve.py (the local-model kit this project is
# developed against) so that a checkout alone can set up and start the model; behaviour unchanged.
"""llama-cpp-python's OpenAI-compatible server, made deterministic.

The stock server reuses the KV cache of the previous request's prompt prefix, which changes the
arithmetic, so the same request can answer differently depending on what came before. Here each
request starts from an empty KV cache: the same request (temperature 0, or a fixed seed) always
gives the same output, across restarts too. Cost: the whole prompt is evaluated every time.
Pass --reuse-prefix to keep the stock (faster, order-dependent) behaviour.
"""

import sys

import llama_cpp
from llama_cpp.server.__main__ import main

if "--reuse-prefix" in sys.argv:
    sys.argv.remove("--reuse-prefix")
else:
    _generate = llama_cpp.Llama.generate

    def _generate_from_scratch(self, tokens, *args, **kwargs):
        self.n_tokens = 0
        return _generate(self, tokens, *args, **kwargs)

    llama_cpp.Llama.generate = _generate_from_scratch

if __name__ == "__main__":
    main()
