"""qk on a subset of layers (``--layers``), the probe route's capped row sample (``--probe-rows``) and the budget
check (``--max-gb``): a subset gives its heads exactly the numbers the all-layer run gives them, and what the
stage holds is planned, bounded and refused up front."""

import dataclasses

import numpy as np
import pytest
import torch

from linebreak.io import UserError, to_jsonable
from linebreak.presets import QK as QK_PRESETS
from linebreak.qk.analysis import qk_analysis
from linebreak.results import plain


def _numbers(head) -> dict:
    """Everything a head reports but its rank (which depends on the other heads analysed)."""
    return {k: v for k, v in to_jsonable(plain(head)).items() if k != "rank"}


def _assert_subset_matches(sub, full, layers):
    assert sub.layers == layers and sub.analysed_layers == layers
    assert sorted({h.layer for h in sub.heads}) == layers
    assert len(sub.heads) == len(layers) * full.layout.n_heads
    for h in sub.heads:  # exactly the same numbers: means, controls, probes, shuffles
        assert _numbers(h) == _numbers(full.head(h.name)), h.name
    np.testing.assert_array_equal(sub.i_values, full.i_values)
    np.testing.assert_array_equal(sub.k_values, full.k_values)
    if full.verdict.probes is not None:
        fits = {f.layer: to_jsonable(plain(f)) for f in full.verdict.probes.fits}
        assert [to_jsonable(plain(f)) for f in sub.verdict.probes.fits] == [fits[L] for L in layers]


def test_layer_subset_gives_its_heads_the_all_layer_numbers(trained, qk_result):
    _, model, corpus = trained
    sub = qk_analysis(model, corpus, dataclasses.replace(QK_PRESETS["tiny"], layers=(1,)), tokenizer=corpus.tokenizer)
    _assert_subset_matches(sub, qk_result, [1])
    assert qk_result.layers is None and qk_result.analysed_layers == [0, 1]
    assert "layers" not in qk_result.to_json() and sub.to_json()["layers"] == [1]


def test_layer_subset_of_a_rotary_model(trained):
    """A middle layer of a 3-layer rotary model: the controls of the layers before and after it are drawn and
    dropped, the shuffles of the others jumped over, the rotary tables taken for that layer alone."""
    from linebreak.train.model import ModelConfig, build_model

    _, _, corpus = trained
    model = build_model(ModelConfig(arch="llama", pos="rotary", n_layer=3, d_model=32, n_head=2, d_mlp=64,
                                    n_ctx=64), vocab_size=len(corpus.token_lengths), bos_id=corpus.bos_id).eval()
    cfg = QK_PRESETS["tiny"]
    full = qk_analysis(model, corpus, cfg, tokenizer=corpus.tokenizer)
    sub = qk_analysis(model, corpus, dataclasses.replace(cfg, layers=(1,)), tokenizer=corpus.tokenizer)
    _assert_subset_matches(sub, full, [1])
    two = qk_analysis(model, corpus, dataclasses.replace(cfg, layers=(2, 0)), tokenizer=corpus.tokenizer)
    _assert_subset_matches(two, full, [0, 2])


def test_a_subset_result_round_trips_and_feeds_figures_findings_and_causal(trained, tmp_path):
    from linebreak.causal.analysis import causal_checks
    from linebreak.plots.qk import plot_qk
    from linebreak.presets import CAUSAL
    from linebreak.qk.result import QKResult
    from linebreak.study.findings.qk import qk_findings

    _, model, corpus = trained
    sub = qk_analysis(model, corpus, dataclasses.replace(QK_PRESETS["tiny"], layers=(1,)), tokenizer=corpus.tokenizer)
    sub.save(tmp_path / "qk.json")
    back = QKResult.load(tmp_path / "qk.json")
    assert back.layers == [1] and back.config.layers == (1,)
    assert plot_qk(back, tmp_path / "fig")
    found = {f.key: f for f in qk_findings(back, {})}
    assert "layer 1 only" in found["qk_verdict"].sentence
    res = causal_checks(model, corpus, back, CAUSAL["tiny"], tokenizer=corpus.tokenizer)
    assert res.head_ablation.top_head == back.heads[0].name and res.head_ablation.top_head.startswith("L1")


def test_plan_is_what_collect_holds(trained):
    """The budget is planned from the labels and the layout alone, and equals the bytes the pass then holds."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import collect, planned_bytes, select_docs

    _, model, corpus = trained
    cfg = dataclasses.replace(QK_PRESETS["tiny"], layers=(1,))
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    lay = arch.layout(model)
    data = collect(model, lay, ids, lab, cfg, lab["width"], rotary=False)
    s, rows = data.halves, data.rows
    n_rows = sum(len(a) for a in rows.q[1] + rows.k[1])
    plan = planned_bytes(lay, 1, s.q_n.shape[1], s.q_n.shape[2], s.k_n.shape[1], len(data.attention[1]), n_rows,
                         normed=False)
    assert plan["sums"] == s.q_sum.nbytes + s.k_sum.nbytes
    assert plan["attention"] == data.attention[1].nbytes
    assert plan["probe_rows"] == sum(a.nbytes for a in rows.q[1] + rows.k[1])
    assert list(data.attention) == [1] and list(rows.q) == [1] and s.layers == (1,)


def test_probe_rows_caps_the_sample(trained):
    """With a cap below the rows there are, the route fits on a seeded sample of exactly that many rows (queries
    and newlines alike), the same whichever layers are analysed, and still runs."""
    from linebreak.hooks import arch
    from linebreak.qk.collect import collect, query_rows, select_docs

    _, model, corpus = trained
    cfg = dataclasses.replace(QK_PRESETS["tiny"], probe_rows=600)
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    lay = arch.layout(model)
    n_q, n_k = int(query_rows(lab, False).sum()), int(lab["is_newline"].sum())
    assert n_q + n_k > cfg.probe_rows
    rows = collect(model, lay, ids, lab, cfg, lab["width"], rotary=False).rows
    q, k = rows.layer(0)
    assert len(q) + len(k) == cfg.probe_rows and len(q) > len(k) > 0
    assert len(np.concatenate([c for c, _, _ in rows.q_lab])) == len(q)
    assert len(np.concatenate([v for v, _ in rows.k_lab])) == len(k)
    one = collect(model, lay, ids, lab, dataclasses.replace(cfg, layers=(1,)), lab["width"], rotary=False).rows
    np.testing.assert_array_equal(one.layer(1)[0], rows.layer(1)[0])
    res = qk_analysis(model, corpus, cfg, tokenizer=corpus.tokenizer)
    assert res.verdict.probes is not None and len(res.verdict.probes.fits) == lay.n_layers
    # the default keeps every row of the default study (128 documents x 256 tokens: 27161 rows)
    assert QK_PRESETS["default"].probe_rows >= 128 * 256


def _one_error_line(err: str) -> bool:
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if "error:" in ln]
    return len(lines) == 1 and "Traceback" not in err


def test_cli_budget_and_bad_layers_are_one_line(trained, cli, tmp_path):
    root, _, _ = trained
    base = ("qk", "--model", root / "model", "--corpus", root / "corpus", "--figures", tmp_path / "fig",
            "--preset", "tiny")
    rc, _, err = cli(*base, "--out", tmp_path / "o1", "--max-gb", "1e-5")
    assert rc == 2 and _one_error_line(err)
    assert "over --max-gb" in err and all(w in err for w in ("--layers", "--n-docs", "--probes false",
                                                              "--probe-rows"))
    assert not (tmp_path / "o1" / "qk.json").exists()
    rc, _, err = cli(*base, "--out", tmp_path / "o2", "--layers", "7")
    assert rc == 2 and _one_error_line(err) and "layer 7 does not exist" in err
    rc, _, err = cli(*base, "--out", tmp_path / "o3", "--layers", "-1")
    assert rc == 2 and _one_error_line(err)
    rc, out, err = cli(*base, "--out", tmp_path / "o4", "--layers", "1", "--probe-rows", "500")
    assert rc == 0, err
    assert "L1H" in out and "L0H" not in out


def test_probe_fit_settings_reach_the_route(trained, qk_result):
    """Fewer L-BFGS iterations give other probes (the route's fits read the setting); the defaults are the
    estimator's own, so the default result is the one every other test reads."""
    _, model, corpus = trained
    short = qk_analysis(model, corpus, dataclasses.replace(QK_PRESETS["tiny"], probe_iters=2),
                        tokenizer=corpus.tokenizer)
    fit, full = short.verdict.probes.fits[0], qk_result.verdict.probes.fits[0]
    assert fit.layer == full.layer and fit.count_rmse != full.count_rmse
    means = [to_jsonable(plain((h.qk, h.comparison))) for h in short.heads]  # the means route reads no probe
    assert means == [to_jsonable(plain((h.qk, h.comparison))) for h in qk_result.heads]


def test_config_validation():
    from linebreak.qk.config import QKConfig

    assert QKConfig(layers="3,1").layers == (3, 1)
    for bad in ({"layers": (-1,)}, {"probe_rows": 0}, {"max_gb": 0}, {"probe_iters": 0}, {"probe_fit_rows": 0}):
        with pytest.raises(UserError):
            QKConfig(**bad)


def test_study_layers_reach_the_qk_stage():
    from linebreak.study.pipeline import StudyConfig, resolve

    sp = resolve(StudyConfig(preset="tiny", layers=(1,), max_gb=20))
    assert sp.qk.layers == (1,) and sp.capture.layers == (1,) and sp.qk.max_gb == sp.capture.max_gb == 20
    default = resolve(StudyConfig(preset="tiny"))
    assert default.qk.layers == () and default.qk.max_gb == QK_PRESETS["tiny"].max_gb


def test_read_pass_gives_each_reader_exactly_its_documents(trained):
    """Batches end at every reader's document count, so a reader of fewer documents sees just those, and one
    of the same documents as a pass of its own sees that pass's batches."""
    from linebreak.hooks.points import hook_name
    from linebreak.hooks.run import Reader, batches, read_pass

    _, model, corpus = trained
    ids = corpus.splits["validation"].input_ids[:20]
    seen: dict[str, list] = {"all": [], "few": []}
    rows: dict[str, list] = {"all": [], "few": []}

    def reader(name, n):
        def keep(x, _):
            rows[name].append(x.shape[0])
        return Reader([(hook_name("resid_pre", 0), keep)], lambda s, e: seen[name].append((s, e)), n)

    read_pass(model, ids, 8, [reader("all", 20), reader("few", 5)], progress=False)
    assert seen["few"] == [(0, 5)] and rows["few"] == [5]
    assert seen["all"] == [(0, 5), (5, 8), (8, 16), (16, 20)] and sum(rows["all"]) == 20
    seen["all"].clear()
    read_pass(model, ids, 8, [reader("all", 20)], progress=False)
    assert seen["all"] == list(batches(20, 8))


def test_qk_riding_the_capture_pass_gives_the_numbers_of_its_own_pass(trained, qk_result):
    """The study's one pass for the capture and the qk sums: the qk result and the capture are exactly those
    of two passes of their own."""
    from linebreak.capture.collect import capture
    from linebreak.presets import CAPTURE
    from linebreak.qk.analysis import qk_pass

    _, model, corpus = trained
    cap = dataclasses.replace(CAPTURE["tiny"], max_docs=48)  # more documents than qk reads: it rides the first 32
    read = qk_pass(model, corpus, QK_PRESETS["tiny"], tokenizer=corpus.tokenizer)
    shared = capture(model, corpus, cap, progress=False, also=[read.reader])
    alone = capture(model, corpus, cap, progress=False)
    assert shared.acts.keys() == alone.acts.keys()
    for name, x in alone.acts.items():
        assert torch.equal(shared.acts[name], x), name
    rode = qk_analysis(model, corpus, QK_PRESETS["tiny"], tokenizer=corpus.tokenizer, read=read)
    assert to_jsonable(rode.to_json()) == to_jsonable(qk_result.to_json())
