"""The key's track: one document's matching key moved over the whole range its row allows, read as a curve.

The key-shift test (:mod:`linebreak.qk.key_shift`) moves a matching key by at most half a column gap. There,
the heads that peak sharply have keys that turn 6-10 times faster per character of their column than the key
side's centroids over column starts (docs/research/tables.md). So a fast part of the key lives inside each
document, and the centroids, where every ringing number so far was read, average it away. This module reads
the geometry where that part lives: one document's key as its column moves over tens of characters.

**The edit.** Take a pad decision on row ``r >= 1`` and its key on row ``r - 1`` that marks the query's next
column start (the ``pad`` or ``cell_start`` token, as for the key shift). Only the pads *before* the key on its
row are changed: attention is causal, so the key's own query, key and value cannot see what follows it, and
everything read here is at the key or taken from the unedited document's query. Moving the key ``δ`` characters
right lengthens those pads by ``δ`` spaces in all; moving it left shortens them. Each pad stays a pad token
(``MIN_PAD`` to the corpus's ``max_pad`` spaces), which bounds the range; no token moves, so the token offsets
and rotary angles stay as they were. The change is spread over the pads in one of two orders:

- ``near``: the pad just before the key first, then the one before it, and so on. At ``±1`` this is the key
  shift's edit; it moves the key against the column before it on its row;
- ``far``: the row's first pad first. The cells between move together, so the key keeps its distance to the
  column before it, and only its count (and theirs) changes. For the keys with at least two pads before them
  on their row, the peak under the two orders tells a key read by its count from one read relative to the
  column before it (the question docs/research/tables.md left open: the key shift changes both).

**What is read, per head.** The track in ``near`` order over every ``δ`` the row allows, for ``sites`` pairs
(one per document: the documents whose track is widest) whose range spans at least the widest column gap:

- ``logit``: the mean over sites of ``logit(δ) - logit(0)`` between the unedited query and the moved key, with
  ``n`` the sites that reach each ``δ``; ``logit_control``: the same on the random-init control. A count match
  dips on both sides of 0; a Fourier construction of a narrow peak has side lobes;
- ``turn_rate``: radians per character, the mean angle between the keys at ``δ`` and ``δ + 1`` (the key
  shift's ``key_angle[1]`` over the whole track), beside the control's;
- the track as a curve (one row per ``δ``, the head's own key space, ``hook_k`` or ``hook_k_normed``), read by
  the ringing gate (:func:`linebreak.probe.ringing.compare`) beside the control's track *of the same edits*, in
  the same window: ``gate_open`` (share of sites whose track is smooth), the median ``sign_changes`` and
  ``turns`` and their control's, and ``rings_control_not``, the share of sites whose track rings where neither
  the control's track nor a Gaussian random walk of the same length and dimension does (``walk_rings``: the
  share of those walks that ring). The walk is the smooth null: the random-init control's pad embeddings are
  unrelated draws, so its tracks jump and close the gate, and a closed gate rings by no one's standard; but
  a smooth curve with independent steps has Fourier-like PCs, and the gate cannot tell those from ringing
  (:mod:`linebreak.probe.ringing`);
- ``peak_near`` / ``peak_far``: ``logit(0) - (logit(D) + logit(-D)) / 2`` under each order, over the
  ``n_far`` sites with two or more pads before the key (``D`` as in the key shift);
- ``rings``: ``rings_control_not >= KEY_TRACK_MIN_SHARE`` (:mod:`linebreak.rules.qk`, with the reason).

Query heads that share a key head share its track's geometry; their logits differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.corpus.tokenizer import MIN_PAD
from linebreak.hooks import arch
from linebreak.probe import ringing
from linebreak.qk.key_shift import capture, key_angle
from linebreak.qk.keyclass import Pairs, pair_logits
from linebreak.rules.qk import KEY_TRACK_MIN_SHARE


@dataclass(kw_only=True)
class KeyTrack:
    """One head's key track (module doc): per ``δ`` in ``shifts``, the sites ``n`` that reach it and the mean
    logit change of the model and of its random-init control; the turn rates (radians per character); the
    gated ringing of the sites' tracks against the control's; the peak at ``±D`` under the two edit orders."""
    n_sites: int
    shifts: list[int]
    n: list[int]
    logit: list[float]
    logit_control: list[float]
    turn_rate: float
    turn_rate_control: float
    gate_open: float
    sign_changes: float
    sign_changes_control: float
    turns: float
    turns_control: float
    rings_control_not: float
    walk_rings: float
    D: int
    n_far: int
    peak_near: float
    peak_far: float
    rings: bool


@dataclass
class Site:
    """One moved key: document ``b``, query ``t``, key ``s``, the positions of the pads before the key on its row
    (nearest first) and their lengths, and the shifts ``lo..hi`` they allow."""
    b: int
    t: int
    s: int
    pads: np.ndarray
    lens: np.ndarray
    lo: int
    hi: int


def spill(lens: np.ndarray, delta: int, max_pad: int) -> np.ndarray | None:
    """New pad lengths with ``delta`` spaces added (removed when negative), the pads taking it in the order given,
    each kept between ``MIN_PAD`` and ``max_pad``; None when they cannot take it all."""
    out, left = lens.copy(), int(delta)
    for j in range(len(out)):
        if left == 0:
            break
        take = min(left, max_pad - out[j]) if left > 0 else max(left, MIN_PAD - out[j])
        out[j] += take
        left -= take
    return out if left == 0 else None


def site(lab: dict, b: int, t: int, s: int, max_pad: int) -> Site:
    """The :class:`Site` of query ``t`` and key ``s`` of document ``b``: the pads before the key on its row and the
    shifts they allow."""
    pad, line = lab["is_pad"][b].astype(bool), lab["line_index"][b]
    pos = np.arange(len(pad))
    before = pos[pad & (line == line[s]) & (pos < s)][::-1]
    lens = lab["token_len"][b, before].astype(np.int64)
    return Site(b, t, s, before, lens, -int((lens - MIN_PAD).sum()), int((max_pad - lens).sum()))


def track_sites(lab: dict, P: Pairs, max_pad: int, min_range: int, D: int, n_sites: int,
                rng: np.random.Generator) -> list[Site]:
    """The sites of the ``n_sites`` documents with the widest tracks, each document's widest (ties drawn with
    ``rng``): pairs whose key is on the row just above and marks the query's next column start, with at least
    ``D`` characters of room on each side and ``min_range`` in all. The widest, because a track must be long
    for its curve to show turns at all."""
    best: dict[int, tuple[float, Site]] = {}
    for j in np.flatnonzero((P.rows == 1) & (P.k == P.target)):
        st = site(lab, int(P.b[j]), int(P.t[j]), int(P.s[j]), max_pad)
        key = st.hi - st.lo + float(rng.random())  # the range, ties broken at random
        if -st.lo >= D and st.hi >= D and st.hi - st.lo >= min_range and key > best.get(st.b, (-1.0,))[0]:
            best[st.b] = (key, st)
    ranked = sorted(best.values(), key=lambda x: -x[0])[:n_sites]
    return sorted((st for _, st in ranked), key=lambda st: st.b)


def edits(ids: np.ndarray, sites: list[Site], order: str, deltas, pad_id: dict[int, int], max_pad: int):
    """The edited documents (rows), their site index and shift: per site, every ``δ`` of ``deltas(site)`` the
    pads can take, spread in ``order`` (``near``: nearest pad first; ``far``: the row's first pad first)."""
    docs, which, shift = [], [], []
    for j, st in enumerate(sites):
        take = slice(None) if order == "near" else slice(None, None, -1)
        pads, lens = st.pads[take], st.lens[take]
        for d in deltas(st):
            new = spill(lens, d, max_pad)
            if new is None:
                continue
            doc = ids[st.b].copy()
            doc[pads] = [pad_id[int(n)] for n in new]
            docs.append(doc)
            which.append(j)
            shift.append(d)
    return np.asarray(docs), np.asarray(which), np.asarray(shift)


def read(model, ids, sites, docs, which, layers, batch_size, normed):
    """The clean queries ``{layer: [sites, H, dh]}`` and the edited documents' keys ``{layer: [docs, kv, dh]}``."""
    q_site, k_site = ("q_normed", "k_normed") if normed else ("q", "k")
    t = np.array([st.t for st in sites])
    q = capture(model, ids[[st.b for st in sites]], {q_site: t}, layers, batch_size)[q_site]
    s = np.array([sites[j].s for j in which])
    k = capture(model, docs, {k_site: s}, layers, batch_size)[k_site]
    return q, k


def logits_of(model, q, k, sites, which, layers, rep, tables) -> np.ndarray:
    """``[docs, layers * heads]``: each edited key's logit with its site's unedited query."""
    off = np.array([sites[j].t - sites[j].s for j in which])
    return np.concatenate([pair_logits(q[L][which], k[L], off, rep, None if tables is None else tables[L],
                                       arch.score_divisor(model, L)) for L in layers], axis=1)


def key_tracks(model, control, lay, ids: np.ndarray, lab: dict, P: Pairs, layers, table_meta: dict,
               n_sites: int, batch_size: int, rng: np.random.Generator) -> dict[tuple[int, int], KeyTrack | None]:
    """:class:`KeyTrack` of every head of ``layers`` (module doc), ``control`` the random-init model of the same
    architecture; None for every head when no site has the room. ``table_meta`` is the corpus's ``table``
    record (pad ids, ``max_pad``, column gaps)."""
    max_pad, first, gaps = int(table_meta["max_pad"]), int(table_meta["first_pad_id"]), table_meta["col_gap"]
    pad_id = {n: first + n - MIN_PAD for n in range(MIN_PAD, max_pad + 1)}
    D = max(1, min(gaps) // 2)
    heads = [(L, h) for L in layers for h in range(lay.n_heads)]
    sites = track_sites(lab, P, max_pad, max(gaps), D, n_sites, rng)
    if not sites:
        return {hd: None for hd in heads}
    rep = lay.n_heads // lay.n_kv_heads
    normed = arch.has_qk_norm(model)
    near = edits(ids, sites, "near", lambda st: range(st.lo, st.hi + 1), pad_id, max_pad)
    multi = [j for j, st in enumerate(sites) if len(st.pads) >= 2]
    far_sites = [sites[j] for j in multi]
    far = edits(ids, far_sites, "far", lambda st: (-D, 0, D), pad_id, max_pad) if far_sites else None
    runs = {}
    for name, m in (("model", model), ("control", control)):
        tables = ({L: arch.rotary_tables(m, ids.shape[1], L) for L in layers} if arch.is_rotary(m) else None)
        q, k = read(m, ids, sites, near[0], near[1], layers, batch_size, normed)
        runs[name] = {"logit": logits_of(m, q, k, sites, near[1], layers, rep, tables), "k": k}
        if name == "model" and far is not None and len(far[0]):
            qf, kf = read(m, ids, far_sites, far[0], far[1], layers, batch_size, normed)
            runs["far"] = logits_of(m, qf, kf, far_sites, far[1], layers, rep, tables)
    which, shift = near[1], near[2]
    multi_mask = np.isin(which, multi)
    out = {}
    for col, (L, h) in enumerate(heads):
        kv = h // rep
        per_site = [np.flatnonzero(which == j) for j in range(len(sites))]  # rows of each site, shifts in order
        curves = {name: [runs[name]["k"][L][rows, kv] for rows in per_site] for name in ("model", "control")}
        out[(L, h)] = summarise(runs["model"]["logit"][:, col], runs["control"]["logit"][:, col], curves, per_site,
                                shift, which, multi_mask, runs.get("far"), far, col, D, len(sites), rng)
    return out


def profile(values: np.ndarray, shift: np.ndarray, which: np.ndarray, n_sites: int):
    """The shifts, the sites reaching each and the mean of ``values - values(δ = 0)`` over those sites."""
    zero = np.zeros(n_sites)
    zero[which[shift == 0]] = values[shift == 0]
    rel = values - zero[which]
    grid = np.arange(shift.min(), shift.max() + 1)
    n = np.array([(shift == d).sum() for d in grid])
    mean = np.array([rel[shift == d].mean() for d in grid])
    return grid, n, mean


def peak_at(values: np.ndarray, shift: np.ndarray, which: np.ndarray, D: int) -> float:
    """The mean over sites of ``values(0) - (values(D) + values(-D)) / 2`` (sites that reach both)."""
    at = {d: dict(zip(which[shift == d], values[shift == d])) for d in (-D, 0, D)}
    both = sorted(set(at[-D]) & set(at[D]) & set(at[0]))
    return float(np.mean([at[0][j] - (at[D][j] + at[-D][j]) / 2 for j in both])) if both else float("nan")


def summarise(logit, logit_ctl, curves, per_site, shift, which, multi_mask, far_logits, far, col, D,
              n_sites, rng: np.random.Generator) -> KeyTrack:
    """One head's :class:`KeyTrack` from its tracks' logits and key curves (module doc); ``rng`` draws the
    random walks."""
    grid, n, mean = profile(logit, shift, which, n_sites)
    _, _, mean_ctl = profile(logit_ctl, shift, which, n_sites)
    rate = {name: float(np.mean(np.concatenate([key_angle(c[:-1, None], c[1:, None])[:, 0] for c in cs])))
            for name, cs in curves.items()}
    reads, walks = [], []
    for j, rows in enumerate(per_site):
        values, track = shift[rows], curves["model"][j]
        reads.append(ringing.compare(track, values, curves["control"][j], values))
        walks.append(ringing.gated_ringing(rng.standard_normal(track.shape).cumsum(0), values)["rings"])
    opened = [r for r in reads if r["model"]["gate_open"]]

    def median(key, side):
        v = [r[side][key] for r in reads if r[side]["gate_open"]]
        return float(np.median(v)) if v else float("nan")

    share = float(np.mean([r["model_rings_control_not"] and not w for r, w in zip(reads, walks)]))
    near_peak = peak_at(logit[multi_mask], shift[multi_mask], which[multi_mask], D)
    far_peak = (peak_at(far_logits[:, col], far[2], far[1], D) if far_logits is not None else float("nan"))
    return KeyTrack(n_sites=n_sites, shifts=[int(d) for d in grid], n=[int(x) for x in n],
                    logit=[float(x) for x in mean], logit_control=[float(x) for x in mean_ctl],
                    turn_rate=rate["model"], turn_rate_control=rate["control"],
                    gate_open=len(opened) / len(reads), sign_changes=median("sign_changes", "model"),
                    sign_changes_control=median("sign_changes", "control"), turns=median("turns", "model"),
                    turns_control=median("turns", "control"), rings_control_not=share,
                    walk_rings=float(np.mean(walks)), D=D,
                    n_far=int(len(np.unique(which[multi_mask]))), peak_near=near_peak, peak_far=far_peak,
                    rings=share >= KEY_TRACK_MIN_SHARE)
