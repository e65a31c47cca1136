"""Settings of ``linebreak capture``: which split, how many documents and token rows, which sites and layers.

Sites are the short names of :mod:`linebreak.hooks.points` (``resid_pre`` is ``blocks.{L}.hook_resid_pre``,
``ln1`` is ``blocks.{L}.ln1.hook_normalized``, ...). :func:`parse` checks a config against a model's layer
count and returns the sites and layers as lists, with a one-line :class:`~linebreak.io.UserError` otherwise.
List settings (``sites``, ``layers``) are comma strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.io import UserError

SITES = ("resid_pre", "resid_mid", "resid_post", "ln1", "q", "k", "pattern")


@dataclass(frozen=True)
class CaptureConfig:
    split: str = field(default="validation", metadata={"help": "corpus split to run"})
    max_docs: int = field(default=256, metadata={"help": "documents to run (the first ones of the split)"})
    max_tokens: int = field(default=32768, metadata={"help": "token rows kept (a seeded sample if more)"})
    sites: str = field(default="resid_pre,resid_mid,resid_post,ln1,q,k,pattern",
                       metadata={"help": f"comma list of {','.join(SITES)}"})
    layers: str = field(default="all", metadata={"help": "'all' or a comma list of layer indices"})
    dtype: str = field(default="float32", metadata={"help": "float32 | float16"})
    pattern_docs: int = field(default=4, metadata={"help": "documents whose attention patterns are kept"})
    batch_size: int = 16
    seed: int = field(default=0, metadata={"help": "seed of the token sample"})


def parse(cfg: CaptureConfig, n_layers: int) -> tuple[list[str], list[int]]:
    """``(sites, layers)`` of ``cfg`` for a model of ``n_layers`` layers (layers sorted, unique)."""
    sites = [s.strip() for s in cfg.sites.split(",") if s.strip()]
    bad = [s for s in sites if s not in SITES]
    if bad or not sites:
        raise UserError(f"unknown site(s) {bad or cfg.sites!r}; choose from {', '.join(SITES)}")
    if cfg.layers == "all":
        layers = list(range(n_layers))
    else:
        try:
            layers = sorted({int(x) for x in cfg.layers.split(",")})
        except ValueError:
            raise UserError(f"layers must be 'all' or a comma list of integers, got {cfg.layers!r}") from None
        for L in layers:
            if not 0 <= L < n_layers:
                raise UserError(f"layer {L} does not exist; the model has layers 0..{n_layers - 1}")
    if cfg.dtype not in ("float32", "float16"):
        raise UserError(f"dtype must be float32 or float16, got {cfg.dtype!r}")
    if cfg.max_docs < 1 or cfg.max_tokens < 1 or cfg.batch_size < 1 or cfg.pattern_docs < 0:
        raise UserError("max_docs, max_tokens and batch_size must be positive, pattern_docs >= 0")
    return sites, layers
