"""The QK twist math on constructed cases: a known rotation along a curve is recovered with its offset."""

import numpy as np
import pytest

from linebreak.qk import twist
from linebreak.qk.attention import key_side_null, key_side_test, key_side_tests

P, FREQS, D = 120, (1, 2, 3), 32


def curve(n, shift=0.0):
    """Points on a closed curve in 6-D (three Fourier planes), like the count helix."""
    n = np.asarray(n, float) + shift
    return np.concatenate([np.stack([np.cos(2 * np.pi * f * n / P), np.sin(2 * np.pi * f * n / P)], 1)
                           for f in FREQS], 1)


def shift_map(eps):
    """The linear map with curve(n) @ R = curve(n + eps): a rotation in each Fourier plane."""
    R = np.zeros((6, 6))
    for j, f in enumerate(FREQS):
        a = 2 * np.pi * f * eps / P
        R[2 * j:2 * j + 2, 2 * j:2 * j + 2] = [[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]
    return R


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    i = np.arange(10, 71)
    k = np.arange(10, 71)
    E_q, E_k = rng.standard_normal((6, D)), rng.standard_normal((6, D))  # different embeddings per side
    return rng, i, k, curve(i) @ E_q, curve(k) @ E_k, E_q, E_k


def test_shift_map_is_a_shift():
    n = np.arange(50)
    assert np.allclose(curve(n) @ shift_map(7), curve(n, 7))


@pytest.mark.parametrize("eps", [3, 6])
def test_constructed_twist_is_recovered(setup, eps):
    rng, i, k, Xq, Xk, E_q, E_k = setup
    W_Q = np.linalg.pinv(E_q) @ shift_map(eps)  # q(i) = curve(i + eps)
    W_K = np.linalg.pinv(E_k)                  # k(k) = curve(k)
    s, mats = twist.head_summary(Xq, Xk, i, k, W_Q, W_K, rng)
    q = s["qk"]
    assert q["max_cos"] > 0.99
    assert abs(q["median"] - eps) <= 1  # centring on a partial arc biases the argmax by at most 1
    assert q["spread"] <= 1.0
    assert abs(q["slope"] - 1) < 0.05 and q["r2"] > 0.99
    assert s["verdict"]["passes"], s["verdict"]
    # the raw stream (two unrelated embeddings) aligns badly; random maps show no clean line
    assert s["gain_over_identity"] > 0.3
    assert not s["control_verdict"]["passes"]
    assert s["identity"]["r2"] < 0.5
    assert mats["qk"].shape == (len(i), len(k))


def test_identity_map_gives_the_diagonal(setup):
    rng, i, k, Xq, _, E_q, _ = setup
    cos = twist.twist_matrix(Xq, curve(k) @ E_q)  # same embedding both sides, no map
    st = twist.argmax_offsets(cos, i, k)
    assert np.all(st["offsets"] == 0) and st["max_cos"] == pytest.approx(1.0)
    v = twist.head_verdict({"qk": st, "gain_over_identity": 0.0, "gain_over_control": 1.0})
    assert not v["passes"] and not v["checks"]["offset_small_positive"]


def test_negative_offset_fails_the_verdict(setup):
    rng, i, k, Xq, Xk, E_q, E_k = setup
    s, _ = twist.head_summary(Xq, Xk, i, k, np.linalg.pinv(E_q) @ shift_map(-5), np.linalg.pinv(E_k), rng)
    assert s["qk"]["median"] == -5 and not s["verdict"]["passes"]


def test_straight_ramp_cannot_twist():
    """1-D ramps on both sides: centred vectors are +-u, the matrix is two blocks, no offset line."""
    rng = np.random.default_rng(1)
    i = k = np.arange(10, 60)
    u = rng.standard_normal(D)
    W = rng.standard_normal((D, 8))
    cos = twist.twist_matrix(np.outer(i, u), np.outer(k, u), W, W)
    assert np.allclose(np.abs(cos), 1.0)  # every cosine is +-1: max cos says nothing by itself
    st = twist.argmax_offsets(cos, i, k)
    assert not twist.line_checks(st)["passes"]


def test_bias_and_centring():
    rng = np.random.default_rng(2)
    Q, K = rng.standard_normal((10, 5)), rng.standard_normal((12, 5))
    W_Q, W_K = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    a = twist.twist_matrix(Q, K, W_Q, W_K)
    b = twist.twist_matrix(Q + 7.0, K - 3.0, W_Q, W_K)  # a shared offset (as a bias would be) cancels
    assert np.allclose(a, b)
    assert a.shape == (10, 12) and np.all(np.abs(a) <= 1 + 1e-12)


def test_random_like_matches_norm():
    W = np.arange(12.0).reshape(4, 3)
    R = twist.random_like(W, np.random.default_rng(0))
    assert R.shape == W.shape and np.linalg.norm(R) == pytest.approx(np.linalg.norm(W))


def test_score_ranks_the_twisting_head_first(setup):
    rng, i, k, Xq, Xk, E_q, E_k = setup
    good, _ = twist.head_summary(Xq, Xk, i, k, np.linalg.pinv(E_q) @ shift_map(4), np.linalg.pinv(E_k), rng)
    bad, _ = twist.head_summary(Xq, Xk, i, k, rng.standard_normal((D, 6)), rng.standard_normal((D, 6)), rng)
    assert good["score"] > bad["score"]


def test_key_side_test_sees_a_comparing_head():
    """Attention that depends on the key line's length given (width, count) is detected; one that does
    not is at the shuffled floor."""
    rng = np.random.default_rng(0)
    n = 4000
    width = rng.integers(20, 24, n)
    count = rng.integers(5, 15, n)
    prev = width - rng.integers(0, 8, n)
    gated = 1.0 / (1 + np.exp(-(count - width + 10))) + 0.01 * rng.standard_normal(n)
    comparing = np.exp(-0.5 * (prev - count - 8) ** 2) + 0.01 * rng.standard_normal(n)
    a = key_side_test(gated, width, count, prev, np.random.default_rng(1))
    b = key_side_test(comparing, width, count, prev, np.random.default_rng(1))
    assert b.excess > 0.5 and b.p_value <= 0.01 and b.moves
    assert abs(a.excess) < 0.05 and abs(a.corr) < 0.1 and not a.moves


def test_key_side_null_is_measured_not_assumed():
    """With tiny (width, count, length) cells eta^2 is large by chance; the shuffled null is as large, so a
    head with no key dependence does not 'move' however high its raw eta^2."""
    rng = np.random.default_rng(2)
    n = 600
    width, count = rng.integers(20, 40, n), rng.integers(5, 25, n)
    prev = width - rng.integers(0, 8, n)
    res = key_side_test(rng.random(n), width, count, prev, np.random.default_rng(3))
    assert res.eta2 > 0.3  # small cells: a high raw eta^2 from noise alone
    assert res.p_value > 0.01 and not res.moves


def _direct_eta2(a, g, k):
    """eta^2 the long way: every token's cell mean of the within-group centred attention, cell by cell."""
    a_c = a - (np.bincount(g, a) / np.bincount(g))[g]
    _, cell = np.unique(g * (k.max() + 2) + k, return_inverse=True)
    return ((np.bincount(cell, a_c) / np.bincount(cell))[cell] ** 2).sum() / (a_c ** 2).sum()


def test_one_null_serves_every_head_and_matches_the_direct_shuffles():
    """The segment sums over each shuffle's cells give what permuting the lengths within groups and taking
    cell means directly gives; every head of a stack is tested against the same shuffles, so a head's numbers
    do not depend on which other heads are tested beside it."""
    rng = np.random.default_rng(4)
    n = 1500
    width, count = rng.integers(20, 23, n), rng.integers(5, 8, n)
    prev = width - rng.integers(0, 6, n)
    A = rng.random((n, 3)) + np.array([0.0, 0.05, 0.2]) * (prev[:, None] % 2)
    null = key_side_null(width, count, prev, np.random.default_rng(5), n_shuffles=120)
    stacked = key_side_tests(A, null)
    draws = np.random.default_rng(5)  # the same draws, used the long way: one permutation per shuffle
    a, g, k = A[null.keep], null.g, null.k
    by_group = np.argsort(g, kind="stable")
    shuffled = []
    for _ in range(120):
        kk = np.empty_like(k)
        kk[by_group] = k[np.lexsort((draws.random(len(g)), g))]
        assert np.array_equal(np.sort(kk[g == 0]), np.sort(k[g == 0]))  # a permutation within each group
        shuffled.append(kk)
    for h, side in enumerate(stacked):
        direct = np.array([_direct_eta2(a[:, h], g, kk) for kk in shuffled])
        # sums of the same ~n float64 terms in another order: rounding ~n eps64 (1e-13) of values below 1
        assert side.eta2 == pytest.approx(_direct_eta2(a[:, h], g, k), abs=1e-11)
        assert side.eta2_shuffled == pytest.approx(direct.mean(), abs=1e-11)
        assert side == key_side_tests(A[:, [h]], null)[0]
    assert stacked[2].moves and not stacked[0].moves


def test_a_side_that_does_not_vary_gives_zero_cosines_not_noise():
    """Identical key vectors (every newline's embedding in a rotary model's first layer) centre to rounding
    noise; the cosines must be 0, not the cosines of normalised noise, and no head can rank on them."""
    rng = np.random.default_rng(0)
    Xq = rng.standard_normal((20, 16))
    Xk = np.tile(rng.standard_normal(16) * 3.0, (12, 1)) + 1e-15 * rng.standard_normal((12, 16))
    assert np.abs(twist.twist_matrix(Xq, Xk)).max() == 0.0
    W = rng.standard_normal((16, 4))
    assert np.abs(twist.twist_matrix(Xq, Xk, W, W)).max() == 0.0
    s, _ = twist.head_summary(Xq, Xk, np.arange(20.0), np.arange(4.0, 16.0), W, W, rng)
    assert s["score"] == 0.0 and not s["verdict"]["passes"]


def _half_sums(Xq, Xk, i, k, n=10):
    """Per-value sums for one half as ``qk`` keeps them: ``n`` identical tokens per count and per width."""
    from linebreak.qk.collect import Sums

    q_sum, q_n = np.zeros((1, 80, 1, Xq.shape[1])), np.zeros((80, 1))
    k_sum, k_n = np.zeros((1, 80, Xk.shape[1])), np.zeros(80)
    q_sum[0, i, 0], q_n[i, 0] = n * Xq, n
    k_sum[0, k], k_n[k] = n * Xk, n
    return Sums(q_sum, q_n, k_sum, k_n)


def test_split_half_agrees_only_when_both_halves_hold_the_twist(setup):
    import dataclasses

    from linebreak.qk.collect import Sums
    from linebreak.qk.config import QKConfig
    from linebreak.qk.maps import HeadWeights
    from linebreak.qk.verdict import half_summary, split_half

    rng, i, k, Xq, Xk, E_q, E_k = setup
    weights = HeadWeights(0, 0, np.linalg.pinv(E_q) @ shift_map(4), None, np.linalg.pinv(E_k))
    good = _half_sums(Xq, Xk, i, k)
    noise = _half_sums(rng.standard_normal(Xq.shape), rng.standard_normal(Xk.shape), i, k)

    def run(a, b):
        halves = Sums(*(np.stack([getattr(a, f.name), getattr(b, f.name)]) for f in dataclasses.fields(Sums)
                        if f.name != "layers"))
        return split_half(halves, weights, True, i, k, None, QKConfig(), n_docs=7)

    same = run(good, good)
    assert same.head == "L0H0"
    assert same.holds_on_both_halves and [h.passes for h in same.halves] == [True, True]
    assert same.n_docs == [4, 3] and abs(same.halves[0].median - 4) <= 1
    mixed = run(good, noise)
    assert not mixed.holds_on_both_halves
    assert mixed.halves[0].passes and not mixed.halves[1].passes and mixed.halves[1].fails
    # counts with too few tokens in a half are left out of that half (here five counts with one token)
    few = Sums(good.q_sum.copy(), good.q_n.copy(), good.k_sum.copy(), good.k_n.copy())
    few.q_n[i[:5], 0] = 1
    s = half_summary(few, weights, i, k, None, QKConfig())
    assert len(s.k_star) == len(i) - 5 and s.verdict.passes


def test_pc1_share_tells_a_ramp_from_a_curve(setup):
    rng, i, k, Xq, Xk, E_q, E_k = setup
    ramp = np.outer(i, rng.standard_normal(D)) + 3.0
    assert twist.pc1_share(ramp) == pytest.approx(1.0)
    assert twist.pc1_share(curve(np.arange(P)) @ E_q) < 0.5  # a closed curve spreads over its planes
    assert np.isnan(twist.pc1_share(np.ones((5, 3))))
    s, _ = twist.head_summary(Xq, Xk, i, k, np.linalg.pinv(E_q) @ shift_map(4), np.linalg.pinv(E_k), rng)
    assert s["pc1_share"]["query"] < 0.9 and s["pc1_share"]["key"] < 0.9


def test_probe_route_recovers_a_constructed_twist():
    """The probe route end to end on a constructed case: token rows scattered around a count curve (query) and
    a width curve (key) in a 1-layer GPT-2 whose only head maps count i onto width i + 5. The logistic probes
    fitted on the rows, taken through that head, must give the offset back and pass the verdict, while the
    probes compared in the raw stream must not."""
    import torch

    from linebreak.hooks import arch
    from linebreak.qk.collect import ProbeRows
    from linebreak.qk.config import QKConfig
    from linebreak.qk.probe_route import probe_route
    from linebreak.train.model import ModelConfig, build_model

    eps, rng = 5, np.random.default_rng(1)
    E_q, E_k = rng.standard_normal((6, D)), rng.standard_normal((6, D))
    values = np.arange(20, 61)
    c = np.repeat(values, 60)
    kv = np.repeat(values, 40)
    Xq = curve(c) @ E_q + rng.standard_normal((len(c), D))  # overlapping classes, as counts are
    Xk = curve(kv) @ E_k + rng.standard_normal((len(kv), D))
    rows = ProbeRows(q={0: [Xq]}, k={0: [Xk]}, q_lab=[(c, np.zeros_like(c), np.arange(len(c)) % 30)],
                     k_lab=[(kv, np.arange(len(kv)) % 30)])
    model = build_model(ModelConfig(arch="gpt2", pos="learned", n_layer=1, d_model=D, n_head=1, d_mlp=4 * D,
                                    n_ctx=16), vocab_size=8, bos_id=0)
    W = np.zeros((D, 3 * D))
    W[:, :6] = np.linalg.pinv(E_q) @ shift_map(eps)  # q(i) = curve(i + eps) in the first 6 of d_head
    W[:, D:D + 6] = np.linalg.pinv(E_k)              # k(k) = curve(k)
    with torch.no_grad():
        arch.attention(model, 0).c_attn.weight.copy_(torch.from_numpy(W))
    route = probe_route(rows, None, model, arch.layout(model), values, values, None, QKConfig())
    s, fits = route.per_head[(0, 0)], route.fits
    assert fits[0].count_rmse < 3 and fits[0].key_rmse < 3
    assert abs(s.qk.median - eps) <= 1 and abs(s.qk.slope - 1) < 0.1 and s.qk.r2 > 0.95
    assert s.verdict.passes, s.verdict
    assert s.gain_over_identity > 0.3 and not s.identity.max_cos > 0.8


def test_score_decomposition_tells_a_twist_from_subtraction():
    """A twist (a score peaked along k = i + eps on a curve) is all interaction; subtraction on ramps
    (score = alpha (i - k)) is all additive with balance 1; a head gated by the count alone is all count."""
    i = np.arange(10, 60)
    k = np.arange(10, 60)
    eps = 4
    twist_S = curve(i, eps) @ curve(k).T  # = sum over planes of cos(2 pi f (k - i - eps) / P)
    d = twist.score_decomposition(twist_S, i, k)
    assert d["interaction_share"] > 0.9
    assert abs(d["count_share"] + d["width_share"] + d["interaction_share"] - 1) < 1e-12

    sub = twist.score_decomposition(0.5 * (i[:, None] - k[None, :]) + 3.0, i, k)
    assert sub["interaction_share"] < 1e-12
    assert abs(sub["count_slope"] - 0.5) < 1e-12 and abs(sub["width_slope"] + 0.5) < 1e-12
    assert abs(sub["balance"] - 1) < 1e-12 and abs(sub["count_share"] - 0.5) < 1e-12

    gated = twist.score_decomposition(np.tanh((i[:, None] - 40) / 5.0) + 0 * k[None, :], i, k)
    assert gated["count_share"] > 1 - 1e-12 and gated["width_share"] < 1e-12
    with pytest.raises(ValueError):
        twist.score_decomposition(twist_S, i[:-1], k)


def test_interaction_is_what_the_cosine_test_sees():
    """The interaction part of q(i) . k(k) is exactly the dot product of the centred sides, whatever the
    biases: the matrix twist_matrix normalises."""
    rng = np.random.default_rng(3)
    i, k = np.arange(20), np.arange(15)
    Q, K = rng.standard_normal((20, 8)) + 2.0, rng.standard_normal((15, 8)) - 1.0
    S = Q @ K.T
    d = twist.score_decomposition(S, i, k)
    centred = (Q - Q.mean(0)) @ (K - K.mean(0)).T
    total = ((S - S.mean()) ** 2).sum()
    assert abs(d["interaction_share"] * total - (centred**2).sum()) < 1e-9 * total
    cos = twist.twist_matrix(Q, K)
    norms = np.linalg.norm(Q - Q.mean(0), axis=1)[:, None] * np.linalg.norm(K - K.mean(0), axis=1)[None, :]
    np.testing.assert_allclose(cos * norms, centred, atol=1e-9)
