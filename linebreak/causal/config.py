"""Settings of ``linebreak causal`` (presets in :data:`linebreak.presets.CAUSAL`).

List settings: ``patch_deltas`` is a tuple of integer count shifts. ``device`` and ``dtype``
(:class:`~linebreak.hooks.device.OnDevice`): where the model runs and in what precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.config import require, tuples_from_text
from linebreak.hooks.device import OnDevice
from linebreak.qk.config import KEY_CLASSES


@dataclass(frozen=True)
class CausalConfig(OnDevice):
    split: str = field(default="validation", metadata={"help": "corpus split to evaluate on"})
    keys: str = field(default="newline", metadata={"help": "the qk key class: newline (the checks below) | "
                                                           "cell_start | pad (a table head's key ablations, "
                                                           "linebreak.causal.columns)"})
    n_docs: int = field(default=64, metadata={"help": "documents per evaluation"})
    batch_size: int = 16
    top: int = field(default=3, metadata={"help": "top heads ablated together"})
    subspace_dim: int = field(default=6, metadata={"help": "dimensions of the count subspace ablated"})
    n_random: int = field(default=3, metadata={"help": "random subspaces of the same dimension (control)"})
    patch_deltas: tuple[int, ...] = field(default=(-8, -4, -2, 0, 2, 4, 8), metadata={
        "help": "count shifts for patching (write --patch-deltas=-8,-4,0,4,8)"})
    patch_passes: int = field(default=4, metadata={"help": "patching passes (one patched token per document each)"})
    patch_layer: int = field(default=-1, metadata={
        "help": "layer whose resid_pre is patched; -1: the last layer, where the break decision is read out"})
    min_per_value: int = field(default=8, metadata={"help": "tokens needed for a count mean"})
    n_strings: int = field(default=12, metadata={"help": "random word strings in the insertion sweep"})
    n_lines: int = field(default=48, metadata={"help": "lines the insertion sweep edits"})
    seed: int = 0

    def __post_init__(self):
        tuples_from_text(self)
        super().__post_init__()
        require(bool(self.patch_deltas), "patch_deltas: give at least one count shift")
        require(self.keys in KEY_CLASSES, f"keys must be one of {', '.join(KEY_CLASSES)}, not {self.keys!r}")
