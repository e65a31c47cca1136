"""The twist test over a table's column starts (``qk --keys pad|cell_start``) and its key ablations."""

import dataclasses
import json

import numpy as np
import pytest

from linebreak.corpus.store import generate_corpus, load_corpus
from linebreak.presets import TRAIN
from linebreak.qk import keyclass
from linebreak.qk.collect import select_docs
from linebreak.qk.columns import ColumnQKResult, additive_fit, column_analysis, previous_row_key_side
from linebreak.qk.config import QKConfig

QK = QKConfig(keys="pad", n_docs=32, min_per_value=4, min_values=3)


@pytest.fixture(scope="module")
def table_corpus(tmp_path_factory):
    return generate_corpus(TRAIN["table-tiny"].data, tmp_path_factory.mktemp("c") / "c")


@pytest.fixture(scope="module")
def table_model(table_corpus, tmp_path_factory):
    from linebreak.train.loop import train

    p = TRAIN["table-tiny"]
    cfg = dataclasses.replace(p.train, optim=dataclasses.replace(p.train.optim, pad_loss_weight=3.0, steps=200))
    out = tmp_path_factory.mktemp("m") / "m"
    train(cfg, load_corpus(table_corpus), out)
    return out


@pytest.fixture(scope="module")
def loaded(table_model, table_corpus):
    from linebreak.hooks.load import load_model

    model, tok = load_model(table_model)
    return model, tok, load_corpus(table_corpus)


@pytest.mark.parametrize("keys", ["pad", "cell_start"])
def test_every_pad_decision_has_its_next_column_start_among_the_previous_row_keys(table_corpus, keys):
    corpus = load_corpus(table_corpus)
    ids, lab = select_docs(corpus, "validation", 32)
    P = keyclass.pairs(lab, keys)
    line = lab["line_index"]
    assert (P.s < P.t).all() and (line[P.b, P.s] < line[P.b, P.t]).all() and (P.rows >= 1).all()
    kv = keyclass.key_values(lab, keys)
    assert (kv[lab["cell_start"] if keys == "cell_start" else lab["is_pad"]] >= 0).all()
    # no empty cells in this corpus: the row above shows every column, so each query finds its match there
    q = keyclass.query_tokens(lab)
    matched = set(zip(P.b[(P.rows == 1) & (P.k == P.target)], P.t[(P.rows == 1) & (P.k == P.target)]))
    assert matched == set(zip(*np.nonzero(q))), "a pad decision without its column start in the row above"
    assert (P.target > P.i).all()  # the pad moves the count on to the next column start
    # and "the same cell of an earlier row" names exactly the keys at the next column start
    np.testing.assert_array_equal(P.k_cell == P.cell_target, P.k == P.target)


@pytest.mark.parametrize("keys", ["pad", "cell_start"])
def test_count_and_ordinal_shares_tell_the_two_readings_apart(tmp_path, keys):
    """On shifted documents a head that attends to the keys at the next column start reads count-only share 1
    and ordinal-only share 0 where the two disagree; a head that attends to the same cell of the row above, the
    reverse."""
    from linebreak.qk.columns import attention_stats

    cfg = dataclasses.replace(TRAIN["table-tiny"].data, empty_cells=1.0, n_train=8, n_val=24)
    corpus = load_corpus(generate_corpus(cfg, tmp_path / "c"))
    ids, lab = select_docs(corpus, "validation", 24)
    P = keyclass.pairs(lab, keys)
    q = np.unique(P.b * 100003 + P.t, return_inverse=True)[1]

    def per_query(w):  # attention spread evenly over a query's keys where w holds
        w = w.astype(float)
        tot = np.bincount(q, w)[q]
        return np.divide(w, tot, out=np.zeros(len(w)), where=tot > 0)

    grid = (np.unique(P.i), np.unique(P.k))
    count = attention_stats(np.zeros(len(q)), per_query(P.k == P.target), P, *grid, 1)
    cells = attention_stats(np.zeros(len(q)), per_query(P.k_cell == P.cell_target), P, *grid, 1)
    assert count.n_disagree == cells.n_disagree > 20
    assert count.count_only_share > 0.3 and count.ordinal_only_share == 0
    assert cells.ordinal_only_share > 0.3 and cells.count_only_share == 0


def test_pair_logits_are_what_the_head_scores(loaded):
    """The logit kept per (query, key) pair is the head's own: within one query, logit differences are the
    log-ratios of the attention pattern the model computed (float32 softmax: 1e-3 nats is far above its error
    for probabilities above 1e-6)."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import check_model

    model, tok, corpus = loaded
    lay = check_model(model, tok, corpus)
    ids, lab = select_docs(corpus, "validation", 16)
    d = keyclass.collect(model, lay, ids, lab, dataclasses.replace(QK, n_docs=16), arch.is_rotary(model))
    P = d.pairs
    same = (P.b[1:] == P.b[:-1]) & (P.t[1:] == P.t[:-1])
    for L in d.scores.logit:
        lg, pr = d.scores.logit[L], d.scores.prob[L]
        ok = same[:, None] & (pr[1:] > 1e-6) & (pr[:-1] > 1e-6)
        gap = np.abs((lg[1:] - lg[:-1]) - (np.log(pr[1:]) - np.log(pr[:-1])))[ok]
        assert ok.sum() > 100 and gap.max() < 1e-3, (L, gap.max())
    # the query sums hold one row per previous-row pair, the key sums one per key token
    assert d.halves.q_n.sum() == (P.rows == 1).sum()
    assert d.halves.k_n.sum() == (keyclass.key_values(lab, "pad") >= 0).sum()


def test_column_analysis_judges_every_head_and_round_trips(loaded, tmp_path):
    model, tok, corpus = loaded
    r = column_analysis(model, corpus, QK, tok)
    lay = r.layout
    assert len(r.heads) == lay.n_layers * lay.n_heads and [h.rank for h in r.heads] == list(range(len(r.heads)))
    scores = [h.score for h in r.heads]
    assert scores == sorted(scores, reverse=True)
    assert r.column_head == max(r.heads, key=lambda h: h.attention.match_share).name
    for h in r.heads:
        a = h.attention
        assert 0 <= a.match_share <= a.key_mass <= 1 + 1e-9
        assert 0 <= a.count_offset_eta2 <= 1 and 0 <= a.token_offset_eta2 <= 1
        assert a.n_disagree == 0 and np.isnan([a.count_only_share, a.ordinal_only_share]).all()  # no empty cells
    assert r.verdict.split_half.head == r.verdict.best_head and len(r.verdict.split_half.halves) == 2
    assert r.n_pairs > r.n_queries > 0 and r.query_frame.startswith("queries rotated")
    assert [g.name for g in r.geometry] == [t.name for t in r.top]
    for g in r.geometry:  # each side over a run of consecutive values, its spectrum a share
        for side in (g.query, g.key):
            assert (np.diff(side.values) == 1).all() and 0 < side.pc1 <= side.top6 <= 1 + 1e-12
            assert side.gate_open or side.sign_changes == 0
            assert (side.turns is None) == (not side.gate_open) and side.ripples >= 0
    r.save(tmp_path / "qk.json")
    back = ColumnQKResult.load(tmp_path / "qk.json")
    assert back.verdict.statement == r.verdict.statement
    np.testing.assert_equal(dataclasses.asdict(back.heads[0].attention), dataclasses.asdict(r.heads[0].attention))


def test_additive_fit_finds_the_planted_interaction():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=9)
    S = a[:, None] + b[None, :]
    n = np.ones_like(S)
    n[rng.random(S.shape) < 0.3] = 0  # unobserved cells
    assert additive_fit(S, n, 1) < 1e-20
    inter = rng.normal(size=S.shape)
    inter -= inter.mean(0, keepdims=True) + inter.mean(1, keepdims=True) - inter.mean()  # a pure interaction
    full = S + inter
    want = (inter**2).sum() / ((full - full.mean()) ** 2).sum()
    assert additive_fit(full, np.ones_like(S), 1) == pytest.approx(want, rel=1e-9)


def _pairs(k, k_col, i, q_col):
    n = len(k)
    z = np.zeros(n, dtype=np.int64)
    return keyclass.Pairs(b=z, t=np.arange(n) + 100, s=np.arange(n), i=i, k=k, target=z, q_col=q_col, k_col=k_col,
                          rows=z + 1, k_cell=k_col, cell_target=q_col)


def test_previous_row_key_side_moves_with_the_column_start_not_its_index():
    rng = np.random.default_rng(1)
    n = 4000
    k_col, q_col, i = rng.integers(0, 3, n), rng.integers(0, 3, n), rng.integers(5, 8, n)
    k = 10 * k_col + rng.integers(0, 6, n)  # the same column index starts at several places
    P = _pairs(k, k_col, i, q_col)
    by_start = np.exp(-((k - i - 10) ** 2) / 8.0) + 0.01 * rng.random(n)
    by_index = (k_col == q_col + 1) + 0.01 * rng.random(n)
    assert previous_row_key_side(by_start, P, np.random.default_rng(0)).moves
    assert not previous_row_key_side(by_index, P, np.random.default_rng(0)).moves


def test_resampling_draws_from_the_same_or_only_other_groups():
    import torch

    from linebreak.causal.keys import resample_rows

    pool = torch.arange(12.0)[:, None].repeat(1, 2)
    pool_groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    groups = torch.tensor([[0, 1, 2, -1] * 5])
    mask = groups >= 0
    k = torch.full((1, 20, 2), -5.0)
    gen = torch.Generator().manual_seed(0)
    same = resample_rows(k, mask, pool, gen, groups, pool_groups)
    other = resample_rows(k, mask, pool, gen, groups, pool_groups, same=False)
    drawn_same, drawn_other = pool_groups[same[0, :, 0].long()[mask[0]]], pool_groups[other[0, :, 0].long()[mask[0]]]
    assert (drawn_same == groups[mask]).all() and (drawn_other != groups[mask]).all()
    assert (same[~mask] == -5).all() and (other[~mask] == -5).all()


def test_column_key_ablation_on_a_trained_table_model(loaded):
    from linebreak.causal.columns import column_causal, pad_loss
    from linebreak.causal.config import CausalConfig
    from linebreak.hooks.interventions import edit_keys

    model, tok, corpus = loaded
    r = column_analysis(model, corpus, QK, tok)
    cfg = CausalConfig(n_docs=32, keys="pad")
    res = column_causal(model, corpus, r, cfg, tok)
    ids, lab = select_docs(corpus, "validation", 32)
    base = pad_loss(model, ids, lab, 16)
    h = r.head(res.heads[0].head)
    with edit_keys(model, h.layer, h.head, lambda k, x: k):  # an edit that changes nothing changes nothing
        assert pad_loss(model, ids, lab, 16) == base
    assert {a.head for a in res.heads} == {r.verdict.best_head, r.column_head}
    for a in res.heads:
        assert a.base_pad_loss == base
        assert np.isfinite([a.head_removed, a.mean, a.resample_same_column, a.resample_other_column]).all()
        assert np.isfinite(a.resample_same_document) and 0 < a.same_document_keys <= 1
        if a.head_removed > 1e-9:
            assert a.same_column_share == pytest.approx(a.resample_same_column / a.head_removed)
            assert a.same_document_share == pytest.approx(a.resample_same_document / a.head_removed)


def test_same_document_partners_share_document_and_column_and_are_never_the_key_itself():
    from linebreak.causal.columns import same_document_partners

    doc = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    col = np.array([5, 9, 5, 5, 5, 9, 9, 5])
    p = same_document_partners(doc, col, seed=0)
    alone = np.array([False, True, False, False, True, False, False, True])  # no other key of its doc and column
    assert (p[alone] == -1).all() and (p[~alone] >= 0).all()
    j = np.flatnonzero(~alone)
    assert (p[j] != j).all() and (doc[p[j]] == doc[j]).all() and (col[p[j]] == col[j]).all()
    np.testing.assert_array_equal(p, same_document_partners(doc, col, seed=0))  # seeded
    draws = np.stack([same_document_partners(doc, col, seed=s)[0] for s in range(200)])
    assert set(draws.tolist()) == {2, 3}  # every other member is drawn


def test_key_classes_refuse_a_prose_corpus(cli, trained, tmp_path):
    root, _, _ = trained
    rc, out, err = cli("qk", "--model", root / "model", "--corpus", root / "corpus", "--keys", "pad",
                       "--out", tmp_path / "q", "--figures", tmp_path / "f")
    assert rc == 2 and "table corpus" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q" / "qk.json").exists()


def test_qk_and_causal_commands_with_pad_keys(cli, table_model, table_corpus, tmp_path):
    rc, out, err = cli("qk", "--model", table_model, "--corpus", table_corpus, "--keys", "pad", "--n-docs", "32",
                       "--min-per-value", "4", "--out", tmp_path / "q", "--figures", tmp_path / "f")
    assert rc == 0, err
    assert "column head" in out and (tmp_path / "q" / "qk.json").exists() and list((tmp_path / "f").glob("*.png"))
    record = json.loads((tmp_path / "q" / "qk.json").read_text())  # the command built the control for the tracks
    assert all(h["key_track"]["near"]["n_sites"] > 0 for h in record["heads"])
    assert (tmp_path / "f" / "qk_key_tracks.png").exists()
    rc, out, err = cli("causal", "--model", table_model, "--corpus", table_corpus, "--keys", "pad", "--n-docs", "32",
                       "--qk", tmp_path / "q" / "qk.json", "--out", tmp_path / "c")
    assert rc == 0, err
    assert "resampled from the same column" in out and (tmp_path / "c" / "causal.json").exists()
    rc, out, err = cli("causal", "--model", table_model, "--corpus", table_corpus, "--keys", "cell_start",
                       "--qk", tmp_path / "q" / "qk.json", "--out", tmp_path / "c2")
    assert rc == 2 and "--keys pad, not cell_start" in err


def test_the_newline_test_reads_only_the_prose_of_a_mixture(table_corpus, tmp_path):
    from linebreak.io import UserError
    from linebreak.qk.collect import prose_documents

    ids, lab = select_docs(load_corpus(table_corpus), "validation", 32)
    with pytest.raises(UserError, match="all tables"):
        prose_documents(ids, lab)
    mix = dataclasses.replace(TRAIN["table-tiny"].data, table_fraction=0.5, widths=tuple(range(20, 30)), n_val=24)
    ids, lab = select_docs(load_corpus(generate_corpus(mix, tmp_path / "mix")), "validation", 24)
    tables = lab["cell_start"].any(axis=1)
    assert 0 < tables.sum() < len(ids)
    kept, kept_lab = prose_documents(ids, lab)
    assert (kept == ids[~tables]).all() and not kept_lab["cell_start"].any()


def test_a_qk_norm_head_is_judged_on_its_normed_sides(table_corpus, tmp_path):
    """A q/k-norm head (Qwen3) compares its *normed* queries and keys, so its sides and mean logits must not move
    when its projections are scaled (the norm undoes the scale; only its eps sees it, a relative 1e-5 here). Read
    through ``W_Q`` / ``W_K`` instead, the logits would grow 900 times. With the gains fixed at a bound ``B``, every
    head's predicted mean logit then stays within [-B, B], as every real logit does."""
    import torch

    from linebreak.hooks.load import load_model
    from linebreak.train.loop import train

    p = TRAIN["table-tiny"]
    model_cfg = dataclasses.replace(p.train.model, arch="qwen3", qk_logit_bound=4.0)
    cfg = dataclasses.replace(p.train, model=model_cfg, optim=dataclasses.replace(p.train.optim, steps=20,
                                                                                  eval_every=20))
    train(cfg, load_corpus(table_corpus), tmp_path / "m")
    model, tok = load_model(tmp_path / "m")
    corpus = load_corpus(table_corpus)
    before = column_analysis(model, corpus, QK, tok)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(30.0)
            layer.self_attn.k_proj.weight.mul_(30.0)
    after = column_analysis(model, corpus, QK, tok)
    for a, b in zip(before.heads, after.heads, strict=True):
        assert a.name == b.name
        assert b.comparison.range.total == pytest.approx(a.comparison.range.total, rel=1e-3)
        assert b.comparison.range.total <= 2 * 4.0 * (1 + 1e-6)


def test_side_geometry_reads_the_turns_of_a_planted_side():
    """A head side drawn on a circle traversed twice (two turns over its 60 values) reads about two turns and
    rings; a straight side reads half a turn (a line through its centre) and one sign change. Values with a gap
    are cut to their longest consecutive run first."""
    from linebreak.qk.columns import side_geometry

    v = np.arange(60)
    a = 2 * np.pi * 2 * v / 60
    circle = side_geometry(np.column_stack([np.cos(a), np.sin(a), np.zeros(60)]), v)
    assert circle.gate_open and circle.turns == pytest.approx(2 * 59 / 60, abs=1e-9)
    assert circle.sign_changes >= 2 and circle.ripples >= 2
    line = side_geometry(np.column_stack([v, 0.5 * v]).astype(float), np.concatenate([v[:50], v[50:] + 5]))
    assert list(line.values) == list(range(50)) and line.turns == pytest.approx(0.5)
    assert line.sign_changes == 1 and line.ripples == 0
