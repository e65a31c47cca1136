"""Settings of ``linebreak capture``: which split, how many documents and token rows, which sites and layers,
where the model runs and how the activations are stored.

Sites are the short names of :mod:`linebreak.hooks.points` (``resid_pre`` is ``blocks.{L}.hook_resid_pre``,
``ln1`` is ``blocks.{L}.ln1.hook_out``, what attention reads, ...). The default sites are the residual stream,
what attention reads, queries, keys and patterns; ``ln1_normalized``, ``ln1_scale``, ``q_normed`` and
``k_normed`` can be asked for. A model without a given point drops it and says so in ``capture.json``: a
parallel NeoX block has no ``resid_mid``, a post-norm OLMo-2 block no ``ln1`` (its attention reads
``resid_pre``, which is then captured in its place), a model without q/k norms no ``q_normed``/``k_normed``.
:func:`parse` checks a config against a model's layer
count and returns the sites and layers as lists, with a one-line :class:`~linebreak.io.UserError` otherwise.
List settings (``sites``, ``layers``) are tuples; an empty ``layers`` means every layer.

Two dtypes, two names: ``dtype`` (with ``device``, from :class:`~linebreak.hooks.device.OnDevice`) is the
model's, as in every stage that runs a model; ``store_dtype`` is how the captured activations are kept and
saved (float32, or float16 to halve the folder). Before the split, ``dtype`` meant the storage dtype; a config
that still says ``dtype="float16"`` now runs the model in float16 and stores float32. ``max_gb`` bounds what
the capture holds in memory (and writes): the preallocated rows of every (site, layer) and the patterns; a
capture that would need more is refused up front, in one line that says what to cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.config import require, tuples_from_text
from linebreak.hooks.device import OnDevice
from linebreak.io import UserError

DEFAULT_SITES = ("resid_pre", "resid_mid", "resid_post", "ln1", "q", "k", "pattern")
SITES = DEFAULT_SITES + ("ln1_normalized", "ln1_scale", "q_normed", "k_normed")


@dataclass(frozen=True)
class CaptureConfig(OnDevice):
    split: str = field(default="validation", metadata={"help": "corpus split to run"})
    max_docs: int = field(default=256, metadata={"help": "documents to run (the first ones of the split)"})
    max_tokens: int = field(default=32768, metadata={"help": "token rows kept (a seeded sample if more)"})
    sites: tuple[str, ...] = field(default=DEFAULT_SITES, metadata={"help": f"comma list of {','.join(SITES)}"})
    layers: tuple[int, ...] = field(default=(), metadata={"help": "comma list of layer indices; empty: all"})
    store_dtype: str = field(default="float32", metadata={"help": "activations kept as: float32 | float16"})
    max_gb: float = field(default=8.0, metadata={"help": "refuse a capture that would hold more than this "
                                                          "(GB of activations)"})
    pattern_docs: int = field(default=4, metadata={"help": "documents whose attention patterns are kept"})
    batch_size: int = 16
    seed: int = field(default=0, metadata={"help": "seed of the token sample"})

    def __post_init__(self):
        tuples_from_text(self)
        bad = [s for s in self.sites if s not in SITES]
        require(bool(self.sites) and not bad, f"unknown site(s) {', '.join(bad) or '(none given)'}; choose from "
                f"{', '.join(SITES)}")
        super().__post_init__()
        require(self.store_dtype in ("float32", "float16"),
                f"store_dtype must be float32 or float16, got {self.store_dtype!r}")
        require(self.max_gb > 0, f"max_gb must be positive, got {self.max_gb}")
        require(self.max_docs >= 1 and self.max_tokens >= 1 and self.batch_size >= 1 and self.pattern_docs >= 0,
                "max_docs, max_tokens and batch_size must be positive, pattern_docs >= 0")


def parse(cfg: CaptureConfig, n_layers: int) -> tuple[list[str], list[int]]:
    """``(sites, layers)`` of ``cfg`` for a model of ``n_layers`` layers (layers sorted, unique)."""
    layers = sorted(set(cfg.layers)) if cfg.layers else list(range(n_layers))
    for L in layers:
        if not 0 <= L < n_layers:
            raise UserError(f"layer {L} does not exist; the model has layers 0..{n_layers - 1}")
    return list(cfg.sites), layers
