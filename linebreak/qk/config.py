"""The qk stage's settings: which documents and layers to read, how many tokens a per-value mean needs, what to
detail, and how much memory the stage may hold.

:class:`QKConfig` is what ``linebreak qk`` exposes as flags and what the presets (:data:`linebreak.presets.QK`)
name. It is light on purpose (no torch, no model code), so the command line can list its fields quickly.
``device`` and ``dtype`` (:class:`~linebreak.hooks.device.OnDevice`) say where the model runs and in what
precision; the statistics are float32/float64 on the CPU whatever they are.

Memory (:func:`linebreak.qk.collect.planned_bytes`): the stage keeps float64 per-value sums of what attention
reads in every analysed layer, each query token's attention to its newline, and, for the probe route, up to
``probe_rows`` token rows per layer (a seeded sample chosen before the forward pass). ``layers`` (empty: every
layer) limits all of it to the layers named; a run whose plan exceeds ``max_gb`` is refused before the model
runs, in one line that says what to cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.config import require, tuples_from_text
from linebreak.hooks.device import OnDevice
from linebreak.probe.config import VALUE_PROBE_ITERS, VALUE_PROBE_ROWS

# what the keys of the twist test are: linebreak.qk.analysis (newline), linebreak.qk.columns (cell_start, pad)
KEY_CLASSES = ("newline", "cell_start", "pad")


@dataclass(frozen=True)
class QKConfig(OnDevice):
    split: str = field(default="validation", metadata={"help": "corpus split to analyse"})
    n_docs: int = field(default=128, metadata={"help": "documents to run through the model"})
    batch_size: int = 16
    keys: str = field(default="newline", metadata={"help": "key class: newline (each query's previous newline, "
                                                           "keyed by --key-label) | cell_start | pad (a table's "
                                                           "earlier-row cell-start words or pads, keyed by "
                                                           "the column start they mark)"})
    key_label: str = field(default="width", metadata={"help": "key-side value at newlines: width | line_len"})
    min_per_value: int = field(default=8, metadata={"help": "tokens needed for a count/width mean"})
    min_values: int = field(default=5, metadata={"help": "distinct widths (and counts) needed at all"})
    top: int = field(default=3, metadata={"help": "top heads to detail (matrices, response curves, PCA)"})
    max_remaining: int = field(default=40, metadata={"help": "characters remaining kept in curves and PCA"})
    seed: int = field(default=0, metadata={"help": "seed of the random controls and of the probe rows' sample"})
    probes: bool = field(default=True, metadata={"help": "also judge every head with logistic value probes "
                                                          "as the two sides (the paper's route)"})
    layers: tuple[int, ...] = field(default=(), metadata={"help": "comma list of layer indices whose heads are "
                                                                   "judged; empty: all"})
    # 32768 = the default study's 128 documents x 256 tokens, so every row of that run is kept (it uses 27161)
    probe_rows: int = field(default=32768, metadata={"help": "token rows (queries and newlines) the probe route "
                                                              "fits on per layer (a seeded sample if more)"})
    # The route's logistic fits: the probe stage's recipe (linebreak.probe.config.VALUE_PROBE_ROWS / _ITERS, with
    # the reason). Until the analysis benchmark (issue 18) they were 20000 rows and 300 iterations, three quarters of
    # the stage's time on a d_model-768 model.
    probe_fit_rows: int = field(default=VALUE_PROBE_ROWS, metadata={"help": "training rows of each logistic value "
                                                                             "probe"})
    probe_iters: int = field(default=VALUE_PROBE_ITERS, metadata={"help": "L-BFGS iterations of each logistic value "
                                                                           "probe"})
    key_shift_pairs: int = field(default=256, metadata={"help": "table keys: pairs per shift of the key-shift test "
                                                                "(linebreak.qk.key_shift); 0 skips it"})
    key_track_sites: int = field(default=32, metadata={"help": "table keys: documents whose matching key is moved "
                                                               "over its row's whole pad range, read beside the "
                                                               "random-init control (linebreak.qk.key_track); 0 "
                                                               "skips it"})
    max_gb: float = field(default=8.0, metadata={"help": "refuse a run whose sums, attention and probe rows would "
                                                          "hold more than this (GB)"})

    def __post_init__(self):
        tuples_from_text(self)  # "0,3,5" from the command line, sweep configs and JSON lists
        super().__post_init__()
        require(self.keys in KEY_CLASSES, f"keys must be one of {', '.join(KEY_CLASSES)}, not {self.keys!r}")
        require(all(L >= 0 for L in self.layers), f"layers must be >= 0, got {min(self.layers, default=0)}")
        require(self.probe_rows >= 1, f"probe_rows must be positive, got {self.probe_rows}")
        require(self.probe_fit_rows >= 1 and self.probe_iters >= 1,
                f"probe_fit_rows and probe_iters must be positive, got {self.probe_fit_rows}, {self.probe_iters}")
        require(self.key_shift_pairs >= 0, f"key_shift_pairs must be >= 0, got {self.key_shift_pairs}")
        require(self.key_track_sites >= 0, f"key_track_sites must be >= 0, got {self.key_track_sites}")
        require(self.max_gb > 0, f"max_gb must be positive, got {self.max_gb}")
