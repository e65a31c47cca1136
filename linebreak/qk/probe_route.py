"""The probe route: every head judged again with the paper's own sides, logistic value probes.

Gurnee et al. (2025) take count probes through ``W_Q`` and width probes through ``W_K``. Here one logistic
probe per count is fitted on the query tokens and one per key value on the newline tokens
(:func:`linebreak.probe.estimators.value_probes`, held out by document), on the same rows of what attention
reads that the means come from; their weight vectors go through every head as the means do (a rotary head's
query for count ``i`` is the probe through ``W_Q`` rotated by the offsets at which count ``i`` occurs) and are
judged by the same verdict. Probes are discriminative directions, not centroids: they show what the head does
to the directions that *tell counts apart*. The model's verdict stays on the means; this route is reported
beside it. A q/k-norm model has no such route: a direction does not map through a norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.hooks import arch
from linebreak.probe.estimators import value_probes
from linebreak.qk import twist
from linebreak.qk.collect import ProbeRows
from linebreak.qk.config import QKConfig
from linebreak.qk.maps import rotated_query_map
from linebreak.qk.result import HeadSummary, ProbeFit, ProbeVerdict, TwistSummary
from linebreak.qk.verdict import rank_key, statement
from linebreak.results import from_dict


@dataclass
class ProbeRoute:
    """Each head's twist numbers on the probe route, by ``(layer, head)``, and each layer's probe fit."""
    per_head: dict[tuple[int, int], TwistSummary]
    fits: list[ProbeFit]


def probe_route(rows: ProbeRows, q_n: np.ndarray | None, model, lay, i_values, k_values, tables,
                cfg: QKConfig) -> ProbeRoute:
    """Every head of the layers ``rows`` holds judged with logistic value probes as its two sides, layer by
    layer. ``q_n [counts, offsets]`` weighs a rotary head's rotated probes (``tables``: by layer) by how often
    each count occurs at each offset (unused without rotary). The controls draw from their own seed, so the
    means' numbers do not move, in the order of all the model's heads (a layer not analysed draws and drops
    its heads', :func:`linebreak.qk.twist.skip_controls`). Not for a q/k-norm model: a probe is a direction, and
    no direction maps through a norm (:func:`linebreak.qk.analysis.qk_analysis` leaves the route out there)."""
    c, o, g = (np.concatenate(a) for a in zip(*rows.q_lab))
    kv, kg = (np.concatenate(a) for a in zip(*rows.k_lab))
    rng = np.random.default_rng([cfg.seed, 1])
    out, fits = {}, []
    for L in range(max(rows.q) + 1):  # no draws are needed after the last analysed layer
        if L not in rows.q:
            twist.skip_controls(lay.n_heads, (lay.d_model, lay.d_head), rng)
            continue
        fit = {"seed": cfg.seed, "max_rows": cfg.probe_fit_rows, "max_iter": cfg.probe_iters}
        Xq, Xk = rows.layer(L)
        pq = value_probes(Xq, c, g, keep=i_values, **fit)
        pk = value_probes(Xk, kv, kg, keep=k_values, **fit)
        del Xq, Xk
        fits.append(ProbeFit(layer=L, count_rmse=pq.rmse_test, count_accuracy=pq.accuracy_test,
                             key_rmse=pk.rmse_test, key_accuracy=pk.accuracy_test))
        if tables is None:
            qmap = twist.plain_query_map(pq.weights)
        else:
            n = q_n[pq.values]
            qmap = rotated_query_map(n[:, :, None] * pq.weights[:, None, :], n, tables[L])
        W_Q, _, W_K, _ = (t.double().numpy() for t in arch.qk_weights(model, L))
        for h in range(lay.n_heads):
            summary, _ = twist.head_summary(pq.weights, pk.weights, pq.values, pk.values, W_Q[h], W_K[h], rng,
                                            query_map=qmap)
            out[(L, h)] = from_dict(TwistSummary, summary)
    return ProbeRoute(out, fits)


def probe_verdict(heads: list[HeadSummary], fits: list[ProbeFit]) -> ProbeVerdict:
    """The model's verdict on the probe route: its passing heads, and its best head (the first passing one by
    the probe route's ranking score, else the top-ranked one) with that head's numbers and statement. Ties in
    the score keep (layer, head) order."""
    by_position = sorted(heads, key=lambda h: (h.layer, h.head))
    order = sorted(by_position, key=lambda h: rank_key(h.probes))
    passing = [h.name for h in order if h.probes.verdict.passes]
    best = next((h for h in order if h.probes.verdict.passes), order[0])
    return ProbeVerdict(passes=bool(passing), passing_heads=passing, best_head=best.name, best=best.probes,
                        fits=fits, statement="probe route: " + statement(best.name, best.probes, passing, None))
