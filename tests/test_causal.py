"""Causal checks end to end on a tiny model trained in the test (fixed seeds, seconds)."""

import json

import numpy as np
import pytest
import torch

from linebreak.causal.ablation import project_out
from linebreak.causal.loss import evaluate
from linebreak.hooks import arch
from linebreak.hooks.interventions import ablate_heads, edit_keys, edit_resid_pre
from linebreak.hooks.measure import head_outputs
from linebreak.hooks.run import as_tensor, run_with_cache, run_with_hooks
from linebreak.io import UserError, save_json
from linebreak.presets import CAUSAL as CAUSAL_PRESETS
from linebreak.qk.collect import select_docs

EPS32 = float(torch.finfo(torch.float32).eps)


def pattern(model, x, layer):
    return run_with_cache(model, x, [f"blocks.{layer}.attn.hook_pattern"])[1][f"blocks.{layer}.attn.hook_pattern"]


def test_head_outputs_add_up_to_the_attention_output(trained):
    _, model, corpus = trained
    ids = as_tensor(corpus.splits["validation"].input_ids[:2])
    z = run_with_cache(model, ids, ["blocks.1.attn.hook_z"])[1]["blocks.1.attn.hook_z"]
    H = model.config.n_head
    per_head = head_outputs(model, 1, z, range(H))
    proj = arch.out_proj(model, 1)
    with torch.no_grad():
        full = proj(z.flatten(-2)) - proj(torch.zeros_like(z.flatten(-2)))
        # float32: each side sums n = H * d_head products and adds and removes the bias; the per-head side adds
        # H rounded vectors more. Each is within (n + H + 4) eps (|z| @ |W| + (H + 1) |b|) of the exact sum.
        scale = z.flatten(-2).abs() @ proj.weight.abs() + (H + 1) * proj.bias.abs()  # GPT-2 Conv1D: z @ W + b
    tol = 2 * (z.shape[-1] * H + H + 4) * EPS32 * scale
    assert ((sum(per_head.values()) - full).abs() <= tol).all()
    assert (full.abs() > 100 * tol).any()  # the sum is far above its rounding: a missing head would show


def test_full_subspace_ablation_is_zeroing(trained):
    """Projecting out a full orthonormal basis (project_out at hook_resid_pre) is zeroing the residual stream.

    In float32 the projection leaves a residue of order d eps |x|, and the next LayerNorm divides it by
    sqrt(var + 1e-5) (about 300x), so the logits of "projected" and "zeroed" differ by ~1e-4, CPU-dependent:
    not a tolerance to compare at. So (1) the float32 projection is checked against its rounding bound, and
    (2) the model comparison is made in float64 with a random orthonormal basis that float32 stores exactly
    (a Hadamard matrix / sqrt(d), columns permuted and signs flipped at random)."""
    import copy

    from scipy.linalg import hadamard

    _, model, corpus = trained
    ids = as_tensor(corpus.splits["validation"].input_ids[:2])
    d = model.config.n_embd
    rng = np.random.default_rng(0)
    # (1) float32, a random rotation: x - (x B) B^T, with B rounded to float32 (B B^T = I + E, |E_ij| <= eps),
    # two d-term products (gamma_d <= d eps each, on |x| |B| |B|^T) and a subtraction
    x = run_with_cache(model, ids, ["blocks.1.hook_resid_pre"])[1]["blocks.1.hook_resid_pre"]
    B = np.linalg.qr(rng.standard_normal((d, d)))[0]
    B32 = torch.as_tensor(B, dtype=torch.float32).abs()
    tol = (EPS32 * (x.abs() + x.abs().sum(-1, keepdim=True))
           + 2 * (d + 1) * EPS32 * (x.abs() @ B32) @ B32.T)
    assert (project_out(B)(x).abs() <= tol).all()
    # (2) float64 through the model: B exact in float32 and orthonormal, so the residue is only float64 rounding
    # (<= 2 d u64 sum|x| / sqrt(d)); the LayerNorm magnifies it by at most max|gamma| / sqrt(1e-5), and the rest of
    # this 2-layer model (attention, MLP, unembedding) by far less than the 1e3 allowed here
    assert d & (d - 1) == 0, "the Hadamard basis needs d a power of 2"
    H = hadamard(d)[:, rng.permutation(d)] * rng.choice([-1.0, 1.0], d) / np.sqrt(d)
    assert np.array_equal(H.astype(np.float32).astype(np.float64), H) and np.array_equal(H @ H.T, np.eye(d))
    m64 = copy.deepcopy(model).double()
    with edit_resid_pre(m64, 1, project_out(H)):
        a = run_with_hooks(m64, ids)
    with edit_resid_pre(m64, 1, lambda x: torch.zeros_like(x)):
        b = run_with_hooks(m64, ids)
    x64 = x.double()
    residue = 2 * d * float(torch.finfo(torch.float64).eps) * float(x64.abs().sum(-1).max()) / np.sqrt(d)
    gain = float(arch.attn_norm(m64, 1).weight.detach().abs().max()) / np.sqrt(1e-5) * 1e3
    assert (a - b).abs().max() <= residue * gain
    plain = run_with_hooks(model, ids)
    assert not torch.allclose(a.float(), plain, atol=1e-3)


def test_causal_checks(trained, qk_result, causal_result, finite_tree):
    _, model, corpus = trained
    res = causal_result
    ha = res.head_ablation
    base = res.baseline
    # removing every head of every layer leaves the model blind to context: its loss must rise
    from contextlib import ExitStack

    with ExitStack() as stack:
        for L in range(model.config.n_layer):
            stack.enter_context(ablate_heads(model, L, range(model.config.n_head)))
        blind = evaluate(model, corpus.splits["validation"].input_ids[:32], corpus.newline_id, 16)
    assert blind.loss > base.loss + 0.02
    assert ha.all_heads_of_layer.loss > base.loss
    assert set(vars(ha)) >= {"top", "random", "top_n", "all_heads_of_layer", "top_beats_random"}
    # the measured boundary head is the head whose attention to the previous newline varies most
    from linebreak.causal.analysis import boundary_ranking

    ranges = {h.name: h.response.range for h in qk_result.heads}
    top = res.boundary_head_ablation.top_head
    assert top == f"L{boundary_ranking(qk_result)[0][0]}H{boundary_ranking(qk_result)[0][1]}"
    assert ranges[top] == max(r for r in ranges.values() if np.isfinite(r))
    ka = res.key_ablation
    assert set(ka) == {ha.top_head, top}
    assert ka[top].comparison == qk_result.head(top).comparison
    assert ka[top].head_d_newline == res.boundary_head_ablation.top.d_newline
    sa = res.subspace_ablation
    assert sa.dim <= CAUSAL_PRESETS["tiny"].subspace_dim and len(sa.random_subspaces) == 2
    assert 0 < sa.variance_explained <= 1
    deltas = [c.delta for c in res.patching.curve]
    assert deltas == sorted(deltas) and 0 in deltas
    zero = next(c for c in res.patching.curve if c.delta == 0)
    assert 0 < zero.p_newline < 1
    ins = res.insertion
    assert ins.sites > 0 and len(ins.strings) >= 3
    assert all(0 <= s.attention_to_insert <= len(ins.heads) * 2 for s in ins.strings)
    assert finite_tree(res.to_json()) == []


def test_causal_result_round_trip_and_wrong_format(causal_result, tmp_path):
    from linebreak.causal.result import CausalResult

    j = causal_result.to_json()
    assert j["format"] == "linebreak-causal/1" and list(j)[1:] == [
        "config", "n_docs", "baseline", "head_ablation", "boundary_head_ablation", "key_ablation",
        "subspace_ablation", "patching", "insertion"]
    again = CausalResult.from_json(json.loads(json.dumps(j)))
    assert again.to_json() == j and isinstance(again.head_ablation.top.d_newline, float)
    assert again.config == causal_result.config and again.key_ablation.keys() == causal_result.key_ablation.keys()
    causal_result.save(tmp_path / "causal.json")
    assert CausalResult.load(tmp_path / "causal.json").to_json() == j
    for bad in ({**j, "format": "linebreak-causal/0"}, {k: v for k, v in j.items() if k != "format"},
                {**j, "format": "linebreak-qk/1"}):
        with pytest.raises(UserError, match="is not 'linebreak-causal/1'"):
            CausalResult.from_json(bad)
    # a sweep with no site to edit writes only its two keys, as before
    from linebreak.causal.result import Insertion

    empty = CausalResult.from_json({**j, "insertion": {"sites": 0, "strings": []}})
    assert empty.insertion == Insertion(sites=0, strings=[])
    assert empty.to_json()["insertion"] == {"sites": 0, "strings": []}


def test_key_ablation_freezes_the_heads_newline_keys(trained):
    """With one head's keys at newlines frozen to their mean, that head (GPT-2: no rotary) gives every earlier
    newline the same logit, so a query's attention to two previous newlines is equal; the loss change is
    reported beside the head's whole ablation."""
    from linebreak.causal.keys import key_ablation, key_ablations

    _, model, corpus = trained
    cfg = CAUSAL_PRESETS["tiny"]
    ids, lab = select_docs(corpus, cfg.split, cfg.n_docs)
    nl = corpus.newline_id
    L, h = 1, 2
    x = as_tensor(ids[:8])
    b, t = next((b, t) for b, t in np.argwhere(lab["query"][:8]) if (ids[b, :t] == nl).sum() >= 2)
    first, second = np.nonzero(ids[b, :t] == nl)[0][:2]
    names = [f"blocks.{L}.attn.hook_q", f"blocks.{L}.attn.hook_k", f"blocks.{L}.attn.hook_pattern"]
    with edit_keys(model, L, h, lambda k, xx: torch.where((xx == nl)[..., None], k.mean((0, 1)), k)):
        _, cache = run_with_cache(model, x, names)
    q, k = (cache[n][b, :, h] for n in names[:2])  # [T, d_head]
    pat = cache[names[2]][b, h, t]
    assert torch.equal(k[first], k[second])  # the cache sees the edited keys: identical at both newlines
    # equal keys give equal scores up to the dot product's rounding (d_head terms, any order), and softmax turns
    # a score difference e into a probability difference <= p e, plus rounding of exp and the division
    dh = q.shape[-1]
    d_score = 2 * dh * EPS32 * float((q[t].abs() * k[first].abs()).sum()) / np.sqrt(dh)
    tol = float(pat[first]) * (d_score + 4 * EPS32)
    assert abs(float(pat[first] - pat[second])) <= tol
    base_pat = pattern(model, x, L)[b, h, t]
    assert abs(float(base_pat[first] - base_pat[second])) > 1e-6  # the edit is what made them equal

    base = evaluate(model, ids, nl, cfg.batch_size)
    k = key_ablation(model, ids, nl, L, h, cfg, base, corpus.token_lengths)
    assert set(k) == {"mean", "resample", "resample_same_length"}
    for m in k:
        assert np.isfinite(k[m].d_newline) and k[m].newline_loss != base.newline_loss
    assert k == key_ablation(model, ids, nl, L, h, cfg, base, corpus.token_lengths)  # the resampling is seeded
    both = key_ablations(model, ids, nl, {(L, h): 0.5}, cfg, base, corpus.token_lengths)
    assert list(both) == [f"L{L}H{h}"]
    assert both[f"L{L}H{h}"].key_share == {m: k[m].d_newline / 0.5 for m in k}  # the same division, exactly


def test_line_lengths_of_a_batch_are_the_corpus_labels(trained):
    from linebreak.causal.keys import line_lengths

    _, _, corpus = trained
    ids, lab = select_docs(corpus, "validation", 8)
    got = line_lengths(as_tensor(ids), corpus.newline_id, corpus.token_lengths).numpy()
    nl = ids == corpus.newline_id
    assert np.array_equal(got[nl], lab["line_len"][nl]) and (got[nl] > 0).all() and (got[~nl] == -1).all()


def test_resample_rows_draws_pool_rows_at_masked_positions_only():
    from linebreak.causal.keys import resample_rows

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

    c = json.loads(json.dumps(causal_result.to_json()))
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
