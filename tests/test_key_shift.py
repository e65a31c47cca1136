"""The key-shift test (``linebreak.qk.key_shift``): an edit that moves only the previous row's matching column, and
the statistics that tell a peak at the key's column from a ramp, and a count query from a next-column query."""

import dataclasses

import numpy as np
import pytest

from linebreak.corpus.labels import labels_for_split
from linebreak.qk import keyclass
from linebreak.qk.collect import select_docs
from linebreak.qk.key_shift import KeyShift, edited, feasible, key_shift_tests, pad_ids, sites, summarise

KEYS = ["pad", "cell_start"]


@pytest.fixture(scope="module")
def corpus(brief_table):
    return brief_table[0]


@pytest.fixture(scope="module")
def model(brief_table):
    """A briefly trained table model (conftest): the tests below read what its heads compute, not how well."""
    return brief_table[1]


@pytest.mark.parametrize("keys", KEYS)
def test_an_edit_moves_the_key_and_nothing_outside_its_two_pads(corpus, keys):
    """Relabelled from scratch, an edited document has the same tokens but its two pads, the same number of
    them, and the key's column start moved by exactly ``δ``; every token before the first pad and from the
    second pad on keeps its count, and every token between them moves by ``δ``."""
    ids, lab = select_docs(corpus, "validation", 32)
    P = keyclass.pairs(lab, keys)
    S = sites(lab, P)
    assert len(S.b) > 20 and (S.before < S.s).all() and (S.s < S.after).all() and (S.s < S.t).all()
    max_pad, kv = corpus.table["max_pad"], keyclass.key_values(lab, keys)
    assert (kv[S.b, S.s] == S.pad + lab["count"][S.b, S.t]).all()  # the key marks the query's next column start
    split = corpus.splits["validation"]
    for d in (1, 3):
        for delta in (d, -d):
            F = S.take(feasible(S, d, max_pad))
            assert len(F.b) > 0
            new = edited(ids, F, np.full(len(F.b), delta), pad_ids(corpus.table))
            changed = new != ids[F.b]
            assert (changed.sum(1) == 2).all() and changed[np.arange(len(F.b)), F.before].all()
            nl = labels_for_split(new, split.width[F.b], corpus.token_lengths, corpus.newline_id,
                                  {k: v[F.b] for k, v in split.layout.items()}, corpus.pad_by_id)
            old = {k: v[F.b] for k, v in lab.items()}
            rows = np.arange(len(F.b))
            np.testing.assert_array_equal(nl["count"][rows, F.s], old["count"][rows, F.s] + delta)  # the key
            pos = np.arange(ids.shape[1])[None]
            between = (pos >= F.before[:, None]) & (pos < F.after[:, None])
            np.testing.assert_array_equal(nl["count"] - old["count"], np.where(between, delta, 0))
            np.testing.assert_array_equal(nl["cell_index"], old["cell_index"])  # the ordinal reading is held


def test_the_base_logits_are_the_pair_logits_of_the_qk_pass(model, corpus):
    """Unedited, the test's logit of a (query, key) pair is the qk pass's own logit of that pair (which is tested
    against the attention pattern in test_qk_columns). Both are float64 sums of the same float32 activations, here
    from a batch cut at its last position: equal to float32 rounding of the activations (1e-4, against logits of
    a few nats)."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import check_model
    from linebreak.qk.config import QKConfig

    net, tok = model
    lay = check_model(net, tok, corpus)
    cfg = QKConfig(keys="pad", n_docs=16)
    ids, lab = select_docs(corpus, "validation", 16)
    data = keyclass.collect(net, lay, ids, lab, cfg, arch.is_rotary(net))
    S = sites(lab, data.pairs)
    from linebreak.qk import key_shift

    got = key_shift.capture(net, ids[S.b], {"q": S.t, "k": S.s}, [1], 8)
    q, k = got["q"], got["k"]
    got = keyclass.pair_logits(q[1], k[1], S.t - S.s, lay.n_heads // lay.n_kv_heads, data.tables[1],
                               arch.score_divisor(net, 1))
    P = data.pairs
    index = {(b, t, s): j for j, (b, t, s) in enumerate(zip(P.b, P.t, P.s))}
    want = data.scores.logit[1][[index[(b, t, s)] for b, t, s in zip(S.b, S.t, S.s)]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("keys", KEYS)
def test_first_layer_keys_do_not_move_and_later_ones_do(model, corpus, keys):
    """The edit changes no token at the key, and a first-layer key is its own token's projection (no positional
    embedding in a rotary model's residual stream, rotary applied after ``hook_k``): every layer-0 head reads a
    peak and a slope of exactly zero. Layer 1 keys have read the moved pads, so their logits move: by far more than
    the float32 rounding of a logit of a few nats (about 1e-7), if only a little in a model trained 30 steps."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import check_model

    net, tok = model
    lay = check_model(net, tok, corpus)
    ids, lab = select_docs(corpus, "validation", 32)
    P = keyclass.pairs(lab, keys)
    tables = {L: arch.rotary_tables(net, ids.shape[1], L) for L in (0, 1)}
    out = key_shift_tests(net, lay, ids, lab, P, [0, 1], tables, corpus.table, 64, 16, np.random.default_rng(0))
    assert set(out) == {(L, h) for L in (0, 1) for h in range(lay.n_heads)}
    D = min(corpus.table["col_gap"]) // 2
    for (L, _), r in out.items():
        assert r.shifts == list(range(1, D + 1)) and all(0 < n <= 64 for n in r.n)
        if L == 0:
            assert r.peak == [0.0] * D and r.slope == [0.0] * D and r.key_angle == [0.0] * D and not r.peaks
        else:
            assert all(0 < a < np.pi for a in r.key_angle)
    assert max(abs(s) for (L, _), r in out.items() if L == 1 for s in r.slope) > 1e-5


def planted(logit_of, n_docs=40, per_doc=8, D=3, seed=0):
    """``summarise`` of one planted head whose logit is ``logit_of(delta, pad, first_row)`` plus a little noise; a
    quarter of the pairs have their key on the first row."""
    rng = np.random.default_rng(seed)
    docs = np.repeat(np.arange(n_docs), per_doc)
    pad = rng.integers(2, 9, size=len(docs))
    first = np.arange(len(docs)) % 4 == 0
    noise = lambda: 0.01 * rng.standard_normal((len(docs), 1))  # noqa: E731
    base = [logit_of(0, pad, first)[:, None] + noise() for _ in range(D)]
    turned = [np.full((len(docs), 1), 0.1 * d) for d in range(1, D + 1)]
    plus = [logit_of(d, pad, first)[:, None] + noise() for d in range(1, D + 1)]
    minus = [logit_of(-d, pad, first)[:, None] + noise() for d in range(1, D + 1)]
    return summarise(base, plus, minus, turned, docs, pad, first, np.random.default_rng(1))[0]


def test_a_peak_at_the_key_passes_and_a_ramp_does_not():
    peak = planted(lambda d, pad, first: -0.4 * abs(d) + 0 * pad)
    assert peak.peaks and peak.peak[-1] == pytest.approx(1.2, abs=0.02)
    assert peak.peak_ci[0] < peak.peak[-1] < peak.peak_ci[1] and peak.peak_ci[0] > 0
    assert peak.slope[-1] == pytest.approx(0.0, abs=0.02) and peak.key_angle == pytest.approx([0.1, 0.2, 0.3])
    ramp = planted(lambda d, pad, first: 0.7 * d + 0 * pad)
    assert not ramp.peaks and ramp.peak[-1] == pytest.approx(0.0, abs=0.02)
    assert ramp.slope == pytest.approx([0.7] * 3, abs=0.02)
    small = planted(lambda d, pad, first: -0.1 * abs(d) + 0 * pad)  # a real peak below the rule's 0.5 nat
    assert not small.peaks and small.peak_ci[0] > 0


def test_key_angle_is_the_angle_between_the_keys():
    from linebreak.qk.key_shift import key_angle

    a = np.array([[[1.0, 0.0]], [[2.0, 0.0]]])
    b = np.array([[[0.0, 3.0]], [[1.0, 1.0]]])
    np.testing.assert_allclose(key_angle(a, b), [[np.pi / 2], [np.pi / 4]])
    assert key_angle(a, a).max() == 0.0


def test_pad_corr_tells_a_count_query_from_a_next_column_query():
    """A query that knows only its count peaks at count + 5, so its key at the next column start (count + pad)
    gains from moving left the longer the pad: a strongly negative ``pad_corr``. A query that carries the next
    column start peaks there whatever the pad: none."""
    count_query = planted(lambda d, pad, first: -0.2 * (pad + d - 5.0) ** 2)
    target_query = planted(lambda d, pad, first: -0.2 * d ** 2 + 0 * pad)
    assert count_query.pad_corr < -0.9
    assert abs(target_query.pad_corr) < 0.3 and target_query.peaks


def test_the_first_row_peak_separates_a_comparison_from_an_alignment_check():
    """A key that peaks only because it lines up with the rows above it (none above the first row) peaks over
    all pairs but not over the first-row ones; a comparison with the query peaks on both."""
    aligned = planted(lambda d, pad, first: np.where(first, 0.0, -0.4 * abs(d)) + 0 * pad)
    compared = planted(lambda d, pad, first: -0.4 * abs(d) + 0 * pad)
    assert aligned.n_first_row == compared.n_first_row == 80
    assert aligned.peak[-1] == pytest.approx(0.9, abs=0.02) and aligned.peak_first_row == pytest.approx(0, abs=0.02)
    assert compared.peak_first_row == pytest.approx(1.2, abs=0.02)


def test_a_column_record_carries_the_key_shift_and_reads_without_it(model, corpus, tmp_path):
    import json

    from linebreak.qk.columns import ColumnQKResult, column_analysis
    from linebreak.qk.config import QKConfig

    net, tok = model
    r = column_analysis(net, corpus, QKConfig(keys="pad", n_docs=32, min_per_value=4, min_values=3,
                                              key_shift_pairs=32), tok)
    assert all(isinstance(h.key_shift, KeyShift) for h in r.heads)
    r.save(tmp_path / "qk.json")
    data = json.loads((tmp_path / "qk.json").read_text())
    back = ColumnQKResult.from_json(data)
    np.testing.assert_equal([dataclasses.asdict(h.key_shift) for h in back.heads],
                            [dataclasses.asdict(h.key_shift) for h in r.heads])  # nan (layer 0's pad_corr) too
    for h in data["heads"]:
        del h["key_shift"]  # a record written before the test existed
    assert ColumnQKResult.from_json(data).heads[0].key_shift is None
    off = column_analysis(net, corpus, QKConfig(keys="pad", n_docs=32, min_per_value=4, min_values=3,
                                                key_shift_pairs=0), tok)
    assert all(h.key_shift is None for h in off.heads)
    assert [h.qk for h in off.heads] == [h.qk for h in r.heads]  # the test draws from its own generator


def test_key_shift_pairs_must_not_be_negative():
    from linebreak.io import UserError
    from linebreak.qk.config import QKConfig

    with pytest.raises(UserError, match="key_shift_pairs"):
        QKConfig(keys="pad", key_shift_pairs=-1)
