"""Causal checks end to end on a tiny model trained in the test (fixed seeds, seconds)."""

import json

import numpy as np
import pytest
import torch

from linebreak.causal.analysis import project_out
from linebreak.hooks import heads
from linebreak.io import save_json
from linebreak.io import to_jsonable as _json
from linebreak.presets import CAUSAL as CAUSAL_PRESETS


def test_head_outputs_add_up_to_the_attention_output(trained):
    _, model, corpus = trained
    ids = heads.as_tensor(corpus.splits["validation"].input_ids[:2])
    out = heads.forward(model, ids, z=(1,), attention=False)
    z = out["z"][1]
    per_head = heads.head_outputs(model, 1, z, range(model.config.n_head))
    proj = heads.out_proj(model, 1)
    with torch.no_grad():
        full = proj(z.flatten(-2)) - proj(torch.zeros_like(z.flatten(-2)))
    assert torch.allclose(sum(per_head.values()), full, atol=1e-5)


def test_full_subspace_ablation_is_zeroing(trained):
    _, model, corpus = trained
    ids = heads.as_tensor(corpus.splits["validation"].input_ids[:2])
    d = model.config.n_embd
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    with heads.edit_resid_pre(model, 1, project_out(basis)):
        a = heads.forward(model, ids, attention=False)["logits"]
    with heads.edit_resid_pre(model, 1, lambda x: torch.zeros_like(x)):
        b = heads.forward(model, ids, attention=False)["logits"]
    assert torch.allclose(a, b, atol=1e-4)
    plain = heads.forward(model, ids, attention=False)["logits"]
    assert not torch.allclose(a, plain, atol=1e-3)


def test_causal_checks(trained, qk_result, causal_result, finite_tree):
    _, model, corpus = trained
    res = causal_result
    ha = res["head_ablation"]
    base = res["baseline"]
    # removing every head of every layer leaves the model blind to context: its loss must rise
    from contextlib import ExitStack

    from linebreak.causal.analysis import _eval

    with ExitStack() as stack:
        for L in range(model.config.n_layer):
            stack.enter_context(heads.ablate_heads(model, L, range(model.config.n_head)))
        blind = _eval(model, corpus.splits["validation"].input_ids[:32], corpus.newline_id, 16)
    assert blind["loss"] > base["loss"] + 0.02
    assert ha["all_heads_of_layer"]["loss"] > base["loss"]
    assert set(ha) >= {"top", "random", "top_n", "all_heads_of_layer", "top_beats_random"}
    # the measured boundary head is the head whose attention to the previous newline varies most
    from linebreak.causal.analysis import boundary_ranking

    ranges = {h["name"]: h["response"]["range"] for h in qk_result["heads"]}
    top = res["boundary_head_ablation"]["top_head"]
    assert top == f"L{boundary_ranking(qk_result)[0][0]}H{boundary_ranking(qk_result)[0][1]}"
    assert ranges[top] == max(r for r in ranges.values() if np.isfinite(r))
    ka = res["key_ablation"]
    assert set(ka) == {ha["top_head"], top}
    assert ka[top]["comparison"] == next(h for h in qk_result["heads"] if h["name"] == top)["comparison"]
    assert ka[top]["head_d_newline"] == res["boundary_head_ablation"]["top"]["d_newline"]
    sa = res["subspace_ablation"]
    assert sa["dim"] <= CAUSAL_PRESETS["tiny"].subspace_dim and len(sa["random_subspaces"]) == 2
    assert 0 < sa["variance_explained"] <= 1
    deltas = [c["delta"] for c in res["patching"]["curve"]]
    assert deltas == sorted(deltas) and 0 in deltas
    zero = next(c for c in res["patching"]["curve"] if c["delta"] == 0)
    assert 0 < zero["p_newline"] < 1
    ins = res["insertion"]
    assert ins["sites"] > 0 and len(ins["strings"]) >= 3
    assert all(0 <= s["attention_to_insert"] <= len(ins["heads"]) * 2 for s in ins["strings"])
    assert finite_tree(_json(res)) == []


def test_key_ablation_freezes_the_heads_newline_keys(trained):
    """With one head's keys at newlines frozen to their mean, that head (GPT-2: no rotary) gives every earlier
    newline the same logit, so a query's attention to two previous newlines is equal; the loss change is
    reported beside the head's whole ablation."""
    from linebreak.causal.analysis import key_ablation, key_ablations
    from linebreak.qk import analysis as qk

    _, model, corpus = trained
    cfg = CAUSAL_PRESETS["tiny"]
    ids, lab = qk.select_docs(corpus, cfg.split, cfg.n_docs)
    nl = corpus.newline_id
    L, h = 1, 2
    x = heads.as_tensor(ids[:8])
    b, t = next((b, t) for b, t in np.argwhere(lab["query"][:8]) if (ids[b, :t] == nl).sum() >= 2)
    first, second = np.nonzero(ids[b, :t] == nl)[0][:2]
    with heads.edit_keys(model, L, h, lambda k, xx: torch.where((xx == nl)[..., None], k.mean((0, 1)), k)):
        pat = heads.forward(model, x)["pattern"][L][b, h, t]
    assert abs(float(pat[first] - pat[second])) < 1e-6
    base_pat = heads.forward(model, x)["pattern"][L][b, h, t]
    assert abs(float(base_pat[first] - base_pat[second])) > 1e-6  # the edit is what made them equal

    from linebreak.causal.analysis import _eval
    base = _eval(model, ids, nl, cfg.batch_size)
    k = key_ablation(model, ids, nl, L, h, cfg, base, corpus.token_lengths)
    assert set(k) == {"mean", "resample", "resample_same_length"}
    for m in k:
        assert np.isfinite(k[m]["d_newline"]) and k[m]["newline_loss"] != base["newline_loss"]
    assert k == key_ablation(model, ids, nl, L, h, cfg, base, corpus.token_lengths)  # the resampling is seeded
    both = key_ablations(model, ids, nl, {(L, h): 0.5}, cfg, base, corpus.token_lengths)
    assert list(both) == [f"L{L}H{h}"]
    assert both[f"L{L}H{h}"]["key_share"] == pytest.approx({m: k[m]["d_newline"] / 0.5 for m in k})


def test_line_lengths_of_a_batch_are_the_corpus_labels(trained):
    from linebreak.causal.analysis import _line_lengths
    from linebreak.qk import analysis as qk

    _, _, corpus = trained
    ids, lab = qk.select_docs(corpus, "validation", 8)
    got = _line_lengths(heads.as_tensor(ids), corpus.newline_id, corpus.token_lengths).numpy()
    nl = ids == corpus.newline_id
    assert np.array_equal(got[nl], lab["line_len"][nl]) and (got[nl] > 0).all() and (got[~nl] == -1).all()


def test_resample_rows_draws_pool_rows_at_masked_positions_only():
    from linebreak.causal.analysis import resample_rows

    k = torch.randn(3, 7, 4)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0, 2] = mask[1, 5] = mask[2, 0] = True
    pool = torch.randn(5, 4)
    out = resample_rows(k, mask, pool, torch.Generator().manual_seed(0))
    assert torch.equal(out[~mask], k[~mask])
    assert all(any(torch.equal(r, p) for p in pool) for r in out[mask])
    again = resample_rows(k, mask, pool, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    # within groups: each masked row takes a pool row of its own group; a group the pool lacks keeps its row
    groups = torch.zeros(3, 7, dtype=torch.long)
    groups[0, 2], groups[1, 5], groups[2, 0] = 1, 2, 9
    pool_groups = torch.tensor([1, 2, 1, 2, 3])
    out = resample_rows(k, mask, pool, torch.Generator().manual_seed(1), groups, pool_groups)
    assert any(torch.equal(out[0, 2], pool[j]) for j in (0, 2))
    assert any(torch.equal(out[1, 5], pool[j]) for j in (1, 3))
    assert torch.equal(out[2, 0], k[2, 0]) and torch.equal(out[~mask], k[~mask])


def test_key_ablation_table_script(causal_result, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    c = json.loads(json.dumps(_json(causal_result)))
    save_json(tmp_path / "run3" / "causal" / "causal.json", c)
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "comparison_table.py"), "--causal"]
    out = subprocess.run(script + [str(tmp_path / "run3" / "causal")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    top = c["boundary_head_ablation"]["top_head"]
    k = c["key_ablation"][top]
    assert (f"| run3 | {top} (boundary) | {k['head_d_newline']:+.3f} | {k['mean']['d_newline']:+.3f} / "
            f"{k['resample']['d_newline']:+.3f} / {k['resample_same_length']['d_newline']:+.3f} |") in out.stdout
    assert len(out.stdout.strip().splitlines()) == 2 + len(c["key_ablation"])
    c.pop("key_ablation")
    save_json(tmp_path / "old" / "causal.json", c)
    bad = subprocess.run(script + [str(tmp_path / "old")], capture_output=True, text=True)
    assert bad.returncode == 2 and "no key ablation" in bad.stderr and "Traceback" not in bad.stderr
