"""What the qk stage hands on: :class:`QKResult` and the typed pieces the findings, plots, causal stage and
scripts read.

One JSON file (``qk.json``, format ``linebreak-qk/1``) holds the config, the model's layout, the count and
width values, every head ranked (:class:`HeadSummary`), the detailed top heads (:class:`TopHead`), the PCA of
their outputs (:class:`TopOutputs`) and the model's verdict (:class:`Verdict`). Field names are the JSON keys,
so ``result.verdict.best.qk.max_cos`` is ``qk.json``'s ``verdict.best.qk.max_cos``. NaN ("not defined") is
null in the file and NaN again when read back (:mod:`linebreak.results`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np

from linebreak.hooks.arch import Layout
from linebreak.qk.config import QKConfig
from linebreak.results import OMIT, Result

T = TypeVar("T")


def project(cls: type[T], obj: Any, **extra) -> T:
    """A ``cls`` made of the same-named attributes of ``obj`` (plus ``extra``): e.g. a head's verdict numbers."""
    return cls(**{f.name: getattr(obj, f.name) for f in fields(cls) if f.name not in extra}, **extra)


# ---- one head, judged on one route ---------------------------------------------------------------------------
@dataclass(kw_only=True)
class LineStats:
    """One cosine matrix's offset line (:func:`linebreak.qk.twist.argmax_offsets`, ``twist.SUMMARY_KEYS``)."""
    max_cos: float
    alignment: float
    median: float
    spread: float
    slope: float
    intercept: float
    r2: float
    edge_fraction: float


@dataclass(kw_only=True)
class Checks:
    """A pass/fail verdict and the named checks it is made of (:func:`linebreak.qk.twist.head_verdict`)."""
    passes: bool
    checks: dict[str, bool]


@dataclass(kw_only=True)
class SideShares:
    """PC1 share of the query side through ``W_Q`` and the key side through ``W_K`` (near 1: a straight ramp)."""
    query: float
    key: float


@dataclass(kw_only=True)
class TwistSummary:
    """A head's twist numbers on one route: the three matrices' lines, gains, ranking score and verdict."""
    qk: LineStats
    identity: LineStats
    control: LineStats
    gain_over_identity: float
    gain_over_control: float
    pc1_share: SideShares
    score: float
    verdict: Checks


@dataclass(kw_only=True)
class BestSummary(TwistSummary):
    """The verdict's head: its twist numbers and whether its random control passes the line checks."""
    control_verdict: Checks


@dataclass(kw_only=True)
class HeadTwist:
    """All of :func:`linebreak.qk.twist.head_summary` for one head, in its order."""
    qk: LineStats
    identity: LineStats
    control: LineStats
    offsets: np.ndarray
    k_star: np.ndarray
    pc1_share: SideShares
    gain_over_identity: float
    gain_over_control: float
    score: float
    verdict: Checks
    control_verdict: Checks


@dataclass(kw_only=True)
class LogitRange:
    count: float
    width: float
    interaction: float
    total: float


@dataclass(kw_only=True)
class Comparison:
    """How the head compares count with width (:func:`linebreak.qk.twist.score_decomposition`)."""
    count_share: float
    width_share: float
    interaction_share: float
    count_slope: float
    count_r2: float
    width_slope: float
    width_r2: float
    balance: float
    range: LogitRange


@dataclass(kw_only=True)
class Response:
    """Measured attention to the previous newline per characters remaining (nan: too few tokens)."""
    remaining: np.ndarray
    attention: np.ndarray
    range: float
    peak_remaining: int | None
    spearman_vs_remaining: float


@dataclass(kw_only=True)
class KeySide:
    """The key-side comparison test (:func:`linebreak.qk.attention.key_side_test`)."""
    corr: float
    eta2: float
    eta2_shuffled: float
    excess: float
    p_value: float
    moves: bool
    n: int


@dataclass(kw_only=True)
class HeadSummary(HeadTwist):
    """One head: its twist on the means, where it sits, its logit split, rank, probe route and attention."""
    layer: int
    head: int
    name: str
    comparison: Comparison
    rank: int
    probes: TwistSummary | None = field(default=None, metadata=OMIT)  # None: run without the probe route
    response: Response
    key_side: KeySide


# ---- the detailed heads ----------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class TopHead:
    """A detailed head: its three cosine matrices, its mean logits, and both sides' joint 3-D PCA (count rows
    first, then width rows) in the residual stream and through the head."""
    name: str
    layer: int
    head: int
    matrices: dict[str, np.ndarray]
    logits: np.ndarray
    pca_residual: np.ndarray
    pca_qk: np.ndarray


@dataclass(kw_only=True)
class TopOutputs:
    """The detailed heads' summed outputs per characters remaining, reduced by PCA (the paper: 2 PCs, 92 %)."""
    remaining: np.ndarray
    explained_variance_ratio: np.ndarray
    top2: float
    pcs: np.ndarray
    per_head_pc1: dict[str, float]


# ---- the verdict -----------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class HalfCheck:
    """The verdict's head judged on one half of the documents."""
    max_cos: float
    slope: float
    r2: float
    median: float
    edge_fraction: float
    gain_over_identity: float
    gain_over_control: float
    passes: bool
    fails: list[str]


@dataclass(kw_only=True)
class SplitHalf:
    head: str
    n_docs: list[int]
    halves: list[HalfCheck]
    holds_on_both_halves: bool


@dataclass(kw_only=True)
class ProbeFit:
    """Held-out fit of one layer's count probes and key probes."""
    layer: int
    count_rmse: float
    count_accuracy: float
    key_rmse: float
    key_accuracy: float


@dataclass(kw_only=True)
class ProbeVerdict:
    passes: bool
    passing_heads: list[str]
    best_head: str
    best: TwistSummary
    fits: list[ProbeFit]
    statement: str


@dataclass(kw_only=True)
class Verdict:
    """The model's verdict: carried by the first passing head in rank order, else the top-ranked head."""
    passes: bool
    passing_heads: list[str]
    best_head: str
    top_ranked_head: str
    best: BestSummary
    identity_worse_than_head: bool
    control_shows_no_alignment: bool
    distinct_offsets_among_passing: list[float]
    split_half: SplitHalf
    thresholds: dict[str, Any]
    statement: str
    probes: ProbeVerdict | None


@dataclass(kw_only=True)
class QKResult(Result):
    """The qk stage's result. ``heads`` are in rank order, those of the analysed layers only
    (:attr:`analysed_layers`); ``model`` / ``corpus`` are the paths the command records (absent from the JSON
    when not set)."""

    FORMAT = "linebreak-qk/1"

    config: QKConfig
    layout: Layout
    n_docs: int
    # the analysed layers when they are not all of them (--layers); absent from the JSON when every layer was
    layers: list[int] | None = field(default=None, metadata=OMIT)
    query_frame: str  # how the queries were read, what the architecture changes (qk.analysis.query_frame)
    i_values: np.ndarray
    k_values: np.ndarray
    heads: list[HeadSummary]
    top: list[TopHead]
    top_outputs: TopOutputs
    verdict: Verdict
    model: str | None = field(default=None, metadata=OMIT)  # recorded by the command, absent from the study's
    corpus: str | None = field(default=None, metadata=OMIT)

    @property
    def analysed_layers(self) -> list[int]:
        """The layers whose heads were judged (``heads`` holds theirs only)."""
        return list(range(self.layout.n_layers)) if self.layers is None else list(self.layers)

    def head(self, name: str) -> HeadSummary:
        """The head called ``name`` (``"L1H2"``)."""
        return next(h for h in self.heads if h.name == name)


