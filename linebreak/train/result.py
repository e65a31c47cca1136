"""What a training run returns: :class:`TrainMetrics` (the model stage's typed summary) and :class:`TrainResult`.

:class:`TrainMetrics` is the last evaluation record (newline metrics from :mod:`linebreak.train.metrics`
at the final step) plus the run's cost. It is what ``metrics.json`` holds and what the study records as the
model stage's summary; findings read its attributes. A metric that is not defined for a run (no position of
that kind among the validation documents) is ``None``, as in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from linebreak.results import OMIT, Result


@dataclass
class TrainMetrics(Result):
    FORMAT: ClassVar[str] = "linebreak-train/1"

    step: int  # the final step
    tokens: int  # training tokens seen
    train_loss: float | None  # mean next-token loss over the steps since the previous evaluation
    newline_ce: float  # newline cross-entropy (nats) of the model and of each reference
    newline_ce_posterior: float
    newline_ce_oracle: float
    newline_ce_constant: float
    info_captured: float  # (CE_const - CE_model) / (CE_const - CE_posterior)
    info_captured_oracle: float  # the same against the oracle told the width
    forced_break_acc: float | None  # the model breaks where no word fits
    forced_break_acc_bayes: float | None  # the posterior's accuracy there (first lines: the ceiling)
    forced_break_acc_knowable: float | None  # where the break follows from the earlier lines
    knowable_forced_positions: int
    no_break_acc: float | None  # the model does not break where every word fits
    newline_acc: float
    newline_acc_posterior: float
    newline_acc_by_width: dict[int, float]
    lm_loss: float  # mean next-token loss on the validation documents
    positions: int  # scored positions, then those where a break is forced / impossible
    forced_positions: int
    impossible_positions: int
    documents: int  # validation documents scored
    train_seconds: float
    tokens_per_second: float
    n_params: int
    threads: int
    # table corpora (linebreak.train.metrics.pad_metrics): the length of the next pad given that a pad comes,
    # on row 0 (the layout still a draw) and rows >= 1 (the layout shown); left out of the JSON for prose
    pad_acc_row0: float | None = field(default=None, metadata=OMIT)  # argmax over the pad tokens is right
    pad_acc_rows1: float | None = field(default=None, metadata=OMIT)
    pad_acc_vocab_row0: float | None = field(default=None, metadata=OMIT)  # argmax over the vocabulary
    pad_acc_vocab_rows1: float | None = field(default=None, metadata=OMIT)
    pad_ce_row0: float | None = field(default=None, metadata=OMIT)  # nats, renormalised over the pads
    pad_ce_rows1: float | None = field(default=None, metadata=OMIT)
    pad_ce_bayes_row0: float | None = field(default=None, metadata=OMIT)  # the generator's Bayes reference
    pad_ce_bayes_rows1: float | None = field(default=None, metadata=OMIT)
    pad_acc_bayes_row0: float | None = field(default=None, metadata=OMIT)
    pad_acc_bayes_rows1: float | None = field(default=None, metadata=OMIT)
    pad_positions_row0: int | None = field(default=None, metadata=OMIT)
    pad_positions_rows1: int | None = field(default=None, metadata=OMIT)

    def __post_init__(self):
        self.newline_acc_by_width = {int(k): v for k, v in self.newline_acc_by_width.items()}  # JSON keys: str


@dataclass
class TrainResult:
    out_dir: Path
    model: object  # the trained PreTrainedModel (eval mode, on the CPU)
    metrics: TrainMetrics  # final newline metrics plus timing
    history: list[dict]  # the eval.jsonl records
