"""The command-line path capture -> probe -> plot on a tiny random model: every number in JSON, a table on
the terminal, probe weights in safetensors, labelled figures; bad input is one line and exit 2."""

import json

import pytest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from linebreak.corpus.store import CorpusConfig, generate_corpus, load_corpus
    from linebreak.train.model import ModelConfig, build_model

    d = tmp_path_factory.mktemp("p")
    generate_corpus(CorpusConfig(widths="12:20", seq_len=64, n_train=4, n_val=30, vocab_size=20,
                                 max_word_len=6), d / "corpus")
    c = load_corpus(d / "corpus")
    m = build_model(ModelConfig(arch="gpt2", n_layer=2, d_model=32, n_head=4, d_mlp=64, n_ctx=64),
                    len(c.token_lengths), c.bos_id)
    m.save_pretrained(d / "model")
    c.tokenizer.save_pretrained(d / "model")
    return d


def test_capture_probe_plot(run_dir, cli, tmp_path):
    acts, probes = tmp_path / "capture", tmp_path / "probe"  # the stage folders, as under runs/
    rc, _, err = cli("capture", "--model", run_dir / "model", "--corpus", run_dir / "corpus", "--out", acts,
                     "--control", "--sites", "resid_pre,resid_post", "--max-docs", "30")
    assert rc == 0, err
    rc, out, err = cli("probe", "--acts", acts, "--out", probes, "--min-per-count", "5", "--value-probe-iters", "30")
    assert rc == 0, err
    assert "R2 count" in out and "control" in out and "resid_post.1" in out
    res = json.loads((probes / "probe.json").read_text())
    layer = res["layers"]["resid_post.1"]
    assert res["format"] == "linebreak-probe/1"
    assert {"probes", "count_probes", "centroids", "counts"} <= set(layer)
    # cumulative variance shares: <= 1 up to the rounding of a sum of <= 10 ratios (10 float64 eps)
    assert 0 <= layer["centroids"]["pca"]["top3"] <= layer["centroids"]["pca"]["top6"] <= 1 + 1e-14
    assert (probes / "probes.safetensors").is_file() and (probes / "control" / "probe.json").is_file()
    from linebreak.io import load_tensors

    t = load_tensors(probes / "probes.safetensors")
    V = layer["counts"]["n"]
    assert t["resid_post.1.count_probes.weight"].shape == (V, 32) and t["resid_post.1.count.weight"].shape == (32,)

    figs = tmp_path / "figs"
    rc, out, err = cli("plot", "--probes", probes, "--out", figs)
    assert rc == 0, err
    names = {p.name for p in figs.iterdir()}
    for f in ("model_resid_post_L1_helix_pc123.png", "model_resid_post_L1_helix_pc123.html",
              "model_resid_post_L1_helix_pc456.html", "model_resid_post_L1_similarity_centroids.png",
              "model_resid_post_L1_similarity_count_probes.png", "control_resid_post_L1_helix_pc123.html",
              "probe_r2_by_layer.png", "peak_width_by_layer.png"):
        assert f in names, f
    html = (figs / "model_resid_post_L1_helix_pc123.html").read_text()
    assert "blocks.1.hook_resid_post" in html and "PC1 (" in html
    assert "<script src=\"http" not in html  # plotly.js embedded, nothing fetched

    rc, _, err = cli("probe", "--acts", acts, "--out", probes)
    assert rc == 2 and "--force" in err
    rc, _, err = cli("probe", "--acts", acts, "--out", tmp_path / "strict", "--min-per-count", "100000")
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("linebreak probe: error: too few tokens per value")
    rc, _, err = cli("plot", "--probes", probes, "--layers", "resid_post.9", "--out", figs)
    assert rc == 2 and "no analysis for resid_post.9" in err


def test_html_figures_are_byte_reproducible(tmp_path):
    import plotly.graph_objects as go

    from linebreak.plots.common import save_html

    fig = go.Figure(go.Scatter3d(x=[0, 1], y=[1, 0], z=[0, 2]))
    a, b = save_html(fig, tmp_path / "a" / "helix.html"), save_html(fig, tmp_path / "b" / "helix.html")
    assert a.read_bytes() == b.read_bytes() and 'id="linebreak-helix"' in a.read_text()
