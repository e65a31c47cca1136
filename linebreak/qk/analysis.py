"""``linebreak qk``: find boundary heads and test whether their QK circuit twists count onto width.

Gurnee et al. (2025) take count representations through a boundary head's ``W_Q`` and width representations
through its ``W_K``: through the head, count ``i`` lines up with width ``k = i + eps`` at a cosine near 1;
in the raw residual stream it does not. :func:`qk_analysis` asks that of every head of a trained model, and
reads one module at a time:

1. :mod:`linebreak.qk.collect` — the documents, one forward pass, per-count and per-width means at ln1;
2. :mod:`linebreak.qk.maps` — every head through its weights (rotary queries rotated to the newline), its
   cosine matrices (:mod:`linebreak.qk.twist`, the pure maths) and its mean logits split into count effect,
   width effect and interaction;
3. :mod:`linebreak.qk.probe_route` — the same test with logistic value probes as the two sides;
4. :mod:`linebreak.qk.attention` — what the attention measurably does: response curves, key-side test;
5. :mod:`linebreak.qk.verdict` — ranking, the model's verdict, its split-half check, its statement;
6. :mod:`linebreak.qk.top_heads` — the detailed heads and the PCA of their outputs.

The result is a :class:`linebreak.qk.result.QKResult`; its thresholds are in :mod:`linebreak.rules.qk`.
"""

from __future__ import annotations

import numpy as np

from linebreak.hooks import arch
from linebreak.io import UserError
from linebreak.qk.attention import measure_heads
from linebreak.qk.collect import check_model, collect, select_docs, value_means
from linebreak.qk.config import QKConfig
from linebreak.qk.maps import score_heads
from linebreak.qk.probe_route import probe_route, probe_verdict
from linebreak.qk.result import QKResult
from linebreak.qk.top_heads import top_head, top_head_outputs
from linebreak.qk.verdict import lead_head, model_verdict, rank_heads, split_half

__all__ = ["QKConfig", "QKResult", "qk_analysis"]


def qk_analysis(model, corpus, cfg: QKConfig | None = None, tokenizer=None) -> QKResult:
    """The QK twist analysis of every head of ``model`` on ``corpus`` (see the module docstring); ``cfg``
    defaults to :class:`QKConfig` ()."""
    cfg = cfg or QKConfig()
    if cfg.key_label not in ("width", "line_len"):
        raise UserError(f"key_label must be width or line_len, not {cfg.key_label!r}")
    lay = check_model(model, tokenizer, corpus)
    rotary = arch.is_rotary(model)
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    data = collect(model, lay, ids, lab, cfg, lab[cfg.key_label], rotary)
    sums = data.halves.total()
    means = value_means(sums, cfg, len(ids))
    tables = arch.rotary_tables(model, sums.q_n.shape[1] - 1) if rotary else None

    # every head through its weights; the random controls, then the key-side shuffles, draw from one stream
    rng = np.random.default_rng(cfg.seed)
    scored = score_heads(model, lay, sums, means, tables, rng)
    route = (probe_route(data.rows, sums.q_n, model, lay, means.i_values, means.k_values, tables, cfg)
             if cfg.probes else None)
    data.rows = None  # the token rows are the largest thing held; the probe route was their only reader
    positions = [(s.weights.layer, s.weights.head) for s in scored]
    measured = measure_heads(data.attention, lab, positions, cfg, rng)
    heads = rank_heads(scored, route.per_head if route else None, measured)

    # the verdict's head is always among the detailed heads
    lead = lead_head(heads)
    shown = heads[: cfg.top] + ([lead] if lead.name not in {h.name for h in heads[: cfg.top]} else [])
    by_position = {(s.weights.layer, s.weights.head): s for s in scored}
    lead_qk = by_position[(lead.layer, lead.head)]
    stability = split_half(data.halves, lead_qk.weights, lead.verdict.passes, means.i_values, means.k_values,
                           tables, cfg, len(ids))
    verdict = model_verdict(heads, stability, probe_verdict(heads, route.fits) if route else None)
    return QKResult(
        config=cfg, layout=lay, n_docs=len(ids),
        query_frame="rotated to the previous newline" if rotary else "weights (no positional rotation)",
        i_values=means.i_values, k_values=means.k_values, heads=heads,
        top=[top_head(by_position[(h.layer, h.head)], means) for h in shown],
        top_outputs=top_head_outputs(model, lay, ids, lab, [(h.layer, h.head) for h in shown], cfg),
        verdict=verdict)
