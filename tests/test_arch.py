"""linebreak.arch on tiny random GPT-2, Llama (grouped-query) and GPT-NeoX models: the per-head W_Q/W_K it
returns must reproduce the queries and keys the model actually computes from the attention norm's output."""

import pytest
import torch

from linebreak.hooks import arch
from linebreak.io import UserError

VOCAB = 48


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
        for module, extract in arch.qk_sources(model, layer):
            handles.append(module.register_forward_hook(lambda m, i, o, f=extract: seen.update(f(o))))
        with torch.no_grad():
            model(ids)
        for h in handles:
            h.remove()
        W_Q, b_Q, W_K, b_K = arch.qk_weights(model, layer)
        assert W_Q.shape == W_K.shape == (4, 32, 8) and b_Q.shape == b_K.shape == (4, 8)
        q = torch.einsum("btd,hde->bthe", seen["x"], W_Q) + b_Q
        k = torch.einsum("btd,hde->bthe", seen["x"], W_K) + b_K
        torch.testing.assert_close(q, seen["q"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(k, seen["k"], atol=1e-5, rtol=1e-5)
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
    loaded, ltok = arch.load_model(tmp_path / "m")
    assert not loaded.training and loaded.config._attn_implementation == "eager"
    assert next(loaded.parameters()).dtype == torch.float32
    for a, b in zip(arch.qk_weights(model, 1), arch.qk_weights(loaded, 1)):
        torch.testing.assert_close(a, b)
    with pytest.raises(UserError, match="no config.json"):
        arch.load_model(tmp_path / "nothing")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="could not load model"):
        arch.load_model(tmp_path / "m")


def test_tokenizer_mismatch_is_refused():
    corpus = type("Corpus", (), {"tokenizer": tiny_tokenizer(VOCAB)})()
    arch.check_tokenizer_matches(tiny_tokenizer(VOCAB), corpus)
    with pytest.raises(UserError, match="does not match the corpus tokenizer"):
        arch.check_tokenizer_matches(tiny_tokenizer(VOCAB + 3), corpus)


@pytest.mark.parametrize("kind", ["llama", "neox"])
def test_rotate_by_offset_reproduces_the_attention_pattern(kind):
    """Scores (R_{t-s} q_t) . k_s from pre-rotary W_Q/W_K and the model's own rotary tables, softmaxed under
    the causal mask, are the attention pattern the model computes (GQA, biases and NeoX's partial rotary)."""
    import numpy as np

    from linebreak.hooks import heads

    model = tiny_model(kind)
    T = 12
    ids = torch.randint(0, VOCAB, (1, T))
    seen = {}
    handle = arch.attn_norm(model, 1).register_forward_hook(lambda m, i, o: seen.__setitem__("x", o))
    out = heads.forward(model, ids)
    handle.remove()
    x = seen["x"][0].double().numpy()
    W_Q, b_Q, W_K, b_K = (t.double().numpy() for t in arch.qk_weights(model, 1))
    tables = arch.rotary_tables(model, T - 1)
    t, s = np.tril_indices(T)
    for h in range(4):
        q, k = x @ W_Q[h] + b_Q[h], x @ W_K[h] + b_K[h]
        scores = np.full((T, T), -np.inf)
        scores[t, s] = (arch.rotate_by_offset(q[t], t - s, tables) * k[s]).sum(1) / np.sqrt(q.shape[1])
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        np.testing.assert_allclose(p, out["pattern"][1][0, h].double().numpy(), atol=1e-5)
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
        torch.testing.assert_close(again(ids).logits, model.eval()(ids).logits)
    with pytest.raises(Err, match="d_mlp"):
        build_model(ModelConfig(d_mlp=-1), VOCAB, 0)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox"])
def test_key_slice_is_the_heads_key_and_edit_keys_moves_only_that_head(kind):
    """The slice arch.key_slice names is the key qk_sources reads for that head; editing it through
    heads.edit_keys changes that head's attention pattern (and any head sharing its key group) and no other."""
    from linebreak.hooks import heads

    model = tiny_model(kind)
    ids = torch.randint(2, VOCAB, (2, 12))
    layer = 1
    seen = {}
    for module, extract in arch.qk_sources(model, layer):
        h1 = module.register_forward_hook(lambda m, i, o, f=extract: seen.update(f(o)))
        h2 = module.register_forward_hook(lambda m, i, o, M=module: seen.__setitem__(id(M), o))
        with torch.no_grad():
            model(ids)
        h1.remove()
        h2.remove()
    H = arch.layout(model).n_heads
    for h in range(H):
        module, sl = arch.key_slice(model, layer, h)
        torch.testing.assert_close(seen[id(module)][..., sl], seen["k"][..., h, :])

    base = heads.forward(model, ids)["pattern"][layer]
    with heads.edit_keys(model, layer, 2, lambda k, x: torch.zeros_like(k) + (x[..., None] == ids[0, 0])):
        edited = heads.forward(model, ids)["pattern"][layer]
    changed = [h for h in range(H) if not torch.allclose(edited[:, h], base[:, h])]
    shared = [2, 3] if kind == "llama" else [2]  # Llama here has 2 key groups of 2 heads
    assert changed == shared
