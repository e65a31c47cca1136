"""The key track (``linebreak.qk.key_track``): one document's matching key moved over its row's whole pad range by
editing only the pads before it, and the curve its head's key draws, read behind the ringing gate."""

import dataclasses

import numpy as np
import pytest

from linebreak.corpus.labels import labels_for_split
from linebreak.qk import keyclass
from linebreak.qk.collect import select_docs
from linebreak.qk.key_shift import pad_ids
from linebreak.qk.key_track import KeyTrack, Track, band, edits, key_tracks, matching_sites, site, spill, track_sites


@pytest.fixture(scope="module")
def corpus(brief_table):
    return brief_table[0]


@pytest.fixture(scope="module")
def trained(brief_table):
    """A briefly trained table model and its folder (conftest): the tests read what its heads compute, not how
    well."""
    return brief_table[1], brief_table[2]


@pytest.fixture(scope="module")
def control(trained, corpus):
    from linebreak.capture.control import control_model, trained_config
    from linebreak.hooks.load import ensure_eager

    (net, _), path = trained
    ctl = control_model(net, corpus, trained_config(path))
    ensure_eager(ctl)
    return ctl


def test_spill_moves_the_whole_shift_in_order_and_within_bounds():
    lens = np.array([3, 14, 2])
    np.testing.assert_array_equal(spill(lens, 5, 15), [8, 14, 2])  # the first pad takes it all
    np.testing.assert_array_equal(spill(lens, 14, 15), [15, 15, 3])  # then the next ones
    np.testing.assert_array_equal(spill(lens, -13, 15), [2, 2, 2])  # down to MIN_PAD each
    assert spill(lens, -14, 15) is None and spill(lens, 28, 15) is None  # more than the pads can take
    np.testing.assert_array_equal(spill(lens, 0, 15), lens)


@pytest.mark.parametrize("order", ["near", "far"])
def test_an_edit_moves_the_key_by_delta_and_only_pads_before_it_change(corpus, order):
    """Relabelled from scratch, every edited document has the key's count moved by exactly ``δ``, the same tokens
    but some pads before the key on its row, and every token before the row, and from the key on, as it was.
    In ``far`` order a small shift is taken by the row's first pad, so the key keeps its distance to the cell
    before it; in ``near`` order by the pad just before the key."""
    ids, lab = select_docs(corpus, "validation", 32)
    P = keyclass.pairs(lab, "pad")
    D, max_pad = 2, corpus.table["max_pad"]
    sites = track_sites(matching_sites(lab, P, max_pad), 10, D, 16, np.random.default_rng(0))
    assert len(sites) >= 8 and all(st.lo <= -D and st.hi >= D and st.hi - st.lo >= 10 for st in sites)
    if order == "far":
        sites = [st for st in sites if len(st.pads) >= 2 and st.far_hi - st.far_lo >= 4]
        assert len(sites) >= 4
    docs, which, shift = edits(ids, sites, order, pad_ids(corpus.table), max_pad)
    span = [(st.lo, st.hi) if order == "near" else (st.far_lo, st.far_hi) for st in sites]
    assert len(docs) == sum(hi - lo + 1 for lo, hi in span)  # every shift of the range fits
    split = corpus.splits["validation"]
    b = np.array([sites[j].b for j in which])
    s = np.array([sites[j].s for j in which])
    new = labels_for_split(docs, split.width[b], corpus.token_lengths, corpus.newline_id,
                           {k: v[b] for k, v in split.layout.items()}, corpus.pad_by_id)
    rows = np.arange(len(docs))
    np.testing.assert_array_equal(new["count"][rows, s], lab["count"][b, s] + shift)
    pos = np.arange(ids.shape[1])[None]
    changed = docs != ids[b]
    assert not (changed & (pos >= s[:, None])).any()  # nothing from the key on
    assert (changed <= (lab["is_pad"][b].astype(bool) & (lab["line_index"][b] == lab["line_index"][b, s][:, None])))\
        .all()  # only pads of the key's row
    nearest = np.array([sites[j].pads[0] for j in which])
    if order == "far":  # the pad just before the key is never touched: the key keeps its place beside its cell
        assert not changed[rows, nearest].any()
        np.testing.assert_array_equal(new["count"][rows, nearest], lab["count"][b, nearest] + shift)
    one = shift == 1
    edited = [int(np.flatnonzero(c)[0]) for c in changed[one]]
    want = [sites[j].pads[0] if order == "near" else sites[j].pads[-1] for j in which[one]]  # listed nearest first
    full = [sites[j].lens[0 if order == "near" else -1] == max_pad for j in which[one]]
    assert [e == w for e, w, f in zip(edited, want, full) if not f] == [True] * (len(full) - sum(full))


def test_the_near_track_at_one_is_the_key_shift_for_the_key(trained, corpus):
    """The key shift also shortens the pad after the key, which the key cannot see (attention is causal): its key
    at ``±1`` is the near track's, to float32 rounding of the same computation on the same prefix (1e-5 of the
    key's scale)."""
    from linebreak.qk import key_shift as ks
    from linebreak.qk.key_track import read

    (net, _), _ = trained
    ids, lab = select_docs(corpus, "validation", 32)
    P = keyclass.pairs(lab, "pad")
    S = ks.sites(lab, P)
    S = S.take(ks.feasible(S, 1, corpus.table["max_pad"]))
    shifted = ks.edited(ids, S, np.ones(len(S.b), dtype=int), pad_ids(corpus.table))
    k_shift = ks.capture(net, shifted, {"k": S.s}, [1], 16)["k"][1]
    chosen = [site(lab, int(b), int(t), int(s), corpus.table["max_pad"]) for b, t, s in zip(S.b, S.t, S.s)]
    assert len(chosen) >= 8 and all(st.pads[0] == before for st, before in zip(chosen, S.before))
    docs, which, _ = edits(ids, chosen, "near", pad_ids(corpus.table), corpus.table["max_pad"], deltas=(1,))
    _, k_track = read(net, ids, chosen, docs, which, [1], 16, False)
    scale = np.abs(k_shift).max()
    np.testing.assert_allclose(k_track[1], k_shift, atol=1e-5 * scale)


def test_tracks_of_every_head_first_layer_still_later_ones_move(trained, corpus, control):
    """Layer-0 keys are their own token's projection, and the key token never changes: their tracks stand still
    (turn rate 0, the gate closed, no peak). Layer-1 keys have read the moved pads and turn. The random-init
    control's pad embeddings are unrelated draws, so its tracks jump: not smooth, the gate closed."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import check_model

    (net, tok), _ = trained
    lay = check_model(net, tok, corpus)
    ids, lab = select_docs(corpus, "validation", 32)
    P = keyclass.pairs(lab, "pad")
    tables = {L: arch.rotary_tables(net, ids.shape[1], L) for L in (0, 1)}
    out = key_tracks(net, control, lay, ids, lab, P, [0, 1], tables, corpus.table, 8, 16, np.random.default_rng(0))
    assert set(out) == {(L, h) for L in (0, 1) for h in range(lay.n_heads)}
    for (L, _), r in out.items():
        assert isinstance(r, KeyTrack) and r.D == min(corpus.table["col_gap"]) // 2 and r.far is not None
        for t in (r.near, r.far):
            assert t.shifts[0] <= -r.D and t.shifts[-1] >= r.D and t.logit[t.shifts.index(0)] == 0.0
            assert t.n[t.shifts.index(0)] == t.n_sites == max(t.n)
        assert r.near.n_sites == 8 and r.far.n_sites <= 8 and 0 < r.n_both <= 8 * 8
        if L == 0:
            for t in (r.near, r.far):
                assert t.turn_rate == 0.0 and t.gate_open == 0.0 and t.peak == 0.0
            assert not r.rings and r.peak_near_both == 0.0 == r.peak_far_both
        else:
            assert 0 < r.near.turn_rate < np.pi and 0 < r.far.turn_rate < np.pi and r.near.turn_rate_control > 0
            assert np.isnan(r.near.sign_changes_control)  # no control track passes the gate


def test_a_column_record_carries_the_key_track_and_reads_without_it(trained, corpus, control, tmp_path):
    import json

    from linebreak.qk.columns import ColumnQKResult, column_analysis
    from linebreak.qk.config import QKConfig

    (net, tok), _ = trained
    cfg = QKConfig(keys="pad", n_docs=32, min_per_value=4, min_values=3, key_shift_pairs=16, key_track_sites=4)
    r = column_analysis(net, corpus, cfg, tok, control=control)
    assert all(isinstance(h.key_track, KeyTrack) for h in r.heads)
    r.save(tmp_path / "qk.json")
    data = json.loads((tmp_path / "qk.json").read_text())
    back = ColumnQKResult.from_json(data)
    np.testing.assert_equal([dataclasses.asdict(h.key_track) for h in back.heads],
                            [dataclasses.asdict(h.key_track) for h in r.heads])  # nan medians too
    for h in data["heads"]:
        del h["key_track"]  # a record written before the track existed
    assert ColumnQKResult.from_json(data).heads[0].key_track is None
    off = column_analysis(net, corpus, cfg, tok)  # no control: no tracks
    assert all(h.key_track is None for h in off.heads)
    np.testing.assert_equal([dataclasses.asdict(h.key_shift) for h in off.heads],
                            [dataclasses.asdict(h.key_shift) for h in r.heads])  # the track has its own generator


def test_key_track_sites_must_not_be_negative():
    from linebreak.io import UserError
    from linebreak.qk.config import QKConfig

    with pytest.raises(UserError, match="key_track_sites"):
        QKConfig(keys="pad", key_track_sites=-1)


def planted(track_of, n_sites=6, lo=-20, hi=20, seed=0):
    """``summarise`` of one planted head: every site's key draws ``track_of(u)`` (``u`` from 0 to 1 over the
    shifts ``lo..hi``), its logit peaks at ``δ = 0`` by 0.1 nat per character, and the control's keys are noise."""
    from linebreak.qk.key_track import summarise

    rng = np.random.default_rng(seed)
    shifts = np.arange(lo, hi + 1)
    shift, which = np.tile(shifts, n_sites), np.repeat(np.arange(n_sites), len(shifts))
    u = (shifts - lo) / (hi - lo)
    curves = {"model": [track_of(u) for _ in range(n_sites)],
              "control": [rng.standard_normal((len(u), 16)) for _ in range(n_sites)]}
    return summarise(-0.1 * np.abs(shift).astype(float), np.zeros(len(shift)), curves, shift, which, 3,
                     np.random.default_rng(1))


def test_a_planted_helix_track_rings_and_a_ramp_does_not():
    """A key that winds twice round a circle as its column moves rings behind the gate, where the noise control
    and the random walks do not, and turns ``4 pi / 40`` per character; a key that moves along a line does not
    ring. The logit profile and the peak are the planted ones."""
    def helix(u):
        return np.column_stack([np.cos(4 * np.pi * u), np.sin(4 * np.pi * u), np.zeros((len(u), 14))])

    def ramp(u):
        return np.column_stack([u, np.ones(len(u)), np.zeros((len(u), 14))])

    ring = planted(helix)
    assert ring.rings_control_not == 1.0 and ring.walk_rings == 0.0 and ring.gate_open == 1.0
    assert ring.sign_changes >= 3 and ring.turns == pytest.approx(2.0, abs=0.05) and np.isnan(ring.turns_control)
    assert ring.turn_rate == pytest.approx(4 * np.pi / 40, rel=1e-9)
    assert ring.peak == pytest.approx(0.3) and ring.n_sites == 6
    assert ring.shifts == list(range(-20, 21)) and ring.n == [6] * 41
    np.testing.assert_allclose(ring.logit, -0.1 * np.abs(np.arange(-20, 21)))
    line = planted(ramp)
    assert line.rings_control_not == 0.0 and line.gate_open == 1.0 and line.sign_changes == 1


def test_the_band_is_the_count_window_within_a_nat_of_the_top():
    """A flat top with quadratic walls is bounded on both sides at the last shifts within 1 nat; a ramp leaves its
    rising side open; shifts that few sites reach are not read."""
    shifts = np.arange(-30, 41)
    walls = -np.where(shifts < 0, (shifts / 6.0) ** 2, np.where(shifts > 20, ((shifts - 20) / 6.0) ** 2, 0.0))
    n = np.where(np.abs(shifts) > 35, 1, 32)

    def track(logit):
        nan = float("nan")
        return Track(n_sites=32, shifts=shifts.tolist(), n=n.tolist(), logit=list(logit), logit_control=list(logit),
                     turn_rate=nan, turn_rate_control=nan, gate_open=1.0, sign_changes=nan,
                     sign_changes_control=nan, turns=nan, turns_control=nan, rings_control_not=0.0, walk_rings=0.0,
                     peak=nan)

    assert band(track(walls)) == (-6, 26)  # (6/6)^2 = 1 nat: the last shift inside on each side
    ramp = 0.1 * shifts
    assert band(track(ramp)) == (25, None)  # 0.1 * (35 - 25) = 1: shifts past 35 have too few sites
    spike = walls.copy()
    spike[shifts == 38] = 5.0  # one site's outlier past the read range moves nothing
    assert band(track(spike)) == (-6, 26)
