"""QK analysis end to end on a tiny model trained in the test (fixed seeds, seconds)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from linebreak.hooks.points import hook_name
from linebreak.hooks.run import as_tensor, batches, run_with_cache
from linebreak.io import UserError, save_json
from linebreak.presets import QK as QK_PRESETS
from linebreak.qk.analysis import qk_analysis
from linebreak.qk.result import QKResult


def test_qk_result_shape_and_json(qk_result, trained, tmp_path):
    _, model, corpus = trained
    r = qk_result
    assert isinstance(r, QKResult)
    n_heads = model.config.n_layer * model.config.n_head
    assert len(r.heads) == n_heads
    assert [h.rank for h in r.heads] == list(range(n_heads))
    scores = [h.score for h in r.heads]
    assert scores == sorted(scores, reverse=True)
    I, K = len(r.i_values), len(r.k_values)
    for top in r.top:
        for name in ("qk", "identity", "control"):
            m = top.matrices[name]
            # cosines of unit rows in float64: |cos| <= 1 up to d_head * eps64 (~1e-14); 1e-9 is far above
            assert m.shape == (I, K) and np.all(np.abs(m) <= 1 + 1e-9)
        assert top.pca_qk.shape == (I + K, 3)
    for h in r.heads:
        for side in ("qk", "identity", "control"):
            assert np.isfinite(getattr(h, side).max_cos) and np.isfinite(getattr(h, side).alignment)
        assert set(h.verdict.checks) >= {"max_cos", "slope", "r2", "offset_small_positive",
                                         "beats_identity", "beats_control"}
        assert len(h.response.attention) == QK_PRESETS["tiny"].max_remaining + 1
    v = r.verdict
    assert v.passes == bool(v.passing_heads)
    # the verdict is carried by the first passing head in rank order, else by the top-ranked head
    want = v.passing_heads[0] if v.passing_heads else r.heads[0].name
    assert v.best_head == want and v.top_ranked_head == r.heads[0].name and v.statement
    assert want in {t.name for t in r.top}
    sh = v.split_half  # the verdict's head judged again on each half of the documents
    assert sh.head == v.best_head and sum(sh.n_docs) == r.n_docs and len(sh.halves) == 2
    best_passes = v.best.verdict.passes
    assert sh.holds_on_both_halves == all(h.passes == best_passes for h in sh.halves)
    assert all(np.isfinite(h.max_cos) for h in sh.halves) and "on each half" in v.statement
    r.save(tmp_path / "qk.json")
    back = json.loads((tmp_path / "qk.json").read_text())
    assert back["verdict"]["thresholds"]["min_max_cos"] == 0.8
    assert 0 < r.top_outputs.top2 <= 1
    per_head = r.top_outputs.per_head_pc1  # each top head's output alone: the share of its first PC
    assert set(per_head) == {t.name for t in r.top}
    # a variance share in float64: <= 1 up to rounding of the sum of squares (a few eps64)
    assert all(0 < v <= 1 + 1e-12 for v in per_head.values())


def test_top_head_outputs_are_the_summed_values_through_w_o(qk_result, trained):
    """The top heads' outputs come from the per-remaining sums of ``z`` kept by the one qk pass; a second pass
    that projects every token's ``z`` and sums the outputs gives the same spectrum and per-head shares."""
    from linebreak.hooks.measure import head_outputs
    from linebreak.probe import manifold
    from linebreak.qk import twist
    from linebreak.qk.collect import select_docs

    _, model, corpus = trained
    cfg = QK_PRESETS["tiny"]
    ids, lab = select_docs(corpus, "validation", qk_result.n_docs)
    query = lab["query"]  # the counting word tokens (manifold.word_rows)
    R = cfg.max_remaining + 1
    top = [(t.layer, t.head) for t in qk_result.top]
    ns, per = np.zeros(R), {lh: np.zeros((R, model.config.hidden_size)) for lh in top}
    for s, e in batches(len(ids), cfg.batch_size):
        _, cache = run_with_cache(model, as_tensor(ids[s:e]), [hook_name("z", L) for L, _ in top])
        rem = lab["remaining"][s:e]
        m = query[s:e] & (rem >= 0) & (rem < R)
        np.add.at(ns, rem[m], 1)
        for L, h in top:
            np.add.at(per[(L, h)], rem[m], head_outputs(model, L, cache[hook_name("z", L)], [h])[h].double().numpy()[m])
    keep = ns >= cfg.min_per_value
    assert np.array_equal(qk_result.top_outputs.remaining, np.arange(R)[keep])
    ratio = manifold.pca_spectrum(sum(per.values())[keep] / ns[keep, None], k=10)["ratio"]
    # float32 projections of float32 z, summed in float64, against one float32 projection of the float64 sum:
    # each output element is rounded at float32 (eps 6e-8) over d_head * n_heads = 64 products, so ~4e-6
    # relative; a variance share moves by about that, and 1e-4 leaves a margin of 25
    assert qk_result.top_outputs.explained_variance_ratio == pytest.approx(ratio[:6], abs=1e-4)
    for (L, h), v in per.items():
        want = twist.pc1_share(v[keep] / ns[keep, None])
        assert qk_result.top_outputs.per_head_pc1[f"L{L}H{h}"] == pytest.approx(want, abs=1e-4)


def test_qk_result_round_trips_through_json(qk_result, tmp_path):
    """``from_json(to_json(r))`` gives ``r`` back (every value, NaN as NaN), the file carries its format, and a
    file of another format is refused with one line."""
    d = qk_result.to_json()
    assert d["format"] == "linebreak-qk/1" and list(d)[1:] == ["config", "layout", "n_docs", "query_frame",
                                                              "i_values", "k_values", "heads", "top",
                                                              "top_outputs", "verdict"]
    text = json.dumps(d, sort_keys=True)
    back = QKResult.from_json(json.loads(json.dumps(d)))
    assert json.dumps(back.to_json(), sort_keys=True) == text
    assert back.config == qk_result.config and back.layout == qk_result.layout
    assert back.heads[0].name == qk_result.heads[0].name and isinstance(back.heads[0].response.attention, np.ndarray)
    assert QKResult.load(qk_result.save(tmp_path / "qk.json")).to_json() == back.to_json()
    with_paths = dataclasses.replace(qk_result, model="/m", corpus="/c").to_json()
    assert with_paths["model"] == "/m" and QKResult.from_json(with_paths).corpus == "/c"
    for bad in ({**d, "format": "linebreak-qk/0"}, {k: v for k, v in d.items() if k != "format"},
                {**d, "format": "linebreak-causal/1"}):
        with pytest.raises(UserError, match="format") as e:
            QKResult.from_json(bad)
        assert "\n" not in str(e.value)


def test_probe_route_is_reported_beside_the_means(qk_result, trained):
    """Every head is judged again with logistic value probes as its sides; the probe route's controls draw from
    their own seed, so switching it off leaves every number of the means route as it was."""
    _, model, corpus = trained
    p = qk_result.verdict.probes
    assert [f.layer for f in p.fits] == list(range(model.config.n_layer))
    assert all(f.count_rmse >= 0 and 0 <= f.count_accuracy <= 1 for f in p.fits)
    for h in qk_result.heads:
        for side in ("qk", "identity", "control"):
            assert np.all(np.abs([getattr(h.probes, side).max_cos]) <= 1 + 1e-9)  # float64 cosines, as above
    assert p.passes == bool(p.passing_heads) and p.statement.startswith("probe route: ")
    assert p.best_head in {h.name for h in qk_result.heads}
    off = qk_analysis(model, corpus, dataclasses.replace(QK_PRESETS["tiny"], probes=False),
                      tokenizer=corpus.tokenizer)
    assert off.verdict.probes is None and off.heads[0].probes is None
    assert "probes" not in off.to_json()["heads"][0]
    strip = lambda r: [{k: v for k, v in h.items() if k != "probes"} for h in r.to_json()["heads"]]  # noqa: E731
    assert json.dumps(_json({"h": strip(off)}), sort_keys=True) == json.dumps(_json({"h": strip(qk_result)}),
                                                                               sort_keys=True)


def test_qk_is_deterministic(qk_result, trained):
    _, model, corpus = trained
    again = qk_analysis(model, corpus, QK_PRESETS["tiny"], tokenizer=corpus.tokenizer)
    a = json.dumps(_json(qk_result.to_json()), sort_keys=True)
    assert a == json.dumps(_json(again.to_json()), sort_keys=True)


def _json(x):
    from linebreak.io import to_jsonable

    return to_jsonable(x)


def test_response_curve_is_measured_attention(qk_result, trained):
    """Attention to the previous newline is a probability: every binned value lies in [0, 1]."""
    for h in qk_result.heads:
        a = np.asarray(h.response.attention, float)
        a = a[np.isfinite(a)]
        assert a.size and np.all((a >= 0) & (a <= 1))


def test_too_few_lines_per_width(trained):
    _, model, corpus = trained
    cfg = dataclasses.replace(QK_PRESETS["tiny"], min_per_value=10_000)
    with pytest.raises(UserError, match="too few lines per width"):
        qk_analysis(model, corpus, cfg)


def test_no_attention_layers(trained):
    from linebreak.train.model import ModelConfig, build_model

    _, _, corpus = trained
    empty = build_model(ModelConfig(n_layer=0, d_model=16, n_head=2, d_mlp=32, n_ctx=64),
                        len(corpus.token_lengths), corpus.bos_id)
    with pytest.raises(UserError, match="no attention layers"):
        qk_analysis(empty, corpus, QK_PRESETS["tiny"])


def test_cli_qk_and_causal(trained, cli, tmp_path):
    root, _, _ = trained
    rc, out, err = cli("qk", "--model", root / "model", "--corpus", root / "corpus", "--out", tmp_path / "qk",
                       "--figures", tmp_path / "fig", "--preset", "tiny")
    assert rc == 0, err
    assert "QK twist" in out and (tmp_path / "qk" / "qk.json").is_file()
    assert any(p.suffix == ".html" for p in (tmp_path / "fig").iterdir())
    assert len(list((tmp_path / "fig").glob("qk_matrices_*.png"))) == 2
    assert len(list((tmp_path / "fig").glob("qk_logits_*.png"))) == 2
    rc, _, err = cli("qk", "--model", root / "model", "--corpus", root / "corpus", "--out", tmp_path / "qk",
                     "--figures", tmp_path / "fig", "--preset", "tiny")
    assert rc == 2 and "--force" in err
    rc, out, err = cli("causal", "--model", root / "model", "--corpus", root / "corpus", "--qk",
                       tmp_path / "qk" / "qk.json", "--out", tmp_path / "causal", "--preset", "tiny")
    assert rc == 0, err
    assert "baseline" in out and (tmp_path / "causal" / "causal.json").is_file()


def _one_error_line(err: str) -> bool:
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if "error:" in ln]
    return len(lines) == 1 and "Traceback" not in err


def test_cli_bad_inputs(trained, cli, tmp_path):
    from linebreak.corpus.store import CorpusConfig, generate_corpus

    root, _, _ = trained
    rc, _, err = cli("qk", "--model", tmp_path / "nope", "--corpus", root / "corpus", "--out", tmp_path / "o")
    assert rc == 2 and _one_error_line(err)
    other = generate_corpus(CorpusConfig(widths="12:24", seq_len=64, n_train=8, n_val=8, vocab_size=25,
                                         max_word_len=6), tmp_path / "other")
    rc, _, err = cli("qk", "--model", root / "model", "--corpus", other, "--out", tmp_path / "o2",
                     "--preset", "tiny")
    assert rc == 2 and "does not match" in err and _one_error_line(err)
    rc, _, err = cli("qk", "--model", root / "model", "--corpus", root / "corpus", "--out", tmp_path / "o3",
                     "--preset", "tiny", "--min-per-value", "100000")
    assert rc == 2 and "too few lines per width" in err and _one_error_line(err)


def test_rotary_query_side_is_each_token_rotated_to_its_newline(trained):
    """For a rotary model the per-count query vectors are the mean of R_offset (x W_Q + b_Q) over the count's
    tokens, each rotated by its own distance to the previous newline (checked against a per-token loop)."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import collect, select_docs
    from linebreak.qk.maps import rotated_query_map
    from linebreak.train.model import ModelConfig, build_model

    _, _, corpus = trained
    model = build_model(ModelConfig(arch="llama", pos="rotary", n_layer=2, d_model=32, n_head=4, d_mlp=64,
                                    n_ctx=64), vocab_size=len(corpus.token_lengths), bos_id=corpus.bos_id).eval()
    cfg = QK_PRESETS["tiny"]
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    lay = arch.layout(model)
    halves = collect(model, lay, ids, lab, cfg, lab["width"], rotary=True).halves
    S_h, n_h = halves.q_sum, halves.q_n
    S, n = S_h.sum(0), n_h.sum(0)  # the two halves of the documents (even, odd) add up to all of them
    keep = n.sum(1) > 0
    tables = arch.rotary_tables(model, n.shape[1] - 1, 1)
    W_Q, b_Q, _, _ = (t.double().numpy() for t in arch.qk_weights(model, 1))
    got = rotated_query_map(S[1][keep], n[keep], tables)(W_Q[2], b_Q[2])

    # the same rows of what attention reads (ln1.hook_out; same batches as collect, so the same float32 bits),
    # rotated token by token in float64:
    # the two differ only in the order of float64 sums (~1e-15 relative); 1e-6 on queries of size ~0.1
    ln1 = hook_name("ln1", 1)
    x = np.concatenate([run_with_cache(model, as_tensor(ids[s:e]), [ln1])[1][ln1].double().numpy()
                        for s, e in batches(len(ids), cfg.batch_size)])
    sel = lab["query"] & (lab["offset"] >= 0)
    r = arch.rotate_by_offset(x[sel] @ W_Q[2] + b_Q[2], lab["offset"][sel], tables)
    want = np.stack([r[lab["count"][sel] == c].mean(0) for c in np.nonzero(keep)[0]])
    np.testing.assert_allclose(got, want, atol=1e-6)
    even = sel & (np.arange(len(ids)) % 2 == 0)[:, None]  # half 0 holds the even-numbered documents
    r0 = arch.rotate_by_offset(x[even] @ W_Q[2] + b_Q[2], lab["offset"][even], tables)
    k0 = n_h[0].sum(1) > 0
    want0 = np.stack([r0[lab["count"][even] == c].mean(0) for c in np.nonzero(k0)[0]])
    np.testing.assert_allclose(rotated_query_map(S_h[0][1][k0], n_h[0][k0], tables)(W_Q[2], b_Q[2]), want0,
                               atol=1e-6)
    assert np.abs(got - got.mean(0)).max() > 1e-3  # the rotation gives the query side real structure

    res = qk_analysis(model, corpus, cfg, tokenizer=corpus.tokenizer)
    assert res.query_frame.startswith("rotated") and len(res.heads) == 8


def test_mean_logits_are_the_heads_real_scores(trained, qk_result):
    """S[i, k] from the weights equals the product of the per-count and per-width means of the q and k the
    model itself computes (read from its fused c_attn), and q . k / sqrt(d_head) is the logit its softmax
    uses (log-ratios of the measured attention pattern)."""
    from linebreak.hooks import arch
    from linebreak.qk import twist
    from linebreak.qk.collect import collect, select_docs
    from linebreak.qk.maps import HeadWeights, head_sides, mean_logits

    _, model, corpus = trained
    cfg = QK_PRESETS["tiny"]
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    L, h = 1, 1
    H, dh = model.config.n_head, model.config.n_embd // model.config.n_head
    grabbed, inputs = [], []

    def grab(module, args, out):
        inputs.append(args[0])
        grabbed.append(out)

    hook = model.transformer.h[L].attn.c_attn.register_forward_hook(grab)
    pats = []
    # the batches collect uses, so the ln1 rows both sides start from are the same float32 numbers
    pattern = hook_name("pattern", L)
    for s, e in batches(len(ids), cfg.batch_size):
        cache = run_with_cache(model, as_tensor(ids[s:e]), [pattern], output_attentions=True)[1]
        pats.append(cache[pattern][:, h].numpy())
    hook.remove()
    qkv = torch.cat(grabbed).double().numpy()
    x = np.abs(torch.cat(inputs).double().numpy())  # |ln1 rows|, for the rounding bound below
    q, k = qkv[..., h * dh:(h + 1) * dh], qkv[..., H * dh + h * dh: H * dh + (h + 1) * dh]
    i_values, k_values = qk_result.i_values, qk_result.k_values
    qm, nl = lab["query"], lab["is_newline"].astype(bool)
    Qbar = np.stack([q[qm & (lab["count"] == c)].mean(0) for c in i_values])
    Kbar = np.stack([k[nl & (lab["width"] == w)].mean(0) for w in k_values])

    sums = collect(model, arch.layout(model), ids, lab, cfg, lab["width"], False).halves
    q_sum, q_n, k_sum, k_n = sums.q_sum, sums.q_n, sums.k_sum, sums.k_n
    Qm = q_sum.sum(0)[L].sum(1)[i_values] / q_n.sum(0).sum(1)[i_values, None]
    Km = k_sum.sum(0)[L][k_values] / k_n.sum(0)[k_values, None]
    W_Q, b_Q, W_K, b_K = (t.double().numpy() for t in arch.qk_weights(model, L))
    w = HeadWeights(L, h, W_Q[h], b_Q[h], W_K[h], b_K[h])
    S = mean_logits(head_sides(twist.plain_query_map(Qm), sums.total(), w, i_values, k_values, Km, None),
                    arch.score_divisor(model, L))
    assert arch.score_divisor(model, L) == np.sqrt(dh)  # GPT-2's scaling, d_head^-1/2
    # S is float64 from the ln1 rows; the model's q, k are float32 x @ W + b, each entry off by at most
    # gamma_(d+1) * (|x| @ |W| + |b|) (d products and the bias, any summation order), so the means' logits are
    # off by at most the bound B below (the float64 sums add ~1e-15 relative)
    u = np.finfo(np.float32).eps / 2
    gamma = (model.config.n_embd + 1) * u / (1 - (model.config.n_embd + 1) * u)
    Eq = np.stack([(x[qm & (lab["count"] == c)] @ np.abs(W_Q[h]) + np.abs(b_Q[h])).mean(0) for c in i_values])
    Ek = np.stack([(x[nl & (lab["width"] == w)] @ np.abs(W_K[h]) + np.abs(b_K[h])).mean(0) for w in k_values])
    Eq, Ek = gamma * Eq, gamma * Ek
    B = (Eq @ np.abs(Kbar).T + np.abs(Qbar) @ Ek.T + Eq @ Ek.T) / np.sqrt(dh) + 1e-12 * np.abs(S).max()
    assert np.all(np.abs(S - Qbar @ Kbar.T / np.sqrt(dh)) <= B)

    # the scale: for one query, the log-ratio of its attention on two keys is the difference of their logits
    pat = np.concatenate(pats)
    b, t = np.argwhere(qm & (lab["prev_nl"] >= 0))[5]
    s1, s2 = lab["prev_nl"][b, t], 0
    want = q[b, t] @ (k[b, s1] - k[b, s2]) / np.sqrt(dh)
    # the model's float32 logits are off by at most gamma_dh * |q| . |k| / sqrt(dh) each, plus a rounding of the
    # scaled logit; its softmax shifts by the row's max m (a rounding of |s - m|) and rounds exp and the division
    # (a few ulp each). The bound is far below a logit's size, so a wrong scale or key would still fail.
    g_dh = dh * u / (1 - dh * u)
    s_abs = np.abs(q[b, t]) @ (np.abs(k[b, s1]) + np.abs(k[b, s2])) / np.sqrt(dh)
    m_abs = np.abs(q[b, t] @ k[b, : t + 1].T).max() / np.sqrt(dh)
    tol = (g_dh + u) * s_abs + 2 * u * (s_abs + 2 * m_abs) + 16 * u
    got_ratio = np.log(pat[b, t, s1] / pat[b, t, s2])
    assert abs(got_ratio - want) <= tol, (got_ratio, want, tol)
    # and the analysis reports the split of exactly this matrix
    for top in qk_result.top:  # the detailed heads carry the very matrix their split was taken from
        split = twist.score_decomposition(top.logits, i_values, k_values)
        head = qk_result.head(top.name)
        assert split["interaction_share"] == head.comparison.interaction_share
    got = dataclasses.asdict(qk_result.head(f"L{L}H{h}").comparison)
    want = twist.score_decomposition(S, i_values, k_values)
    assert {k: v for k, v in got.items() if k != "range"} == pytest.approx(
        {k: v for k, v in want.items() if k != "range"}, rel=1e-6, abs=1e-9)
    assert got["range"] == pytest.approx(want["range"], rel=1e-6)


def test_comparison_finding_reports_the_best_heads_split(qk_result):
    from linebreak.study.findings import qk_findings

    q = QKResult.from_json(json.loads(json.dumps(qk_result.to_json())))  # as the study reads it back
    f = next(x for x in qk_findings(q, {}) if x.key == "qk_comparison")
    best = q.head(q.verdict.best_head)
    c = best.comparison
    assert f.value == c.interaction_share
    assert f"{best.name} {c.count_share:.1%} query side (count), {c.width_share:.1%} key side" in f.sentence
    assert abs(c.count_share + c.width_share + c.interaction_share - 1) < 1e-9  # three float64 ratios


def test_comparison_table_script(qk_result, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    q = json.loads(json.dumps(qk_result.to_json()))
    save_json(tmp_path / "m1" / "qk.json", q)
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "comparison_table.py")]
    out = subprocess.run(script + [str(tmp_path / "m1")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    best = next(h for h in q["heads"] if h["name"] == q["verdict"]["best_head"])
    c = best["comparison"]
    assert f"| m1 | {best['name']} {c['count_share']:.2f} / {c['width_share']:.2f} / " in out.stdout
    assert "1 models; median interaction share" in out.stdout
    save_json(tmp_path / "run7" / "qk" / "qk.json", q)  # a study's stage folder: the row takes the run's name
    staged = subprocess.run(script + [str(tmp_path / "run7" / "qk")], capture_output=True, text=True)
    assert staged.returncode == 0 and "| run7 | " in staged.stdout
    save_json(tmp_path / "unversioned" / "qk.json", {k: v for k, v in q.items() if k != "format"})
    unversioned = subprocess.run(script + [str(tmp_path / "unversioned")], capture_output=True, text=True)
    assert unversioned.returncode == 0 and "| unversioned | " in unversioned.stdout  # read as the current format
    save_json(tmp_path / "other" / "qk.json", {**q, "format": "linebreak-qk/0"})
    other = subprocess.run(script + [str(tmp_path / "other")], capture_output=True, text=True)
    assert other.returncode == 2 and "format" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    for h in q["heads"]:
        h.pop("comparison")
    save_json(tmp_path / "old" / "qk.json", q)
    bad = subprocess.run(script + [str(tmp_path / "old")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: old: qk.json has no score decomposition")
    missing = subprocess.run(script + [str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no qk.json" in missing.stderr and "Traceback" not in missing.stderr
