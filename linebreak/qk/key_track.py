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
- ``far``: every pad before the key *but* the nearest, the row's first pad first. The key, the cell before it
  and the pad between keep their places relative to each other, so only the key's count (and that of the
  cells before it) changes. The peak under the two orders tells a key read by its count from one read
  relative to the column before it (the question docs/research/tables.md left open: the key shift changes
  both), and the far track is the key's geometry as a function of its count alone.

**What is read, per head and order** (:class:`Track`), over every ``δ`` the pads allow, for ``sites`` pairs
(one per document: the documents whose near track is widest) whose near range spans at least the widest
column gap; the far track uses those of them with two or more pads before the key and ``±D`` of far room:

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
- ``peak``: ``logit(0) - (logit(D) + logit(-D)) / 2`` (``D`` as in the key shift); and, read off the logit
  profile by :func:`band`, the shifts around its top within ``KEY_TRACK_BAND_NATS`` of it: the count window the
  head accepts, which a broad match has wide and a ramp leaves open on one side;

and, per head, the two orders on the same keys, drawn as the key shift draws its pairs (a seeded sample of up
to ``ORDER_PAIRS_PER_SITE * sites`` matching pairs, not the widest documents): ``peak_near_both`` and
``peak_far_both`` over the ``n_both`` pairs with two or more pads before the key whose nearest pad alone can
take ``±D`` and whose other pads can too. There the near edit is the key shift's edit as the key sees it, and
the far edit moves the same key by the same ``D`` with its cell;
- ``rings`` (:class:`KeyTrack`): either order's ``rings_control_not >= KEY_TRACK_MIN_SHARE``
  (:mod:`linebreak.rules.qk`, with the reason).

Query heads that share a key head share its track's geometry; their logits differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linebreak.corpus.tokenizer import MIN_PAD
from linebreak.hooks import arch
from linebreak.probe import ringing
from linebreak.qk.key_shift import capture, key_angle, largest_shift, pad_ids
from linebreak.qk.keyclass import Pairs, pair_logits
from linebreak.rules.qk import KEY_TRACK_BAND_NATS, KEY_TRACK_MIN_SHARE

ORDER_PAIRS_PER_SITE = 8  # the order comparison's pairs per track site: 256 at the default 32, the key shift's


@dataclass(kw_only=True)
class Track:
    """One edit order's key tracks of one head (module doc): per ``δ`` in ``shifts``, the sites ``n`` that reach
    it and the mean logit change of the model and of its random-init control; the turn rates (radians per
    character); the gated ringing of the sites' tracks against the controls'; the peak at ``±D``."""
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
    peak: float


@dataclass(kw_only=True)
class KeyTrack:
    """One head's key tracks under the two edit orders (``far`` None when no site has the room), the two orders'
    peaks on the same ``n_both`` keys, and whether either order's tracks ring (module doc)."""
    D: int
    near: Track
    far: Track | None
    n_both: int
    peak_near_both: float
    peak_far_both: float
    rings: bool


@dataclass
class Site:
    """One moved key: document ``b``, query ``t``, key ``s``, the positions of the pads before the key on its row
    (nearest first) and their lengths, the shifts ``lo..hi`` they allow and ``far_lo..far_hi``, those the pads
    but the nearest allow."""
    b: int
    t: int
    s: int
    pads: np.ndarray
    lens: np.ndarray
    lo: int
    hi: int
    far_lo: int
    far_hi: int


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
    down, up = lens - MIN_PAD, max_pad - lens
    return Site(b, t, s, before, lens, -int(down.sum()), int(up.sum()), -int(down[1:].sum()), int(up[1:].sum()))


def matching_sites(lab: dict, P: Pairs, max_pad: int) -> list[Site]:
    """The :class:`Site` of every pair whose key is on the row just above and marks the query's next column
    start, in pair order."""
    return [site(lab, int(P.b[j]), int(P.t[j]), int(P.s[j]), max_pad)
            for j in np.flatnonzero((P.rows == 1) & (P.k == P.target))]


def track_sites(matching: list[Site], min_range: int, D: int, n_sites: int, rng: np.random.Generator) -> list[Site]:
    """Of the ``matching`` sites, those of the ``n_sites`` documents with the widest tracks, each document's
    widest (ties drawn with ``rng``), with at least ``D`` characters of room on each side and ``min_range`` in
    all. The widest, because a track must be long for its curve to show turns at all."""
    best: dict[int, tuple[float, Site]] = {}
    for st in matching:
        key = st.hi - st.lo + float(rng.random())  # the range, ties broken at random
        if -st.lo >= D and st.hi >= D and st.hi - st.lo >= min_range and key > best.get(st.b, (-1.0,))[0]:
            best[st.b] = (key, st)
    ranked = sorted(best.values(), key=lambda x: -x[0])[:n_sites]
    return sorted((st for _, st in ranked), key=lambda st: st.b)


def order_sites(matching: list[Site], max_pad: int, D: int, n: int, rng: np.random.Generator) -> list[Site]:
    """A seeded sample of up to ``n`` of the ``matching`` sites whose key has two or more pads before it, the
    nearest able to take ``±D`` alone and the others together (module doc)."""
    fit = [st for st in matching if len(st.pads) >= 2 and st.lens[0] - D >= MIN_PAD and st.lens[0] + D <= max_pad
           and st.far_lo <= -D and st.far_hi >= D]
    return [fit[i] for i in np.sort(rng.choice(len(fit), size=min(n, len(fit)), replace=False))] if fit else []


def edits(ids: np.ndarray, sites: list[Site], order: str, pad_id: dict[int, int], max_pad: int, deltas=None):
    """The edited documents (rows), their site index and shift: per site, every ``δ`` of its range in ``order``
    (or of ``deltas``) that the pads can take, spread over them in that order (``near``: nearest pad first;
    ``far``: the pads but the nearest, the row's first pad first)."""
    docs, which, shift = [], [], []
    for j, st in enumerate(sites):
        pads, lens = (st.pads, st.lens) if order == "near" else (st.pads[:0:-1], st.lens[:0:-1])
        lo, hi = (st.lo, st.hi) if order == "near" else (st.far_lo, st.far_hi)
        for d in range(lo, hi + 1) if deltas is None else deltas:
            new = spill(lens, d, max_pad)
            if new is None:
                continue
            doc = ids[st.b].copy()
            doc[pads] = [pad_id[int(n)] for n in new]
            docs.append(doc)
            which.append(j)
            shift.append(d)
    return np.asarray(docs), np.asarray(which, dtype=np.int64), np.asarray(shift, dtype=np.int64)


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


def key_tracks(model, control, lay, ids: np.ndarray, lab: dict, P: Pairs, layers, tables: dict | None,
               table_meta: dict, n_sites: int, batch_size: int,
               rng: np.random.Generator) -> dict[tuple[int, int], KeyTrack | None]:
    """:class:`KeyTrack` of every head of ``layers`` (module doc), ``control`` the random-init model of the same
    architecture; None for every head when no site has the room. ``tables`` are the qk pass's rotary tables of
    ``model`` by layer (None without rotary), ``table_meta`` the corpus's ``table`` record (pad ids, ``max_pad``,
    column gaps)."""
    max_pad, pad_id, D = int(table_meta["max_pad"]), pad_ids(table_meta), largest_shift(table_meta)
    heads = [(L, h) for L in layers for h in range(lay.n_heads)]
    matching = matching_sites(lab, P, max_pad)
    sites = track_sites(matching, max(table_meta["col_gap"]), D, n_sites, rng)
    if not sites:
        return {hd: None for hd in heads}
    far_sites = [st for st in sites if len(st.pads) >= 2 and st.far_lo <= -D and st.far_hi >= D]
    orders = {"near": sites, "far": far_sites} if far_sites else {"near": sites}
    rep = lay.n_heads // lay.n_kv_heads
    normed = arch.has_qk_norm(model)
    ctl_tables = {L: arch.rotary_tables(control, ids.shape[1], L) for L in layers} if tables is not None else None
    runs = {}
    for order, sts in orders.items():
        docs, which, shift = edits(ids, sts, order, pad_id, max_pad)
        got = {}
        for name, m, tab in (("model", model, tables), ("control", control, ctl_tables)):
            q, k = read(m, ids, sts, docs, which, layers, batch_size, normed)
            got[name] = (logits_of(m, q, k, sts, which, layers, rep, tab), k)
        runs[order] = (got, which, shift, [np.flatnonzero(which == j) for j in range(len(sts))])
    both = order_sites(matching, max_pad, D, ORDER_PAIRS_PER_SITE * n_sites, rng)
    peaks = {}
    for order in ("near", "far"):
        docs, which, shift = edits(ids, both, order, pad_id, max_pad, deltas=(-D, 0, D))
        q, k = read(model, ids, both, docs, which, layers, batch_size, normed)
        peaks[order] = (logits_of(model, q, k, both, which, layers, rep, tables), shift, which)
    out = {}
    for col, (L, h) in enumerate(heads):
        tracks = {}
        for order, (got, which, shift, rows) in runs.items():
            curves = {name: [got[name][1][L][r, h // rep] for r in rows] for name in got}
            tracks[order] = summarise(got["model"][0][:, col], got["control"][0][:, col], curves, shift, which,
                                      D, rng)
        pk = {order: peak_at(lg[:, col], shift, which, D) if both else float("nan")
              for order, (lg, shift, which) in peaks.items()}
        out[(L, h)] = KeyTrack(D=D, near=tracks["near"], far=tracks.get("far"), n_both=len(both),
                               peak_near_both=pk["near"], peak_far_both=pk["far"],
                               rings=any(t.rings_control_not >= KEY_TRACK_MIN_SHARE for t in tracks.values()))
    return out


def profile(values: np.ndarray, shift: np.ndarray, which: np.ndarray):
    """The shifts, the sites reaching each and the mean of ``values - values(δ = 0)`` over those sites."""
    zero = np.zeros(int(which.max()) + 1)
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


def band(track: Track, drop: float = KEY_TRACK_BAND_NATS, min_share: float = 0.25) -> tuple[int | None, int | None]:
    """The shifts around a track's top where its mean logit stays within ``drop`` nats of the top, read where at
    least ``min_share`` of its sites reach: ``(lo, hi)``, the last shifts inside on each side; ``None`` on a
    side whose track ends before the logit falls that far (the band is wider than the row allows). A count
    match that peaks has a band bounded on both sides, whatever its width; a ramp has one open side."""
    n = np.asarray(track.n)
    ok = n >= min_share * max(int(n.max()), 1)
    shifts, logit = np.asarray(track.shifts)[ok], np.asarray(track.logit)[ok]
    top = int(np.argmax(logit))
    out = logit < logit[top] - drop
    below, above = np.flatnonzero(out[:top]), np.flatnonzero(out[top:])
    lo = int(shifts[below[-1] + 1]) if len(below) else None
    hi = int(shifts[top + above[0] - 1]) if len(above) else None
    return lo, hi


def summarise(logit: np.ndarray, logit_ctl: np.ndarray, curves: dict, shift: np.ndarray, which: np.ndarray, D: int,
              rng: np.random.Generator) -> Track:
    """One order's :class:`Track` of one head from its edited keys' logits (model and control, one per edited
    document, each site's shifts in order), the keys' curves per site (``curves[name][site]``) and ``rng``, which
    draws the random walks (module doc)."""
    grid, n, mean = profile(logit, shift, which)
    _, _, mean_ctl = profile(logit_ctl, shift, which)
    rate = {name: float(np.mean(np.concatenate([key_angle(c[:-1, None], c[1:, None])[:, 0] for c in cs])))
            for name, cs in curves.items()}
    reads, walks = [], []
    for j, track in enumerate(curves["model"]):
        values = shift[which == j]
        reads.append(ringing.compare(track, values, curves["control"][j], values))
        walks.append(ringing.gated_ringing(rng.standard_normal(track.shape).cumsum(0), values)["rings"])

    def median(key, side):
        v = [r[side][key] for r in reads if r[side]["gate_open"]]
        return float(np.median(v)) if v else float("nan")

    return Track(n_sites=len(reads), shifts=[int(d) for d in grid], n=[int(x) for x in n],
                 logit=[float(x) for x in mean], logit_control=[float(x) for x in mean_ctl],
                 turn_rate=rate["model"], turn_rate_control=rate["control"],
                 gate_open=float(np.mean([r["model"]["gate_open"] for r in reads])),
                 sign_changes=median("sign_changes", "model"), sign_changes_control=median("sign_changes", "control"),
                 turns=median("turns", "model"), turns_control=median("turns", "control"),
                 rings_control_not=float(np.mean([r["model_rings_control_not"] and not w
                                                  for r, w in zip(reads, walks)])),
                 walk_rings=float(np.mean(walks)), peak=peak_at(logit, shift, which, D))
