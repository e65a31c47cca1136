"""Settings of a grokking run (:class:`GrokConfig`), presets in :data:`linebreak.presets.GROK`; no torch import.

* ``nanda``: Nanda et al. 2023 exactly: P = 113, 30 % of the pairs for training, d_model 128, 4 heads of 32,
  d_mlp 512, full-batch AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), 10-step warm-up, 40k steps.
* ``fast``: the same model family made to grok in about a minute on 2 CPU cores (see docs/modp.md for the
  measurements behind the choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GrokConfig:
    p: int = field(default=113, metadata={"help": "the prime modulus P"})
    frac_train: float = field(default=0.3, metadata={"help": "share of the P*P pairs used for training"})
    seed: int = field(default=0, metadata={"help": "seed of the data split and of the initialisation"})
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    warmup_steps: int = field(default=10, metadata={"help": "linear learning-rate warm-up (Nanda's code)"})
    steps: int = field(default=40_000, metadata={"help": "full-batch steps (= epochs)"})
    eval_every: int = field(default=100, metadata={"help": "steps between log records"})
    measure_every: int = field(default=500, metadata={"help": "steps between restricted/excluded losses"})
    checkpoint_every: int = field(default=5_000, metadata={"help": "steps between saved checkpoints"})

    def shape(self):
        from linebreak.grok.model import ModelShape

        return ModelShape(self.p, self.d_model, self.n_heads, self.d_head, self.d_mlp)
