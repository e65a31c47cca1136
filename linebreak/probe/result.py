"""The typed result of ``linebreak probe``: :class:`ProbeResult`, one :class:`ProbeLayer` per analysed layer.

On disk: ``probe.json`` (every number; format ``linebreak-probe/1``, written last, the folder's marker) and
``probes.safetensors`` (probe weights and centroids, ``"{site}.{layer}.{what}"``, e.g.
``resid_post.2.count_probes.weight [V, d]``). In memory the arrays ride along in :attr:`ProbeResult.tensors`,
which ``to_json`` leaves out.

The JSON layout per layer::

    site, layer, hook
    probes: {count, line_width, remaining, width}: RidgeScores   (r2_test, r2_train, rmse_test, n_train, n_test)
    counts: Counts                                              (min, max, n, tokens)
    centroids: Geometry                                         (pca, ringing, lag_profile, peak_width, fourier, helix)
    count_probes: CountProbes                                   (scores, then the same geometry of the probe
                                                                 vectors, absent when a count had no probe)

Fields marked ``OMIT`` are left out of the JSON while they are None (a ridge probe with too few rows writes
only ``r2_test: null`` and its ``note``), so the file has exactly the keys the stage always wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from linebreak.io import load_tensors, save_json, save_tensors, to_jsonable
from linebreak.probe.config import ProbeConfig
from linebreak.results import OMIT, Result, plain

MARKER = "probe.json"
TENSORS = "probes.safetensors"


@dataclass
class RidgeScores:
    """Held-out scores of one ridge probe (:func:`linebreak.probe.estimators.ridge_probe`)."""

    r2_test: float | None  # None: too few rows (see note)
    r2_train: float | None = field(default=None, metadata=OMIT)
    rmse_test: float | None = field(default=None, metadata=OMIT)
    n_train: int | None = field(default=None, metadata=OMIT)
    n_test: int | None = field(default=None, metadata=OMIT)
    note: str | None = field(default=None, metadata=OMIT)


@dataclass
class Pca:
    ratio: np.ndarray  # [<=10] variance ratio of each PC
    top3: float
    top6: float
    top10: float
    dim95: int  # PCs needed for 95 % of the variance


@dataclass
class Ringing:
    sign_changes: int
    first_negative: float
    first_negative_lag: int | None
    second_positive: float
    second_positive_lag: int | None
    zero_crossing_lag: int | None


@dataclass
class Fourier:
    key_frequencies: list[int]
    key_periods: list[float]
    fourier_cum: np.ndarray
    pca_cum: np.ndarray
    gap_6: float


@dataclass
class Helix:
    periods: list[int]
    r2_steps: list[float]
    r2_line: float
    r2_helix: float
    r2_helix_adjusted: float
    residual_drop: float


@dataclass
class Geometry:
    """The shape of a curve of per-count vectors (centroids, or per-count probe vectors)."""

    pca: Pca
    ringing: Ringing
    lag_profile: np.ndarray  # mean cosine similarity at each lag |i - j|
    peak_width: float
    fourier: Fourier
    helix: Helix


@dataclass
class Counts:
    min: int
    max: int
    n: int  # count values with a centroid (a contiguous run)
    tokens: int  # word tokens at those counts


@dataclass
class CountProbes:
    """Per-count logistic probes: held-out scores, then the geometry of their weight vectors (as flat keys
    beside the scores, as in ``Geometry``; None when some count value got no probe)."""

    rmse_test: float
    accuracy_test: float
    n_train: int
    n_test: int
    pca: Pca | None = field(default=None, metadata=OMIT)
    ringing: Ringing | None = field(default=None, metadata=OMIT)
    lag_profile: np.ndarray | None = field(default=None, metadata=OMIT)
    peak_width: float | None = field(default=None, metadata=OMIT)
    fourier: Fourier | None = field(default=None, metadata=OMIT)
    helix: Helix | None = field(default=None, metadata=OMIT)


@dataclass
class ProbeLayer:
    site: str
    layer: int
    hook: str  # TransformerLens name, e.g. blocks.2.hook_resid_post
    probes: dict[str, RidgeScores]  # count, line_width, remaining, width
    counts: Counts
    centroids: Geometry
    count_probes: CountProbes

    def to_json(self) -> dict:
        return to_jsonable(plain(self))


@dataclass
class ProbeResult(Result):
    """Everything ``linebreak probe`` measured on one capture (see the module doc for the layout)."""

    FORMAT = "linebreak-probe/1"

    config: ProbeConfig
    capture: dict[str, Any]  # arch, n_rows, n_docs, model of the capture
    layers: dict[str, ProbeLayer]  # "resid_post.2" -> its probes and geometry, in analysis order
    tensors: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False,
                                           metadata={"json": False})


def save_probe(result: ProbeResult, out_dir: str | Path) -> Path:
    """``probes.safetensors`` (probe weights, centroids) then ``probe.json`` (the numbers; the marker)."""
    out_dir = Path(out_dir)
    save_tensors(out_dir / TENSORS,
                 {k: np.ascontiguousarray(v, dtype=np.float32 if v.dtype.kind == "f" else np.int64)
                  for k, v in result.tensors.items()})
    save_json(out_dir / MARKER, result.to_json())
    return out_dir


def load_probe(folder: str | Path, tensors: bool = True) -> ProbeResult:
    """A folder written by :func:`save_probe`; with ``tensors``, the arrays too (as numpy)."""
    folder = Path(folder)
    res = ProbeResult.load(folder / MARKER)
    if tensors:
        res.tensors = {k: v.numpy() for k, v in load_tensors(folder / TENSORS, "probe weights").items()}
    return res


def load_probes(folder: str | Path, tensors: bool = False) -> tuple[ProbeResult, ProbeResult | None]:
    """The model's result in ``folder`` and its random-init control's in ``folder/control`` (None if absent)."""
    folder = Path(folder)
    ctrl = load_probe(folder / "control", tensors) if (folder / "control" / MARKER).is_file() else None
    return load_probe(folder, tensors), ctrl
