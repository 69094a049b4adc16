"""The optimizers by name: the one list that `make_optimizer`, help texts and errors read.

Kept free of imports so the command line can list the optimizers without loading any of them.
"""

from __future__ import annotations

OPTIMIZERS: dict[str, str] = {
    "labeled": "promptcast.optimizers.labeled:LabeledFewShot",
    "bootstrap": "promptcast.optimizers.bootstrap:BootstrapFewShot",
    "random_search": "promptcast.optimizers.random_search:RandomSearch",
    "mipro": "promptcast.optimizers.mipro:MIPROv2",
    "copro": "promptcast.optimizers.copro:COPRO",
    "gepa": "promptcast.optimizers.gepa:GEPA",
    "knn": "promptcast.optimizers.knn:KNNFewShot",
    "simba": "promptcast.optimizers.simba:SIMBA",
    "ensemble": "promptcast.optimizers.ensemble:Ensemble",
    "finetune": "promptcast.optimizers.finetune:BootstrapFinetune",
    "better_together": "promptcast.optimizers.better_together:BetterTogether",
}
"""Optimizer name -> `module:Class`, in the order help texts list them."""
