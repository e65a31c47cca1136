"""What the causal stage hands on: :class:`CausalResult` (``causal.json``, format ``linebreak-causal/1``).

Field names are the JSON keys, so ``result.subspace_ablation.count_subspace.ratio`` is ``causal.json``'s
``subspace_ablation.count_subspace.ratio``. NaN and infinity ("not defined") are null in the file and NaN when
read back (:mod:`linebreak.results`).
"""

from __future__ import annotations

from dataclasses import dataclass

from linebreak.causal.config import CausalConfig
from linebreak.qk.result import Comparison
from linebreak.results import Result


@dataclass
class Loss:
    """Next-token cross-entropy on positions whose next token is the newline, on all others, and overall."""
    newline_loss: float
    other_loss: float
    loss: float


@dataclass
class LossDelta(Loss):
    """A condition's losses and their changes against the baseline; ``ratio = d_newline / d_other``."""
    d_newline: float
    d_other: float
    ratio: float


@dataclass
class HeadAblation:
    """The top head removed, the top ``n`` together, every other head of its layer, and the whole layer."""
    top_head: str
    top: LossDelta
    top_n_heads: list[str]
    top_n: LossDelta
    same_layer_others: dict[str, LossDelta]
    random_head: str | None
    random: LossDelta | None
    all_heads_of_layer: LossDelta
    top_beats_random: bool
    top_beats_every_other_in_layer: bool
    top_newline_specific: bool


@dataclass
class KeyAblation:
    """One head's keys at newlines taken away three ways, beside removing the head (``head_d_newline``)."""
    mean: LossDelta
    resample: LossDelta
    resample_same_length: LossDelta
    head_d_newline: float
    key_share: dict[str, float]
    comparison: Comparison | None  # the head's logit split from the QK stage


@dataclass
class SubspaceAblation:
    layer: int
    dim: int
    variance_explained: float
    count_subspace: LossDelta
    random_subspaces: list[LossDelta]
    random_mean: dict[str, float]  # d_newline, d_other
    beats_random_on_newline: bool


@dataclass
class PatchPoint:
    delta: int
    p_newline: float
    n: int


@dataclass
class Patching:
    layer: int
    curve: list[PatchPoint]
    spearman: float
    monotone_fraction: float


@dataclass
class InsertedString:
    string: str
    n_tokens: int
    n_chars: int
    p_newline_before: float
    p_newline_after: float
    delta: float
    attention_to_insert: float


@dataclass(kw_only=True)
class Insertion:
    """The insertion sweep; with no site to edit only ``sites = 0`` and an empty ``strings`` are written."""
    sites: int
    heads: list[str] | None = None  # the top heads whose attention to the insert is read
    strings: list[InsertedString]
    corr_abs_delta_vs_attention: float = float("nan")

    def to_json_dict(self, d: dict) -> dict:
        """``d`` (this sweep as JSON) without the keys a sweep with no sites never had."""
        return {"sites": d["sites"], "strings": d["strings"]} if self.heads is None else d


@dataclass
class CausalResult(Result):
    """All four causal checks (:func:`linebreak.causal.analysis.causal_checks`)."""

    FORMAT = "linebreak-causal/1"

    config: CausalConfig
    n_docs: int
    baseline: Loss
    head_ablation: HeadAblation
    boundary_head_ablation: HeadAblation
    key_ablation: dict[str, KeyAblation]
    subspace_ablation: SubspaceAblation
    patching: Patching
    insertion: Insertion

    def to_json(self) -> dict:
        d = super().to_json()
        d["insertion"] = self.insertion.to_json_dict(d["insertion"])
        return d
