"""The qk stage's settings: which documents to read, how many tokens a per-value mean needs, what to detail.

:class:`QKConfig` is what ``linebreak qk`` exposes as flags and what the presets (:data:`linebreak.presets.QK`)
name. It is light on purpose (no torch, no model code), so the command line can list its fields quickly.
``device`` and ``dtype`` (:class:`~linebreak.hooks.device.OnDevice`) say where the model runs and in what
precision; the statistics are float32/float64 on the CPU whatever they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.hooks.device import OnDevice


@dataclass(frozen=True)
class QKConfig(OnDevice):
    split: str = field(default="validation", metadata={"help": "corpus split to analyse"})
    n_docs: int = field(default=128, metadata={"help": "documents to run through the model"})
    batch_size: int = 16
    key_label: str = field(default="width", metadata={"help": "key-side value at newlines: width | line_len"})
    min_per_value: int = field(default=8, metadata={"help": "tokens needed for a count/width mean"})
    min_values: int = field(default=5, metadata={"help": "distinct widths (and counts) needed at all"})
    top: int = field(default=3, metadata={"help": "top heads to detail (matrices, response curves, PCA)"})
    max_remaining: int = field(default=40, metadata={"help": "characters remaining kept in curves and PCA"})
    seed: int = field(default=0, metadata={"help": "seed of the random controls"})
    probes: bool = field(default=True, metadata={"help": "also judge every head with logistic value probes "
                                                          "as the two sides (the paper's route)"})
