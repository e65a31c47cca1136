"""What a grokking run returns: :class:`GrokResult` (the summary, ``summary.json``) and :class:`GrokRun`.

:class:`GrokResult` is the grok stage's typed summary: the settings, the split sizes, the final accuracies
and losses, the phase boundaries (:class:`linebreak.grok.phases.Phases`), the embedding's key frequencies,
the neuron cluster shares and Nanda et al.'s loss-ordering checks. Findings and the CLI read its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from linebreak.grok.config import GrokConfig
from linebreak.grok.phases import Phases
from linebreak.results import OMIT, Result


@dataclass
class GrokResult(Result):
    FORMAT: ClassVar[str] = "linebreak-grok/1"

    config: GrokConfig
    n_train: int  # training pairs; the other P*P - n_train are the test set
    n_test: int
    final_step: int
    final_train_acc: float
    final_test_acc: float
    final_train_loss: float
    final_test_loss: float
    memorisation_step: int | None  # first step with train accuracy 100 % (None: never)
    grok_step: int | None  # first step with test accuracy >= 95 % (None: never)
    phases: Phases
    key_frequencies: list[int]  # of the final embedding, found from its power spectrum
    n_key_frequencies: int
    final_restricted_loss: float | None  # None when the last record carries no progress measures
    final_excluded_loss: float | None
    neurons_single_frequency_share: float  # share of MLP neurons with >= 85 % variance in one frequency
    neurons_on_key_frequencies_share: float  # share of MLP neurons whose frequency is a key frequency
    # restricted_falls_before_test, excluded_rises_while_test_high (None: not measurable); once measured also
    # restricted_half_step, test_half_step, excluded_loss_at_memorised, excluded_loss_peak_while_test_high
    loss_ordering: dict[str, Any]
    train_seconds: float
    wall_seconds: float | None
    figures: list[str] | None = field(default=None, metadata=OMIT)  # file names of the figures, if drawn



@dataclass
class GrokRun:
    out_dir: Path
    summary: GrokResult
    records: list[dict]  # the log.jsonl records
