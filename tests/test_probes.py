"""Probes: a planted linear label is read back on held-out documents, pure-noise labels score near zero,
and per-value logistic probes recover a count with small RMSE."""

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.probe.estimators import ridge_probe, split_by_group, value_probes


def data(n_docs=60, per_doc=50, d=32, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_docs), per_doc)
    count = rng.integers(1, 40, len(groups))
    direction = rng.normal(size=d)
    X = rng.normal(size=(len(groups), d)) + np.outer(count, direction) / 2
    return X, count, groups


def test_split_is_by_document():
    _, _, groups = data()
    test = split_by_group(groups, 0.25, seed=0)
    assert not set(groups[test]) & set(groups[~test])
    assert len(set(groups[test])) == 15
    np.testing.assert_array_equal(test, split_by_group(groups, 0.25, seed=0))


def test_ridge_reads_a_planted_label():
    X, count, groups = data()
    r = ridge_probe(X, count, groups)
    assert r.r2_test > 0.98 and r.rmse_test < 2
    np.testing.assert_allclose(X @ r.weight + r.bias, count, atol=6)


def test_ridge_on_noise_labels_scores_near_zero():
    X, _, groups = data()
    noise = np.random.default_rng(5).normal(size=len(groups))
    r = ridge_probe(X, noise, groups)
    assert abs(r.r2_test) < 0.05
    assert r.r2_train < 0.05  # 32 features on 2,250 rows cannot fit noise


def test_value_probes_recover_count():
    X, count, groups = data(d=16)
    vp = value_probes(X, count, groups, keep=np.arange(5, 35), max_iter=100)
    assert vp.weights.shape == (30, 16) and list(vp.values) == list(range(5, 35))
    assert vp.rmse_test < 4
    noise = np.random.default_rng(1).integers(5, 35, len(count))
    assert value_probes(X, noise, groups, max_iter=30).rmse_test > 8


def test_logistic_fit_with_float32_products_reaches_the_float64_optimum():
    """The fit multiplies with the rows in float32 and keeps everything else in float64; run to convergence on a
    strictly convex problem (L2 penalty), it reaches the minimum that a float64 autograd fit reaches."""
    import torch

    from linebreak.probe.estimators import _multinomial_logistic

    rng = np.random.default_rng(3)
    N, d, V, C = 1500, 12, 5, 1.0
    y = rng.integers(0, V, N)
    X = rng.standard_normal((N, d)) + 0.8 * np.eye(V, d)[y]

    def loss(W, b):  # the objective in float64, W [V, d]
        z = X @ W.T + b
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1))
        return float((lse - z[np.arange(N), y]).mean() + (W ** 2).sum() / (2 * C * N))

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    W = torch.zeros(d, V, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(V, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=500, history_size=20, tolerance_grad=1e-10,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        out = torch.nn.functional.cross_entropy(Xt @ W + b, yt) + (W ** 2).sum() / (2 * C * N)
        out.backward()
        return out
    opt.step(closure)
    best = loss(W.detach().numpy().T, b.detach().numpy())
    W32, b32 = _multinomial_logistic(X, y, V, C, max_iter=500)
    # float32 products round each logit and gradient entry at ~1e-7 relative (d = 12 terms), so the fit can stop
    # short of the optimum by about that much of the loss (~1.4 nats here): 1e-5 leaves a margin of ~10
    assert best <= loss(W32, b32) <= best + 1e-5
    assert np.abs(W32 - W.detach().numpy().T).max() < 1e-2 * np.abs(W32).max()


def test_bad_inputs():
    X, count, _ = data()
    with pytest.raises(UserError, match="at least 2 documents"):
        ridge_probe(X, count, np.zeros(len(count)))


# ---- the typed result of the probe stage (probe.json)
def _labels(n_docs=40, per_doc=120, seed=0):
    """Token labels with the fields the per-layer analysis reads; only 5 newline rows know their line width."""
    rng = np.random.default_rng(seed)
    N = n_docs * per_doc
    is_nl = rng.random(N) < 0.1
    line_len = np.full(N, -1)
    line_len[np.flatnonzero(is_nl)[:5]] = 20
    width = np.repeat(rng.integers(30, 40, n_docs), per_doc)
    count = rng.integers(4, 30, N)
    return {"doc": np.repeat(np.arange(n_docs), per_doc), "count": count, "token": rng.integers(0, 20, N),
            "token_len": np.where(is_nl, 0, rng.integers(1, 4, N)), "is_newline": is_nl, "line_len": line_len,
            "line_index": rng.integers(0, 3, N), "width": width, "remaining": width - count}


def _result():
    from linebreak.probe.config import ProbeConfig
    from linebreak.probe.layers import analyse_layer
    from linebreak.probe.result import ProbeResult

    lab = _labels()
    c = lab["count"]
    rng = np.random.default_rng(1)
    B = np.column_stack([c / 10, np.cos(2 * np.pi * c / 12), np.sin(2 * np.pi * c / 12)])
    X = B @ rng.normal(size=(3, 16)) + 0.1 * rng.normal(size=(len(c), 16))
    cfg = ProbeConfig(min_per_count=5, value_probe_iters=20, value_probe_rows=2000)
    layer, arrays = analyse_layer(X, lab, cfg, "resid_post", 1)
    return ProbeResult(cfg, {"arch": None, "n_rows": len(c), "n_docs": 40, "model": None}, {"resid_post.1": layer},
                       {f"resid_post.1.{k}": v for k, v in arrays.items()})


def test_probe_result_round_trips_with_the_layout_of_probe_json(tmp_path):
    import json

    from linebreak.probe.result import CountProbes, ProbeResult, Ringing, load_probe, save_probe
    from linebreak.results import plain as _plain

    res = _result()
    d = res.to_json()
    assert list(d) == ["format", "config", "capture", "layers"] and d["format"] == "linebreak-probe/1"
    lj = d["layers"]["resid_post.1"]
    assert list(lj) == ["site", "layer", "hook", "probes", "counts", "centroids", "count_probes"]
    assert lj["hook"] == "blocks.1.hook_resid_post" and d["config"]["min_per_count"] == 5
    assert list(lj["probes"]) == ["count", "line_width", "remaining", "width"]
    assert list(lj["probes"]["count"]) == ["r2_test", "r2_train", "rmse_test", "n_train", "n_test"]
    assert lj["probes"]["line_width"] == {"r2_test": None, "note": "too few rows for line_width (5)"}
    assert list(lj["count_probes"]) == ["rmse_test", "accuracy_test", "n_train", "n_test", "pca", "ringing",
                                        "lag_profile", "peak_width", "fourier", "helix"]
    assert list(lj["centroids"]) == ["pca", "ringing", "lag_profile", "peak_width", "fourier", "helix"]
    assert lj["centroids"]["helix"]["periods"][0] == 12 and lj["counts"] == {"min": 4, "max": 29, "n": 26,
                                                                              "tokens": lj["counts"]["tokens"]}
    text = json.dumps(d, allow_nan=False)
    back = ProbeResult.from_json(json.loads(text))
    assert back.to_json() == d
    layer = back.layers["resid_post.1"]
    assert isinstance(layer.centroids.ringing, Ringing) and layer.probes["line_width"].r2_test is None
    assert layer.probes["count"].r2_test == res.layers["resid_post.1"].probes["count"].r2_test
    save_probe(res, tmp_path)
    loaded = load_probe(tmp_path)
    assert loaded.to_json() == d and set(loaded.tensors) == set(res.tensors)
    V = lj["counts"]["n"]
    assert loaded.tensors["resid_post.1.count_probes.weight"].shape == (V, 16)
    # a count probe whose vectors have no geometry (some count got no probe) writes only its scores
    assert list(_plain(CountProbes(rmse_test=1.0, accuracy_test=0.5, n_train=10, n_test=5))) == [
        "rmse_test", "accuracy_test", "n_train", "n_test"]


def test_probe_result_refuses_another_format(tmp_path):
    from linebreak.io import save_json
    from linebreak.probe.result import ProbeResult, load_probe

    d = _result().to_json()
    with pytest.raises(UserError, match="'linebreak-probe/0' is not 'linebreak-probe/1'"):
        ProbeResult.from_json({**d, "format": "linebreak-probe/0"})
    save_json(tmp_path / "probe.json", {k: v for k, v in d.items() if k != "format"})  # an analysis.json of old
    with pytest.raises(UserError, match="rerun the stage"):
        load_probe(tmp_path, tensors=False)
