"""Settings of a training run: :class:`OptimConfig` (the optimiser and the loop) and :class:`TrainConfig`.

A training run is a model config (:class:`linebreak.train.model.ModelConfig`) plus an optimisation config;
the named presets live in :data:`linebreak.presets.TRAIN`. :func:`check_settings` refuses settings that
cannot run, each in one line (:class:`linebreak.io.UserError`), before anything is written. No torch import
at module level, so the CLI stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from linebreak.io import UserError
from linebreak.train.model import ModelConfig


@dataclass(frozen=True)
class OptimConfig:
    steps: int = 1500
    batch_size: int = 16
    lr: float = 2e-3
    beta1: float = 0.9
    beta2: float = 0.98
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_frac: float = field(default=0.1, metadata={"help": "cosine decay ends at lr * min_lr_frac"})
    grad_clip: float = 1.0
    eval_every: int = field(default=250, metadata={"help": "steps between evaluations and checkpoints"})
    eval_docs: int = field(default=128, metadata={"help": "validation documents per evaluation"})
    seed: int = field(default=0, metadata={"help": "seed of the batch order (and of resid_noise)"})
    resid_noise: float = field(default=0.0, metadata={
        "help": "while training, Gaussian noise of this std times each token's RMS added to every block's input"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    attn_implementation: str = field(default="sdpa", metadata={
        "help": "attention kernel while training: sdpa (faster) | eager (always, for gemma2's soft cap); the "
                "returned model is eager"})
    device: str = field(default="cpu", metadata={
        "help": "torch device to train on: cpu | cuda | cuda:N (the saved model and its metrics are on the CPU)"})
    # Why: in a table corpus (linebreak.corpus.tables) the pads are a few percent of the tokens, and plain
    # next-token loss sits on a long plateau for them (the words' unigram loss dominates the gradient): a weight
    # > 1 on the loss of the tokens whose target is a pad makes the column match worth learning early. The loss
    # is mean(w_i * CE_i), so other tokens keep their scale; 1.0 is the plain loss, exactly.
    pad_loss_weight: float = field(default=1.0, metadata={
        "help": "weight of the loss at tokens whose target is a pad (table corpora); 1 = plain next-token loss"})


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    optim: OptimConfig


def check_settings(cfg: TrainConfig, seq_len: int, fix: str = "") -> None:
    """Refuse settings that cannot train on documents of ``seq_len`` tokens (one line each); ``fix`` is
    appended to the n_ctx message (the CLI names the generate command that makes a fitting corpus)."""
    o = cfg.optim
    if seq_len > cfg.model.n_ctx:
        raise UserError(f"n_ctx {cfg.model.n_ctx} is shorter than the documents ({seq_len} tokens): "
                        f"train with --n-ctx {seq_len}{fix}")
    for name in ("steps", "batch_size", "eval_every", "eval_docs", "threads"):
        if getattr(o, name) < 1:
            raise UserError(f"{name} must be positive, got {getattr(o, name)}")
    if o.attn_implementation not in ("sdpa", "eager"):
        raise UserError(f"attn_implementation must be sdpa or eager, got {o.attn_implementation!r}")
    if o.lr <= 0 or not 0 <= o.min_lr_frac <= 1:
        raise UserError("lr must be positive and min_lr_frac within [0, 1]")
    if not 0 < o.pad_loss_weight < math.inf:
        raise UserError(f"pad_loss_weight must be a finite number > 0, got {o.pad_loss_weight}")
    if not 0 <= o.resid_noise < math.inf:
        raise UserError(f"resid_noise must be a finite number >= 0, got {o.resid_noise}")
    check_device(o.device)


def check_device(device: str) -> None:
    """Refuse a device string torch cannot use here (cpu, cuda or cuda:N only)."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise UserError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA device here")
