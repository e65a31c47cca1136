"""The mod-P reference: data, model shortcut, analysis on built weights, phases, bad input."""

import dataclasses

import numpy as np
import pytest
import torch

from linebreak.grok import analysis
from linebreak.grok.config import GrokConfig
from linebreak.grok.data import make_data
from linebreak.grok.model import ModelShape, Transformer
from linebreak.grok.phases import detect_phases
from linebreak.io import UserError
from linebreak.presets import GROK as PRESETS


def test_data_split_is_seeded_and_complete():
    d = make_data(13, 0.3, seed=1)
    assert d.tokens.shape == (169, 3) and bool((d.tokens[:, 2] == 13).all())
    assert torch.equal(d.labels, (d.tokens[:, 0] + d.tokens[:, 1]) % 13)
    both = torch.cat([d.train_idx, d.test_idx]).sort().values
    assert torch.equal(both, torch.arange(169)) and len(d.train_idx) == int(0.3 * 169)
    assert torch.equal(make_data(13, 0.3, seed=1).train_idx, d.train_idx)
    assert not torch.equal(make_data(13, 0.3, seed=2).train_idx, d.train_idx)


@pytest.mark.parametrize("p,frac", [(1, 0.3), (2, 0.3), (15, 0.3), (113, 0.0), (113, 1.0), (113, -0.1)])
def test_bad_task_is_refused(p, frac):
    with pytest.raises(UserError):
        make_data(p, frac, 0)


def test_eq_only_forward_matches_the_full_model():
    m = Transformer(ModelShape(17, d_model=32, n_heads=2, d_head=16, d_mlp=64), seed=3).double()
    d = make_data(17, 0.5, 0)
    # in float64: the two orders of operations differ by ~1e-16 relative, far below the tolerance
    torch.testing.assert_close(m(d.tokens), m.forward_all_positions(d.tokens), rtol=1e-10, atol=1e-10)
    assert sum(p.numel() for p in Transformer(ModelShape(113)).parameters()) == 226_688  # Nanda: ~226k


def _trig_model(p, keys):
    """A model whose embedding lives on ``keys`` and whose logits are exactly the trig-identity circuit."""
    m = Transformer(ModelShape(p, d_model=32, n_heads=1, d_head=8, d_mlp=16), seed=0)
    x = np.arange(p)
    with torch.no_grad():
        W = np.zeros((p + 1, 32))
        for i, k in enumerate(keys):
            W[:p, 2 * i], W[:p, 2 * i + 1] = np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)
        m.W_E.copy_(torch.tensor(W, dtype=torch.float32))
    return m


def test_key_frequencies_and_restricted_loss_on_a_built_circuit():
    p, keys = 23, [3, 7]
    m = _trig_model(p, keys)
    assert sorted(analysis.embedding_key_frequencies(m)) == keys
    d = make_data(p, 0.3, 0)
    a, b = d.tokens[:, 0].double().numpy(), d.tokens[:, 1].double().numpy()
    c = np.arange(p)
    circuit = sum(np.cos(2 * np.pi * k * (a[:, None] + b[:, None] - c[None]) / p) for k in keys) * 8
    junk = np.random.default_rng(0).standard_normal(circuit.shape) * 0.5

    class Fixed(torch.nn.Module):  # logits = circuit + noise, through the same analysis code path
        shape = m.shape

        def forward(self, tokens):
            return torch.from_numpy(circuit + junk).float()

    restricted, excluded = analysis.restricted_excluded_loss(Fixed(), d, keys)
    full = float(analysis.cross_entropy(torch.from_numpy(circuit + junk), d.labels))
    assert restricted < full  # the projection drops the noise and keeps the circuit
    assert excluded > np.log(p) * 0.8  # with the circuit removed the answer is ~chance
    r_wrong, _ = analysis.restricted_excluded_loss(Fixed(), d, [1, 5])
    assert r_wrong > np.log(p) * 0.9


def test_neuron_frequencies_find_planted_frequencies():
    p = 19
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    rng = np.random.default_rng(0)
    acts = np.stack([np.cos(2 * np.pi * 4 * a / p) * np.cos(2 * np.pi * 4 * b / p),  # pure k = 4
                     np.maximum(np.cos(2 * np.pi * 7 * (a + b) / p + 0.3), 0),  # ReLU: k = 7 plus harmonics
                     rng.standard_normal((p, p)),  # no frequency
                     np.full((p, p), 2.0)], axis=-1)  # dead (constant) neuron
    nf = analysis.frequency_shares(acts)
    assert nf.freq[:2].tolist() == [4, 7] and nf.freq[3] == 0
    assert nf.share[0] == pytest.approx(1.0) and 0.5 < nf.share[1] < 0.95 and nf.share[2] < 0.3
    m = Transformer(ModelShape(p, d_model=16, n_heads=1, d_head=4, d_mlp=8), seed=0)
    out = analysis.neuron_frequencies(m, make_data(p, 0.5, 0))
    assert out.freq.shape == (8,) and np.all((0 <= out.share) & (out.share <= 1 + 1e-9))


def test_phases_from_synthetic_curves():
    steps = np.arange(0, 2001, 50)
    train_acc = np.where(steps >= 100, 1.0, 0.5)
    test_loss = np.where(steps < 100, 4 + steps / 25, 8.0)
    test_loss = np.where(steps >= 1000, 8.0 * np.exp(-(steps - 1000) / 100), test_loss)
    test_acc = np.where(steps >= 1300, 0.99, 0.02)
    recs = [dict(step=int(s), train_acc=float(ta), test_acc=float(te), train_loss=0.01, test_loss=float(tl))
            for s, ta, te, tl in zip(steps, train_acc, test_acc, test_loss)]
    ph = detect_phases(recs)
    assert (ph.memorised, ph.grok) == (100, 1300)
    assert ph.circuit == 1100  # first step below half the peak of 8
    assert ph.cleanup == 1450  # 8 exp(-4.5) = 0.089 < 0.1
    assert [s[0] for s in ph.spans(2000)] == ["memorisation", "circuit formation", "clean-up"]
    assert detect_phases(recs[:3]).circuit is None


def test_presets_are_valid():
    assert PRESETS["nanda"] == GrokConfig()
    assert (PRESETS["nanda"].p, PRESETS["nanda"].lr, PRESETS["nanda"].weight_decay) == (113, 1e-3, 1.0)
    fast = PRESETS["fast"]
    assert 0 < fast.frac_train < 0.6 and dataclasses.replace(fast).steps == fast.steps


def test_cli_bad_input_is_one_line(cli, tmp_path):
    for args in (["--p", "15"], ["--p", "2"], ["--frac-train", "1.5"], ["--frac-train", "0"]):
        rc, _, err = cli("grok", "--out", tmp_path / "x", "--no-progress", *args)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def test_same_seed_same_log(tmp_path):
    from linebreak.grok.train import run_grok

    cfg = GrokConfig(p=13, frac_train=0.5, d_model=16, n_heads=2, d_head=8, d_mlp=32, steps=30, eval_every=10,
                     measure_every=10, checkpoint_every=30)
    logs = []
    for name in ("a", "b"):
        res = run_grok(cfg, tmp_path / name, progress=False, figures=False)
        logs.append((tmp_path / name / "log.jsonl").read_bytes())
        assert [r["step"] for r in res.records] == [0, 10, 20, 30] and "restricted_loss" in res.records[-1]
    assert logs[0] == logs[1]
    with pytest.raises(UserError):
        run_grok(dataclasses.replace(cfg, steps=0), tmp_path / "c", progress=False)


def test_same_seed_same_run(tmp_path):
    """Same seed, same machine: the same log, bit for bit (one thread; see run_grok)."""
    import dataclasses

    from linebreak.grok.train import run_grok
    from linebreak.presets import GROK as PRESETS

    cfg = dataclasses.replace(PRESETS["fast"], steps=120, eval_every=40, measure_every=40, checkpoint_every=120)
    a = run_grok(cfg, tmp_path / "a", progress=False, figures=False, threads=1).records
    b = run_grok(cfg, tmp_path / "b", progress=False, figures=False, threads=1).records
    assert a == b


def test_summary_is_typed_round_trips_and_refuses_another_format(tmp_path):
    """run_grok's summary is a GrokResult: summary.json is its to_json() (the summary plus "format"; no
    "figures" key when none were drawn), it loads back to the same object, and another format is refused."""
    import json

    from linebreak.grok.phases import Phases
    from linebreak.grok.result import GrokResult
    from linebreak.grok.train import run_grok

    cfg = GrokConfig(p=13, frac_train=0.5, d_model=16, n_heads=2, d_head=8, d_mlp=32, steps=20, eval_every=10,
                     measure_every=10, checkpoint_every=20)
    s = run_grok(cfg, tmp_path / "g", progress=False, figures=False).summary
    assert isinstance(s, GrokResult) and s.config == cfg and isinstance(s.phases, Phases)
    data = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert data == json.loads(json.dumps(s.to_json())) and data["format"] == "linebreak-grok/1"
    assert list(data)[:3] == ["format", "config", "n_train"] and "figures" not in data
    assert data["phases"] == dataclasses.asdict(s.phases) and data["n_key_frequencies"] == len(s.key_frequencies)
    back = GrokResult.load(tmp_path / "g" / "summary.json")
    assert back == s and back.to_json() == s.to_json()
    drawn = GrokResult.from_json({**data, "figures": ["grok_curves.png"]})
    assert drawn.to_json()["figures"] == ["grok_curves.png"]
    for bad in ({**data, "format": "linebreak-grok/0"}, {k: v for k, v in data.items() if k != "format"}):
        with pytest.raises(UserError, match="format") as e:
            GrokResult.from_json(bad)
        assert "\n" not in str(e.value)
