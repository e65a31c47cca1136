"""The architecture families beyond GPT-2 / Llama / NeoX (Gemma, Qwen3, Gemma-2, Gemma-3, OLMo-2) on tiny
randomly initialised models built from their config classes (nothing downloaded):

(a) every hook point holds what the model computes: resid_pre/post are its own hidden states, the pattern its
    own attentions, resid_mid the block input plus the (post-normed) attention output, hook_q/k the
    projections and hook_q/k_normed the q/k norms of them, ln1.hook_normalized / hook_scale TransformerLens'
    formula;
(b) the QK analysis' view of a head (its normed queries and keys, rotated by offset with the layer's own
    tables, divided by the module's scaling, soft-capped) gives the head's real attention logits;
(c) ``linebreak study --model DIR --text FILE`` runs end to end on each family.

The weights are moved off their initial values (norm weights, biases, larger q/k projections), so that a
missed ``1 + weight``, a missed bias, a wrong scale or an unapplied soft cap shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linebreak.hooks import arch
from linebreak.hooks.points import hook_name
from linebreak.hooks.run import run_with_cache
from linebreak.io import UserError

VOCAB = 48
EPS32 = float(torch.finfo(torch.float32).eps)
FAMILIES = ["gemma", "qwen3", "gemma2", "gemma3", "olmo2"]


def family_config(name: str, vocab: int = VOCAB):
    import transformers as tf

    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                  attention_bias=True, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    return {
        "gemma": lambda: tf.GemmaConfig(**common),
        "qwen3": lambda: tf.Qwen3Config(**common),
        # a scalar other than d_head, and a cap small enough to bend the logits it caps
        "gemma2": lambda: tf.Gemma2Config(**common, query_pre_attn_scalar=12, attn_logit_softcapping=2.0),
        # a short window on the sliding layer, and a rotary base per layer type
        "gemma3": lambda: tf.Gemma3TextConfig(**common, query_pre_attn_scalar=6, sliding_window=4,
                                              layer_types=["sliding_attention", "full_attention"],
                                              rope_theta=10000.0, rope_local_base_freq=100.0),
        "olmo2": lambda: tf.Olmo2Config(**common),
    }[name]()


def family_model(name: str, vocab: int = VOCAB, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(family_config(name, vocab), attn_implementation="eager").eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or n.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
            elif n.endswith(("q_proj.weight", "k_proj.weight")):
                p.mul_(8.0)  # logits of order 1: soft caps and windows matter
    return model


@pytest.fixture(scope="module", params=FAMILIES)
def fam(request):
    return request.param, family_model(request.param)


def test_model_types_map_to_their_families(fam):
    name, model = fam
    assert arch.arch_of(model) == name and arch.is_rotary(model)
    lay = arch.layout(model)
    assert (lay.n_layers, lay.n_heads, lay.n_kv_heads, lay.d_head) == (2, 4, 2, 8)
    assert arch.has_qk_norm(model) == (name in ("qwen3", "gemma3", "olmo2"))
    assert arch.attention_input_site(model) == ("resid_pre" if name == "olmo2" else "ln1")
    assert (arch.softcap(model, 0) is not None) == (name == "gemma2")  # Gemma-3 keeps the setting, never applies it
    scaling = {"gemma2": 12 ** -0.5, "gemma3": 6 ** -0.5}.get(name, 8 ** -0.5)
    assert arch.score_divisor(model, 1) == pytest.approx(1 / scaling, rel=1e-12)


def _reference(model, ids):
    """What the model computes, read with plain module hooks: each block's attention input and attention output
    (after its post-attention norm where there is one), and the model's own hidden states and attentions."""
    seen = {}
    handles = []
    for L in range(2):
        att = arch.attention(model, L)
        handles.append(att.register_forward_pre_hook(
            lambda m, a, kw, L=L: seen.__setitem__(("in", L), kw.get("hidden_states", a[0] if a else None)),
            with_kwargs=True))
        writer = arch.attn_out_norm(model, L)
        if writer is None:
            handles.append(att.register_forward_hook(lambda m, a, o, L=L: seen.__setitem__(("write", L), o[0])))
        else:
            handles.append(writer.register_forward_hook(lambda m, a, o, L=L: seen.__setitem__(("write", L), o)))
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, output_attentions=True)
    for h in handles:
        h.remove()
    return seen, out


def _eps(norm) -> float:
    return norm.eps if hasattr(norm, "eps") else norm.variance_epsilon


def _rms(x, group: int, weight, gemma: bool, eps: float):
    """float64 RMSNorm over trailing groups of ``group`` values (one head, or all of them), times ``weight``
    (``1 + weight`` in Gemma's convention), the weight repeated over the groups."""
    g = x.double().unflatten(-1, (-1, group))
    g = (g / torch.sqrt(g.pow(2).mean(-1, keepdim=True) + eps)).flatten(-2)
    w = weight.double() + (1.0 if gemma else 0.0)
    return g * w.repeat(x.shape[-1] // w.numel())


def test_hook_points_hold_what_the_model_computes(fam):
    name, model = fam
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    seen, out = _reference(model, ids)
    sites = ["resid_pre", "resid_mid", "resid_post", "q", "k", "pattern"]
    sites += ["ln1", "ln1_normalized", "ln1_scale"] if name != "olmo2" else []
    sites += ["q_normed", "k_normed"] if arch.has_qk_norm(model) else []
    names = [hook_name(s, L) for s in sites for L in range(2)]
    _, cache = run_with_cache(model, ids, names, output_attentions=True)
    gemma = name.startswith("gemma")
    H, Hkv, dh = 4, 2, 8
    for L in range(2):
        c = {s: cache[hook_name(s, L)] for s in sites}
        assert torch.equal(c["resid_pre"], out.hidden_states[L])
        if L == 0:  # the last layer's hidden state is reported after the final norm
            assert torch.equal(c["resid_post"], out.hidden_states[1])
        assert torch.equal(c["pattern"], out.attentions[L])
        assert torch.equal(c["resid_mid"], c["resid_pre"] + seen[("write", L)])
        x = seen[("in", L)]  # what attention reads
        assert torch.equal(x, c["resid_pre"] if name == "olmo2" else c["ln1"])
        att = arch.attention(model, L)
        with torch.no_grad():
            q, k = att.q_proj(x), att.k_proj(x)
        assert torch.equal(c["q"], q.unflatten(-1, (H, dh)))
        assert torch.equal(c["k"], k.unflatten(-1, (Hkv, dh)))  # one key per key/value head, as in TL
        if arch.has_qk_norm(model):
            for raw, n, normed, norm in ((q, H, c["q_normed"], att.q_norm), (k, Hkv, c["k_normed"], att.k_norm)):
                group = n * dh if name == "olmo2" else dh  # OLMo-2 normalises the whole projection at once
                want = _rms(raw, group, norm.weight, gemma, _eps(norm)).unflatten(-1, (n, dh))
                # float32 RMSNorm: a mean of squares, an rsqrt and two products, each a few eps relative
                assert ((normed.double() - want).abs() <= 8 * EPS32 * want.abs().max()).all(), (name, L)
        if name != "olmo2":
            r = c["resid_pre"].double()
            eps = _eps(arch.attn_norm(model, L))
            scale = torch.sqrt(r.pow(2).mean(-1, keepdim=True) + eps)
            assert ((c["ln1_scale"].double() - scale).abs() <= 4 * EPS32 * scale).all()
            assert ((c["ln1_normalized"].double() - r / scale).abs() <= 8 * EPS32 * (r / scale).abs().max()).all()
            with torch.no_grad():
                assert torch.equal(c["ln1"], arch.attn_norm(model, L)(c["resid_pre"]))
    if name == "olmo2":
        with pytest.raises(UserError, match="no norm before attention") as e:
            run_with_cache(model, ids, [hook_name("ln1", 0)])
        assert "\n" not in str(e.value)
    else:
        with pytest.raises(ValueError, match="can be read, not replaced"):
            run_with_cache(model, ids, [], fwd_hooks=[(hook_name("ln1_normalized", 0), lambda t, n: t)])


def test_normed_keys_can_be_replaced(fam):
    """A replacement at hook_k_normed is what attention then uses: zero keys give uniform attention over the
    visible keys, and zeroing one key/value head's keys flattens exactly the query heads that read it."""
    name, model = fam
    if not arch.has_qk_norm(model):
        with pytest.raises(UserError, match="has no q/k norm"):
            run_with_cache(model, torch.zeros(1, 4, dtype=torch.long), [hook_name("q_normed", 0)])
        return
    ids = torch.randint(0, VOCAB, (1, 6), generator=torch.Generator().manual_seed(2))
    _, cache = run_with_cache(model, ids, [hook_name("pattern", 1)], output_attentions=True,
                              fwd_hooks=[(hook_name("k_normed", 1), lambda k, n: torch.zeros_like(k))])
    p = cache[hook_name("pattern", 1)][0]
    visible = torch.tril(torch.ones(6, 6))
    uniform = visible / visible.sum(-1, keepdim=True)
    assert torch.allclose(p, uniform, atol=4 * EPS32)

    def one_group(k, n):
        k = k.clone()
        k[..., 0, :] = 0  # key/value head 0: query heads 0 and 1 (4 heads, 2 key/value heads)
        return k
    _, cache = run_with_cache(model, ids, [hook_name("pattern", 1)], output_attentions=True,
                              fwd_hooks=[(hook_name("k_normed", 1), one_group)])
    p = cache[hook_name("pattern", 1)][0]
    assert torch.allclose(p[:2], uniform.expand(2, 6, 6), atol=4 * EPS32)
    assert not torch.allclose(p[2:], uniform.expand(2, 6, 6), atol=1e-3)


def test_the_qk_view_of_a_head_gives_its_real_logits(fam):
    """For every head: the logit linebreak's QK analysis assigns a (query, key) pair (the head's own queries and
    keys, normed where the model norms them, the query rotated by the offset with that layer's tables, divided
    by arch.score_divisor, soft-capped) differs from log(pattern) by the same constant along each query's row
    (the softmax's normaliser), on every key the query can see (sliding windows included)."""
    name, model = fam
    T = 12
    ids = torch.randint(0, VOCAB, (1, T), generator=torch.Generator().manual_seed(3))
    q_site, k_site = ("q_normed", "k_normed") if arch.has_qk_norm(model) else ("q", "k")
    names = [hook_name(s, L) for s in (q_site, k_site, "pattern") for L in range(2)]
    _, cache = run_with_cache(model, ids, names, output_attentions=True)
    t, s = np.tril_indices(T)
    for L in range(2):
        tables = arch.rotary_tables(model, T - 1, L)
        div, cap = arch.score_divisor(model, L), arch.softcap(model, L)
        window = arch.sliding_windows(model)[L]
        q = cache[hook_name(q_site, L)][0].double().numpy()
        k = cache[hook_name(k_site, L)][0].double().numpy()
        pat = cache[hook_name("pattern", L)][0].double().numpy()
        sees = (t - s < window) if window else np.ones_like(t, dtype=bool)
        ts, ss = t[sees], s[sees]
        assert (pat[:, t[~sees], s[~sees]] == 0).all()  # outside the window: no attention at all
        for h in range(4):
            kh = h // (4 // k.shape[1])  # the key/value head query head h reads
            raw = (arch.rotate_by_offset(q[ts, h], ts - ss, tables) * k[ss, kh]).sum(1) / div
            logit = raw if cap is None else cap * np.tanh(raw / cap)
            gap = np.log(pat[h, ts, ss]) - logit  # the row's normaliser, the same for all its keys
            row_mean = np.bincount(ts, gap) / np.bincount(ts)
            # The model's float32 score: q and k are exact inputs (read from the forward pass); rotation at
            # absolute positions rounds each component (a few eps, two terms mixed) and its angles (position
            # times frequency, up to T eps); the d_head-term dot product adds d_head eps; scaling and the cap
            # a few eps of |s|: |ds| <= sqrt(2 dh) (dh + T + 8) eps A_q A_k / div. Softmax in float32 turns a
            # score error e into a log-probability error <= 2 e plus its own roundings (exp, sum, divide).
            A = np.abs(q[:, h]).max() * np.abs(k[:, kh]).max() * np.sqrt(2 * 8) * (8 + T + 8) / div
            tol = 2 * A * EPS32 + 16 * EPS32 * (1 + np.abs(logit).max())
            np.testing.assert_allclose(gap - row_mean[ts], 0, atol=tol, err_msg=f"{name} L{L}H{h}")
            if cap is not None:  # the cap matters here: without it the logits do not fit
                assert np.abs((raw - logit) - (raw - logit).mean()).max() > 100 * tol


def test_default_capture_and_key_edits(fam, tmp_path):
    """`linebreak capture`'s default sites on each family: a point the model lacks is dropped and recorded
    (OLMo-2 has no ln1: what its attention reads is resid_pre), keys have one head per key/value head, and a
    key edit (after the q/k norm where there is one) moves exactly the query heads of that key group."""
    from linebreak.capture.collect import capture
    from linebreak.capture.config import CaptureConfig
    from linebreak.corpus import CorpusConfig, generate_corpus, load_corpus
    from linebreak.hooks.interventions import edit_keys

    name, _ = fam
    generate_corpus(CorpusConfig(widths=(12, 16), seq_len=32, n_train=4, n_val=4, vocab_size=12, max_word_len=5),
                    tmp_path / "c")
    corpus = load_corpus(tmp_path / "c")
    model = family_model(name, vocab=len(corpus.token_lengths))
    a = capture(model, corpus, CaptureConfig(max_docs=2), progress=False)
    assert a.meta["attention_input_site"] == ("resid_pre" if name == "olmo2" else "ln1")
    assert ("blocks.0.ln1.hook_out" in a.acts) == (name != "olmo2")
    assert ("ln1" in a.meta["dropped_sites"]) == (name == "olmo2") and "blocks.0.hook_resid_pre" in a.acts
    assert a.acts["blocks.1.attn.hook_k"].shape[1:] == (2, 8) and a.acts["blocks.1.attn.hook_q"].shape[1:] == (4, 8)
    # a block's input is kept once, as the previous block's output: what a hook on the input alone holds
    assert a.acts["blocks.1.hook_resid_pre"] is a.acts["blocks.0.hook_resid_post"]
    alone = capture(model, corpus, CaptureConfig(max_docs=2, sites="resid_pre"), progress=False)
    assert torch.equal(alone.acts["blocks.1.hook_resid_pre"], a.acts["blocks.1.hook_resid_pre"])

    ids = torch.as_tensor(corpus.splits["validation"].input_ids[:2])
    base = run_with_cache(model, ids, [hook_name("pattern", 1)])[1][hook_name("pattern", 1)]
    with edit_keys(model, 1, 2, lambda k, x: torch.zeros_like(k)):
        edited = run_with_cache(model, ids, [hook_name("pattern", 1)])[1][hook_name("pattern", 1)]
    changed = [h for h in range(4) if not torch.equal(edited[:, h], base[:, h])]
    assert changed == [2, 3]  # query heads 2 and 3 read key/value head 1


@pytest.mark.parametrize("name", FAMILIES)
def test_study_on_each_family(name, cli, tmp_path):
    """``linebreak study --model DIR --text FILE``: capture -> probe -> qk -> causal -> report, exit 0."""
    import json

    from linebreak.corpus.tokenizer import build_tokenizer

    rng = np.random.default_rng(0)
    words = sorted({"".join(rng.choice(list("abcdefghij"), size=rng.integers(1, 9))) for _ in range(60)})
    (tmp_path / "prose.txt").write_text(" ".join(rng.choice(words, size=4000)))
    tok = build_tokenizer(words)
    model = family_model(name, vocab=len(tok.get_vocab()))
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    rc, out, err = cli("study", "--model", tmp_path / "m", "--text", tmp_path / "prose.txt", "--widths", "15:30",
                       "--preset", "tiny", "--skip", "grok", "--out", tmp_path / "out")
    assert rc == 0, err
    rec = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"corpus", "probe", "qk", "causal"} <= set(rec["sections"]) and "model" not in rec["stages"]
    qk = json.loads((tmp_path / "out" / "qk" / "qk.json").read_text())
    assert qk["layout"]["arch"] == name
    frame = qk["query_frame"]
    assert frame.startswith("rotated to the previous newline")
    assert ("q/k-normed" in frame) == arch.has_qk_norm(model)
    assert ("soft cap" in frame) == (name == "gemma2") and ("window of 4 tokens" in frame) == (name == "gemma3")
    assert (qk["verdict"]["probes"] is None) == arch.has_qk_norm(model)  # no probe route through a norm
    assert (tmp_path / "out" / "report.md").is_file()
