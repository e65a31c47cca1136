"""Settings of ``linebreak capture``: which split, how many documents and token rows, which sites and layers.

Sites are the short names of :mod:`linebreak.hooks.points` (``resid_pre`` is ``blocks.{L}.hook_resid_pre``,
``ln1`` is ``blocks.{L}.ln1.hook_normalized``, ...). :func:`parse` checks a config against a model's layer
count and returns the sites and layers as lists, with a one-line :class:`~linebreak.io.UserError` otherwise.
List settings (``sites``, ``layers``) are tuples; an empty ``layers`` means every layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.config import require, tuples_from_text
from linebreak.io import UserError

SITES = ("resid_pre", "resid_mid", "resid_post", "ln1", "q", "k", "pattern")


@dataclass(frozen=True)
class CaptureConfig:
    split: str = field(default="validation", metadata={"help": "corpus split to run"})
    max_docs: int = field(default=256, metadata={"help": "documents to run (the first ones of the split)"})
    max_tokens: int = field(default=32768, metadata={"help": "token rows kept (a seeded sample if more)"})
    sites: tuple[str, ...] = field(default=SITES, metadata={"help": f"comma list of {','.join(SITES)}"})
    layers: tuple[int, ...] = field(default=(), metadata={"help": "comma list of layer indices; empty: all"})
    dtype: str = field(default="float32", metadata={"help": "float32 | float16"})
    pattern_docs: int = field(default=4, metadata={"help": "documents whose attention patterns are kept"})
    batch_size: int = 16
    seed: int = field(default=0, metadata={"help": "seed of the token sample"})

    def __post_init__(self):
        tuples_from_text(self)
        bad = [s for s in self.sites if s not in SITES]
        require(bool(self.sites) and not bad, f"unknown site(s) {', '.join(bad) or '(none given)'}; choose from "
                f"{', '.join(SITES)}")
        require(self.dtype in ("float32", "float16"), f"dtype must be float32 or float16, got {self.dtype!r}")
        require(self.max_docs >= 1 and self.max_tokens >= 1 and self.batch_size >= 1 and self.pattern_docs >= 0,
                "max_docs, max_tokens and batch_size must be positive, pattern_docs >= 0")


def parse(cfg: CaptureConfig, n_layers: int) -> tuple[list[str], list[int]]:
    """``(sites, layers)`` of ``cfg`` for a model of ``n_layers`` layers (layers sorted, unique)."""
    layers = sorted(set(cfg.layers)) if cfg.layers else list(range(n_layers))
    for L in layers:
        if not 0 <= L < n_layers:
            raise UserError(f"layer {L} does not exist; the model has layers 0..{n_layers - 1}")
    return list(cfg.sites), layers
