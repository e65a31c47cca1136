"""linebreak.hooks on tiny random GPT-2, Llama (grouped-query) and GPT-NeoX models: the per-head W_Q/W_K arch
returns must reproduce the queries and keys the model actually computes from the attention norm's output, and
run_with_hooks / run_with_cache must read and edit the forward pass exactly (TransformerLens names)."""

import pytest
import torch

from linebreak.hooks import arch, load
from linebreak.io import UserError

VOCAB = 48
EPS32 = float(torch.finfo(torch.float32).eps)


def affine_tol(x, W, b):
    """Worst-case float32 rounding difference between two evaluations of ``x @ W[h] + b[h]`` (any summation
    order): each is within ``gamma_(n+1) * (|x| @ |W| + |b|)`` of the exact value, ``n`` the number of terms,
    ``gamma_m = m u / (1 - m u) <= m eps`` (u = eps / 2), so two differ by at most twice that."""
    n = x.shape[-1]
    return 2 * (n + 1) * EPS32 * (torch.einsum("...d,hde->...he", x.abs(), W.abs()) + b.abs())


def tiny_model(kind: str = "gpt2", seed: int = 0, n_layer: int = 2, d: int = 32, n_head: int = 4):
    """A randomly initialised causal LM with eager attention (biases made non-zero where they exist)."""
    from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig

    torch.manual_seed(seed)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=d, n_layer=n_layer, n_head=n_head,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    elif kind == "llama":
        cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=n_layer,
                          num_attention_heads=n_head, num_key_value_heads=n_head // 2,
                          max_position_embeddings=64, attention_bias=True)
    else:
        cfg = GPTNeoXConfig(vocab_size=VOCAB, hidden_size=d, intermediate_size=2 * d,
                            num_hidden_layers=n_layer, num_attention_heads=n_head, max_position_embeddings=64,
                            use_parallel_residual=False)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def tiny_tokenizer(n: int = VOCAB):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "\n": 1} | {f"w{i}": i for i in range(2, n)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<bos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>")


@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox"])
def test_qk_weights_reproduce_model_queries_and_keys(kind):
    model = tiny_model(kind)
    lay = arch.layout(model)
    assert lay.arch == kind and lay.n_layers == 2 and lay.d_head == 8
    assert lay.n_kv_heads == (2 if kind == "llama" else 4)
    assert len(arch.blocks(model)) == 2
    ids = torch.randint(0, VOCAB, (2, 10))
    seen = {}
    for layer in range(2):
        seen.clear()
        handles = [arch.attn_norm(model, layer).register_forward_hook(
            lambda m, i, o: seen.__setitem__("x", o))]
        for site in ("q", "k"):
            src = arch.qk_source(model, layer, site)
            handles.append(src.module.register_forward_hook(lambda m, i, o, s=site, f=src.read: seen.update({s: f(o)})))
        with torch.no_grad():
            model(ids)
        for h in handles:
            h.remove()
        W_Q, b_Q, W_K, b_K = arch.qk_weights(model, layer)
        assert W_Q.shape == W_K.shape == (4, 32, 8) and b_Q.shape == b_K.shape == (4, 8)
        q = torch.einsum("btd,hde->bthe", seen["x"], W_Q) + b_Q
        k = torch.einsum("btd,hde->bthe", seen["x"], W_K) + b_K
        assert ((q - seen["q"]).abs() <= affine_tol(seen["x"], W_Q, b_Q)).all()
        # hook_k has one key per key/value head (TL's layout); qk_weights repeats them per query head
        assert seen["k"].shape[-2] == lay.n_kv_heads
        k_seen = seen["k"].repeat_interleave(lay.n_heads // lay.n_kv_heads, -2)
        assert ((k - k_seen).abs() <= affine_tol(seen["x"], W_K, b_K)).all()
        assert b_Q.abs().sum() > 0  # biases were read, not zero-filled


def test_missing_layer_and_unsupported_model():
    model = tiny_model("gpt2")
    with pytest.raises(UserError, match="layer 5 does not exist"):
        arch.qk_weights(model, 5)

    class Fake:
        config = type("C", (), {"model_type": "bert"})()
    with pytest.raises(UserError, match="unsupported model type"):
        arch.layout(Fake())


def test_load_model_round_trip_and_bad_folders(tmp_path):
    model, tok = tiny_model("llama"), tiny_tokenizer()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, ltok = load.load_model(tmp_path / "m")
    assert not loaded.training and loaded.config._attn_implementation == "eager"
    assert next(loaded.parameters()).dtype == torch.float32
    for a, b in zip(arch.qk_weights(model, 1), arch.qk_weights(loaded, 1)):
        assert torch.equal(a, b)  # the same float32 weights, read the same way
    with pytest.raises(UserError, match="no config.json"):
        load.load_model(tmp_path / "nothing")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="could not load model"):
        load.load_model(tmp_path / "m")


def test_tokenizer_mismatch_is_refused():
    corpus = type("Corpus", (), {"tokenizer": tiny_tokenizer(VOCAB)})()
    load.check_tokenizer_matches(tiny_tokenizer(VOCAB), corpus)
    with pytest.raises(UserError, match="does not match the corpus tokenizer"):
        load.check_tokenizer_matches(tiny_tokenizer(VOCAB + 3), corpus)


@pytest.mark.parametrize("kind", ["llama", "neox"])
def test_rotate_by_offset_reproduces_the_attention_pattern(kind):
    """Scores (R_{t-s} q_t) . k_s from pre-rotary W_Q/W_K and the model's own rotary tables, softmaxed under
    the causal mask, are the attention pattern the model computes (GQA, biases and NeoX's partial rotary)."""
    import numpy as np

    from linebreak.hooks.run import run_with_cache

    model = tiny_model(kind)
    T = 12
    ids = torch.randint(0, VOCAB, (1, T))
    seen = {}
    handle = arch.attn_norm(model, 1).register_forward_hook(lambda m, i, o: seen.__setitem__("x", o))
    _, cache = run_with_cache(model, ids, ["blocks.1.attn.hook_pattern"])
    handle.remove()
    pattern = cache["blocks.1.attn.hook_pattern"]
    x = seen["x"][0].double().numpy()
    W_Q, b_Q, W_K, b_K = (t.double().numpy() for t in arch.qk_weights(model, 1))
    tables = arch.rotary_tables(model, T - 1)
    t, s = np.tril_indices(T)
    d, dh = x.shape[1], W_Q.shape[2]
    for h in range(4):
        q, k = x @ W_Q[h] + b_Q[h], x @ W_K[h] + b_K[h]
        scores = np.full((T, T), -np.inf)
        scores[t, s] = (arch.rotate_by_offset(q[t], t - s, tables) * k[s]).sum(1) / np.sqrt(q.shape[1])
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        # The model's float32 scores: q and k each within (d + 1) eps A of exact (A bounds |x| @ |W| + |b|,
        # hence every |q_i|, |k_i|), the rotation adds a few eps and mixes two components (sqrt 2), the dot
        # product over d_head terms another d_head eps: |dscore| <= sqrt(2 dh) (2 d + dh + 5) eps A_q A_k.
        # Softmax turns a score error e into a probability error <= 2 e (p <= 1), plus rounding.
        A_q = (np.abs(x) @ np.abs(W_Q[h]) + np.abs(b_Q[h])).max()
        A_k = (np.abs(x) @ np.abs(W_K[h]) + np.abs(b_K[h])).max()
        d_score = np.sqrt(2 * dh) * (2 * d + dh + 5) * EPS32 * A_q * A_k
        np.testing.assert_allclose(p, pattern[0, h].double().numpy(), rtol=0, atol=2 * d_score + 4 * EPS32)
    assert arch.is_rotary(model) and not arch.is_rotary(tiny_model("gpt2"))


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_attention_only_models(kind, tmp_path):
    """d_mlp=0: every MLP adds exactly zero, stays zero through a training step, and survives save/load."""
    from linebreak.io import UserError as Err
    from linebreak.train.model import ModelConfig, build_model

    cfg = ModelConfig(arch=kind, pos="learned" if kind == "gpt2" else "rotary", n_layer=2, d_model=32,
                      n_head=4, d_mlp=0, n_ctx=32)
    model = build_model(cfg, VOCAB, 0)
    outs = []
    for b in arch.blocks(model):
        b.mlp.register_forward_hook(lambda m, i, o: outs.append(o.detach()))
    ids = torch.randint(0, VOCAB, (2, 16))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    model(ids, labels=ids).loss.backward()
    opt.step()
    outs.clear()
    with torch.no_grad():
        model(ids)
    assert len(outs) == 2 and all(float(o.abs().max()) == 0.0 for o in outs)
    model.save_pretrained(tmp_path)
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():
        assert torch.equal(again(ids).logits, model.eval()(ids).logits)  # same weights, same kernels
    with pytest.raises(Err, match="d_mlp"):
        build_model(ModelConfig(d_mlp=-1), VOCAB, 0)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox"])
def test_key_slice_is_the_heads_key_and_edit_keys_moves_only_that_head(kind):
    """The slice arch.key_slice names is the key arch.qk_source reads for that head; editing it through
    edit_keys changes that head's attention pattern (and any head sharing its key group) and no other."""
    from linebreak.hooks.interventions import edit_keys
    from linebreak.hooks.run import run_with_cache

    def pattern(m, x):
        return run_with_cache(m, x, [f"blocks.{layer}.attn.hook_pattern"])[1][f"blocks.{layer}.attn.hook_pattern"]

    model = tiny_model(kind)
    ids = torch.randint(2, VOCAB, (2, 12))
    layer = 1
    seen = {}
    for site in ("q", "k"):
        src = arch.qk_source(model, layer, site)
        module = src.module
        h1 = module.register_forward_hook(lambda m, i, o, s=site, f=src.read: seen.__setitem__(s, f(o)))
        h2 = module.register_forward_hook(lambda m, i, o, M=module: seen.__setitem__(id(M), o))
        with torch.no_grad():
            model(ids)
        h1.remove()
        h2.remove()
    lay = arch.layout(model)
    H = lay.n_heads
    for h in range(H):
        module, sl = arch.key_slice(model, layer, h)
        kv = h // (H // lay.n_kv_heads)  # hook_k has one key per key/value head
        assert torch.equal(seen[id(module)][..., sl], seen["k"][..., kv, :])  # the same numbers, only sliced

    base = pattern(model, ids)
    with edit_keys(model, layer, 2, lambda k, x: torch.zeros_like(k) + (x[..., None] == ids[0, 0])):
        edited = pattern(model, ids)
    changed = [h for h in range(H) if not torch.equal(edited[:, h], base[:, h])]  # others: untouched, bit for bit
    shared = [2, 3] if kind == "llama" else [2]  # Llama here has 2 key groups of 2 heads
    assert changed == shared


# ---- linebreak.hooks.run: run_with_hooks / run_with_cache on TransformerLens names ---------------------------
@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox"])
def test_run_with_cache_matches_the_models_hidden_states(kind):
    """hook_resid_pre of layer L is the model's own hidden_states[L] (and resid_post of L is hidden_states[L+1]
    below the last layer, whose hidden state HF reports after the final norm), bit for bit."""
    from linebreak.hooks.run import run_with_cache

    model = tiny_model(kind)
    ids = torch.randint(0, VOCAB, (2, 10))
    names = [f"blocks.{L}.hook_resid_pre" for L in range(2)] + ["blocks.0.hook_resid_post"]
    logits, cache = run_with_cache(model, ids, names)
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    assert torch.equal(logits, out.logits)
    for L in range(2):
        assert torch.equal(cache[f"blocks.{L}.hook_resid_pre"], out.hidden_states[L])
    assert torch.equal(cache["blocks.0.hook_resid_post"], out.hidden_states[1])
    assert not cache["blocks.0.hook_resid_pre"].requires_grad


@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox"])
def test_replacing_hook_z_equals_the_same_edit_made_in_the_weights(kind):
    """Zeroing head 1's z at blocks.1.attn.hook_z changes the logits exactly as zeroing that head's slice of
    the output projection's weight does (the products are exact zeros either way)."""
    import copy

    from linebreak.hooks.run import run_with_hooks

    model = tiny_model(kind)
    ids = torch.randint(0, VOCAB, (2, 10))
    dh = arch.layout(model).d_head

    def zero_head_1(z, name):
        assert name == "blocks.1.attn.hook_z" and z.shape == (2, 10, 4, dh)
        z = z.clone()
        z[..., 1, :] = 0
        return z

    hooked = run_with_hooks(model, ids, [("blocks.1.attn.hook_z", zero_head_1)])
    by_hand = copy.deepcopy(model)
    proj = arch.out_proj(by_hand, 1)
    with torch.no_grad():
        if kind == "gpt2":  # Conv1D: out = z @ W, W [H * d_head, d_model]
            proj.weight[dh: 2 * dh] = 0
        else:  # Linear: out = z @ W.T, W [d_model, H * d_head]
            proj.weight[:, dh: 2 * dh] = 0
        expected = by_hand(ids).logits
    assert torch.equal(hooked, expected)
    assert not torch.equal(hooked, run_with_hooks(model, ids))  # the edit did something; no hook left behind
    with torch.no_grad():
        assert torch.equal(run_with_hooks(model, ids), model(ids).logits)


@pytest.mark.parametrize("kind", ["llama", "neox"])
def test_replacing_hook_resid_pre_equals_the_same_edit_of_the_embeddings(kind):
    """Doubling blocks.0.hook_resid_pre is running the model on doubled input embeddings (no position
    embedding is added to the residual in these models; doubling is exact in floating point)."""
    from linebreak.hooks.run import run_with_hooks

    model = tiny_model(kind)
    ids = torch.randint(0, VOCAB, (2, 10))
    hooked = run_with_hooks(model, ids, [("blocks.0.hook_resid_pre", lambda x, name: 2 * x)])
    with torch.no_grad():
        expected = model(inputs_embeds=2 * model.get_input_embeddings()(ids)).logits
    assert torch.equal(hooked, expected)


def test_hook_names_read_only_points_and_key_heads():
    from linebreak.hooks.points import POINTS, hook_name, parse_name
    from linebreak.hooks.run import run_with_hooks

    for site in POINTS:
        assert parse_name(hook_name(site, 3)) == (site, 3)
    with pytest.raises(ValueError, match="unknown hook point"):
        parse_name("blocks.0.mlp.hook_post")
    model = tiny_model("llama")
    ids = torch.randint(0, VOCAB, (1, 6))
    for name in ("blocks.0.hook_resid_mid", "blocks.0.attn.hook_pattern"):
        with pytest.raises(ValueError, match="can be read, not replaced"):
            run_with_hooks(model, ids, [(name, lambda x, n: x * 2)])

    # hook_k has one key per key/value head (2 here, for 4 query heads), as TransformerLens' hook_k has
    shapes = {}
    run_with_hooks(model, ids, [("blocks.1.attn.hook_k", lambda k, n: shapes.update(k=k.shape))])
    assert tuple(shapes["k"]) == (1, 6, 2, 8)
    with pytest.raises(UserError, match="layer 7 does not exist"):
        run_with_hooks(model, ids, [("blocks.7.hook_resid_pre", lambda x, n: None)])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_resid_noise_hooks_draw_what_the_training_loop_draws(kind):
    """linebreak.hooks.interventions.add_resid_noise makes the same draws as the training loop's former
    block pre-hook (written out below, so that noisy training stays bit-identical across the move to hooks):
    equal logits in training mode for the same generator seed, none in eval mode."""
    from linebreak.hooks.arch import blocks
    from linebreak.hooks.interventions import add_resid_noise
    from linebreak.hooks.run import remove

    def former(model, scale, generator):  # the training loop's own pre-hook before linebreak.hooks existed
        def pre_hook(module, args, kwargs):
            if not module.training:
                return None
            h = args[0] if args else kwargs["hidden_states"]
            rms = h.detach().pow(2).mean(-1, keepdim=True).sqrt()
            h = h + scale * rms * torch.randn(h.shape, generator=generator, dtype=h.dtype, device=h.device)
            return ((h, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": h})
        return [b.register_forward_pre_hook(pre_hook, with_kwargs=True) for b in blocks(model)]

    model = tiny_model(kind).train()
    ids = torch.randint(0, VOCAB, (2, 10))
    outs = []
    for make in (former, add_resid_noise):
        handles = make(model, 0.3, torch.Generator().manual_seed(5))
        outs.append(model(ids).logits.detach())
        remove(handles)
    assert torch.equal(outs[0], outs[1])
    with torch.no_grad():
        clean = model(ids).logits
        handles = add_resid_noise(model.eval(), 0.3, torch.Generator().manual_seed(5))
        assert torch.equal(model(ids).logits, clean)
    remove(handles)
    assert not torch.equal(outs[1], clean)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox"])
def test_ln1_names_hold_what_transformer_lens_holds(kind):
    """ln1.hook_out is the attention norm's output (what attention reads, weight and bias in); ln1.hook_normalized
    and ln1.hook_scale are TransformerLens' statistics of its input: centred for a LayerNorm, not for an RMSNorm,
    with the module's own eps, before the weight and bias."""
    from linebreak.hooks.points import hook_name
    from linebreak.hooks.run import run_with_cache

    model = tiny_model(kind)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or "norm" in name:
                p.add_(0.3 * torch.randn_like(p))  # a weight away from 1, so hook_out and hook_normalized differ
    ids = torch.randint(0, VOCAB, (2, 10))
    names = [hook_name(s, 1) for s in ("resid_pre", "ln1", "ln1_normalized", "ln1_scale")]
    _, c = run_with_cache(model, ids, names)
    x, out, normed, scale = (c[n].double() for n in names)
    norm = arch.attn_norm(model, 1)
    xc = x - x.mean(-1, keepdim=True) if kind != "llama" else x
    eps = norm.eps if kind != "llama" else norm.variance_epsilon
    want_scale = torch.sqrt(xc.pow(2).mean(-1, keepdim=True) + eps)
    # float32: a mean, a variance, an rsqrt and a product, each a few eps relative
    assert scale.shape == (2, 10, 1) and ((scale - want_scale).abs() <= 4 * EPS32 * want_scale).all()
    assert ((normed - xc / want_scale).abs() <= 8 * EPS32 * (xc / want_scale).abs().max()).all()
    with torch.no_grad():
        assert torch.equal(c[names[1]], norm(c[names[0]]))
    assert (out - normed).abs().max() > 0.1  # the weight is in hook_out, not in hook_normalized
    assert arch.attention_input_site(model) == "ln1"


def test_score_divisor_is_the_modules_own_scaling():
    """q . k is divided by what the attention module scales by: sqrt(d_head), times (layer + 1) when GPT-2 scales
    by the inverse layer index, 1 when it does not scale; exactly np.sqrt(d_head) where the scaling is
    d_head^-1/2 (the float64 number the QK analysis has always divided by)."""
    import numpy as np
    from transformers import AutoModelForCausalLM, GPT2Config

    assert arch.score_divisor(tiny_model("llama"), 1) == np.sqrt(8)
    for kw, want in (({"scale_attn_by_inverse_layer_idx": True}, 2 * np.sqrt(8)), ({"scale_attn_weights": False}, 1.0)):
        m = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, **kw))
        assert arch.score_divisor(m, 1) == pytest.approx(want, rel=1e-12)
