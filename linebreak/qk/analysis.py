"""``linebreak qk``: find boundary heads and test whether their QK circuit twists count onto width.

Gurnee et al. (2025) take count representations through a boundary head's ``W_Q`` and width representations
through its ``W_K``: through the head, count ``i`` lines up with width ``k = i + eps`` at a cosine near 1;
in the raw residual stream it does not. :func:`qk_analysis` asks that of every head of a trained model, and
reads one module at a time:

1. :mod:`linebreak.qk.collect` — the documents, one forward pass, per-count and per-width means of what
   attention reads (and, on a q/k-norm model, of each head's own normed queries and keys);
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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from linebreak.hooks import arch
from linebreak.hooks.run import Reader, read_pass
from linebreak.io import UserError
from linebreak.qk.attention import measure_heads
from linebreak.qk.collect import Collected, check_model, collect_reader, prose_documents, select_docs, value_means
from linebreak.qk.config import QKConfig
from linebreak.qk.maps import score_heads
from linebreak.qk.probe_route import probe_route, probe_verdict
from linebreak.qk.result import QKResult
from linebreak.qk.top_heads import top_head, top_head_outputs
from linebreak.qk.verdict import lead_head, model_verdict, rank_heads, split_half

__all__ = ["QKConfig", "QKPass", "QKResult", "qk_analysis", "qk_pass"]


def query_frame(model, seq_len: int, probes: bool, layers: list[int] | None = None) -> str:
    """How the queries were read, in the words the report prints after "Queries were read": the frame (rotated
    to the newline or not), and, in the same line, what the analysis does otherwise for this model's
    architecture and what it cannot do (the probe route on a q/k-norm model; soft-capped and windowed
    logits) in the analysed ``layers`` (None: every layer). The same words as always for a model with none of
    these."""
    layers = range(model.config.num_hidden_layers) if layers is None else layers
    frame = "rotated to the previous newline" if arch.is_rotary(model) else "weights (no positional rotation)"
    notes = []
    if arch.has_qk_norm(model):
        notes.append("as the heads' own q/k-normed queries and keys (per-value means of what each head "
                     "computes; the norm is not linear, so no residual direction maps through it"
                     + (", and the probe route is not run" if probes else "") + ")")
    caps = sorted({c for L in layers if (c := arch.softcap(model, L))})
    if caps:
        notes.append("mean logits are before the soft cap c tanh(s / c), c = " + ", ".join(f"{c:g}" for c in caps)
                     + " (monotone: their order and signs hold)")
    windows = arch.sliding_windows(model)
    short = [L for L in layers if windows[L] is not None and windows[L] < seq_len]
    if short:
        notes.append(f"layer{'s' * (len(short) > 1)} {', '.join(map(str, short))} attend{'s' * (len(short) == 1)} "
                     f"only within a window of "
                     f"{min(windows[L] for L in short)} tokens, shorter than the {seq_len}-token documents, so "
                     "there a query that far past its newline cannot attend to it")
    return "; ".join([frame, *notes])


@dataclass
class QKPass:
    """What the qk stage reads in its forward pass: the documents ``ids`` and their labels ``lab``, and the
    :class:`~linebreak.hooks.run.Reader` of :func:`linebreak.qk.collect.collect_reader` with its ``finish``.
    :func:`qk_pass` makes one; :func:`qk_analysis` runs it, or takes one that another pass has already carried
    (the study reads the capture and the qk sums in one pass)."""
    ids: np.ndarray
    lab: dict
    lay: arch.Layout
    rotary: bool
    reader: Reader
    finish: Callable[[], Collected]


def qk_pass(model, corpus, cfg: QKConfig, tokenizer=None) -> QKPass:
    """The checks, the documents and the reader of the qk stage's pass (nothing runs yet)."""
    if cfg.key_label not in ("width", "line_len"):
        raise UserError(f"key_label must be width or line_len, not {cfg.key_label!r}")
    lay = check_model(model, tokenizer, corpus)
    rotary = arch.is_rotary(model)
    ids, lab = prose_documents(*select_docs(corpus, cfg.split, cfg.n_docs))
    reader, finish = collect_reader(model, lay, ids, lab, cfg, lab[cfg.key_label], rotary)
    return QKPass(ids, lab, lay, rotary, reader, finish)


def qk_analysis(model, corpus, cfg: QKConfig | None = None, tokenizer=None, read: QKPass | None = None) -> QKResult:
    """The QK twist analysis of every head of ``model`` on ``corpus`` (see the module docstring), or of the
    heads of the layers ``cfg.layers``: those layers alone are hooked, kept and judged, and each of their heads
    gets the numbers it gets when every layer is analysed (same means, probes, controls and shuffles).
    ``cfg`` defaults to :class:`QKConfig` (). ``read``: a :func:`qk_pass` whose forward pass has already run
    (None: make one and run it here)."""
    cfg = cfg or QKConfig()
    if read is None:
        read = qk_pass(model, corpus, cfg, tokenizer)
        read_pass(model, read.ids, cfg.batch_size, [read.reader], desc="qk: forward")
    ids, lab, lay, rotary = read.ids, read.lab, read.lay, read.rotary
    data = read.finish()
    sums = data.halves.total()
    layers = list(sums.layers)
    means = value_means(sums, cfg, len(ids))
    n_off = sums.q_n.shape[1]
    tables = {L: arch.rotary_tables(model, n_off - 1, L) for L in layers} if rotary else None

    # every head through its weights; the random controls, then the key-side shuffles, draw from one stream
    rng = np.random.default_rng(cfg.seed)
    scored = score_heads(model, lay, sums, means, tables, rng)
    route = (probe_route(data.rows, sums.q_n, model, lay, means.i_values, means.k_values, tables, cfg)
             if cfg.probes and not sums.normed else None)
    data.rows = None  # the token rows are the largest thing held; the probe route was their only reader
    measured = measure_heads(data.attention, lab, cfg, rng)
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
        layers=None if len(layers) == lay.n_layers else layers,
        query_frame=query_frame(model, ids.shape[1], cfg.probes, layers),
        i_values=means.i_values, k_values=means.k_values, heads=heads,
        top=[top_head(by_position[(h.layer, h.head)], means) for h in shown],
        top_outputs=top_head_outputs(model, data, [(h.layer, h.head) for h in shown], cfg),
        verdict=verdict)
