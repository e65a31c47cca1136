"""Train a small causal transformer from scratch to emit the newlines of a wrapped corpus.

(Training loop: see below. Presets: :data:`PRESETS`, each a :class:`Preset` of a data config, a model
config and an optimisation config; add an entry to define a new one.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.corpus.store import CorpusConfig
from linebreak.model import ModelConfig


@dataclass(frozen=True)
class OptimConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-3
    beta1: float = 0.9
    beta2: float = 0.98
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_frac: float = field(default=0.1, metadata={"help": "cosine decay ends at lr * min_lr_frac"})
    grad_clip: float = 1.0
    eval_every: int = field(default=200, metadata={"help": "steps between evaluations (and checkpoints)"})
    eval_docs: int = field(default=128, metadata={"help": "validation documents per evaluation"})
    seed: int = field(default=0, metadata={"help": "seed of the batch order"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    optim: OptimConfig


@dataclass(frozen=True)
class Preset:
    data: CorpusConfig
    train: TrainConfig


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        CorpusConfig(widths="12:24", seq_len=64, n_train=400, n_val=32, vocab_size=40, max_word_len=6),
        TrainConfig(ModelConfig(n_layer=2, d_model=32, n_head=2, d_mlp=64, n_ctx=64),
                    OptimConfig(steps=150, batch_size=16, lr=5e-3, warmup_steps=10, eval_every=50,
                                eval_docs=32, threads=1)),
    ),
    "default": Preset(
        CorpusConfig(),
        TrainConfig(ModelConfig(), OptimConfig()),
    ),
}
