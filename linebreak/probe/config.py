"""Settings of ``linebreak probe`` (:class:`ProbeConfig`), kept apart from the analysis so that
:mod:`linebreak.presets` and the CLI can read them without importing numpy-heavy code."""

from __future__ import annotations

from dataclasses import dataclass, field

from linebreak.config import require, tuples_from_text

SITES = ("resid_pre", "resid_mid", "resid_post", "ln1")  # the residual sites a probe may read

# The one recipe of a per-value logistic probe fit (linebreak.probe.estimators.value_probes), for the probe stage's
# count probes and the qk probe route's count and key probes alike: at most this many training rows, this many
# L-BFGS iterations. The fit is most of either stage's time on a wide model (d_model 768: about 3 s a probe on 2
# CPU cores); more rows or iterations trade time for fit quality (--value-probe-rows / --probe-fit-rows, ...).
VALUE_PROBE_ROWS = 10000
VALUE_PROBE_ITERS = 100


@dataclass(frozen=True)
class ProbeConfig:
    sites: tuple[str, ...] = field(default=("resid_post",), metadata={
        "help": "comma list of residual sites to analyse"})
    min_per_count: int = field(default=20, metadata={"help": "tokens needed per count for a centroid"})
    subtract_token_mean: bool = field(default=True, metadata={"help": "remove each token identity's mean"})
    alpha: float = field(default=1e-3, metadata={"help": "relative ridge penalty"})
    value_probe_rows: int = field(default=VALUE_PROBE_ROWS, metadata={"help": "training rows for per-count probes"})
    value_probe_iters: int = field(default=VALUE_PROBE_ITERS, metadata={"help": "L-BFGS iterations of per-count "
                                                                                "probes"})
    test_frac: float = field(default=0.25, metadata={"help": "share of documents held out"})
    seed: int = 0

    def __post_init__(self):
        tuples_from_text(self)
        bad = [s for s in self.sites if s not in SITES]
        require(not bad, f"probe sites must be {', '.join(SITES)}, got {', '.join(bad)}")
