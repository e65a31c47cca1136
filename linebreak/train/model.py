"""Small causal transformers from a dataclass config: GPT-2, Llama, GPT-NeoX, Gemma-2 or Qwen3, built with
``transformers``.

Models are created with ``attn_implementation="eager"`` so attention patterns can be read. Position schemes:
``learned`` (GPT-2's position embeddings), ``rotary`` (Llama, NeoX, Gemma-2, Qwen3) and ``none`` (GPT-2 with its
position embeddings zeroed and frozen: the model must count from causal attention alone).

``d_mlp=0`` builds an attention-only model: any nonlinear use of the count and the width must then go
through attention (softmax) and the norms, not an MLP. Llama and NeoX accept a zero-width MLP as is (it
outputs zeros); GPT-2's fused ``Conv1D`` does not, so its MLPs get one hidden unit whose weights are zeroed
and frozen (their output is exactly zero).

``gemma2`` is there for its attention soft cap (``attn_softcap``: each logit ``s`` becomes ``c tanh(s / c)``),
a bound on the attention logit. Issue 19's argument says a peaked match needs Fourier features *at bounded
norm*; the table heads here peak with logits that span 64-134 nats over a count arc of less than a turn
(docs/research/tables.md), so the cap is the lever tried on the premise. It bounds the logit, not the score
before it, which can saturate into a window: that is what a cap of 5 did there. It is built as Gemma-2 is, with
every layer global (no sliding window) and ``query_pre_attn_scalar = d_head`` (Llama's ``1 / sqrt(d_head)``), and
without the final logit cap, so the attention cap is the one bound.

``qwen3`` is there for its per-head RMSNorm on queries and keys (before rotary). With ``qk_logit_bound = B`` the
norms' gains are fixed, not learned, at ``g = (B / sqrt(d_head)) ** 0.5``: every normed query and key then has
norm ``g sqrt(d_head)``, rotary keeps it, and the score ``q . k / sqrt(d_head)`` is ``B cos(q, k)``. That bounds
the score itself, not only the logit, so no window can form behind it: a match can be sharp only through the
angle between query and key, which is the bounded norm the argument is about. ``qk_logit_bound = 0`` keeps
Qwen3's learned gains (the reference).

``count_code_control`` is a positive control, off by default: the character count on each line is added to
the input as fixed sinusoids (:mod:`linebreak.train.count_code`), so that the model has the count on a helix
without learning one. It needs the corpus's characters per token, which :func:`build_model` takes as
``count_code`` (:func:`linebreak.train.count_code.code_settings` of the settings and the corpus).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from linebreak.config import require, tuples_from_text
from linebreak.io import UserError

ARCH_POS = {"gpt2": ("learned", "none"), "llama": ("rotary",), "neox": ("rotary",), "gemma2": ("rotary",),
            "qwen3": ("rotary",)}


@dataclass(frozen=True)
class ModelConfig:
    arch: str = field(default="gpt2", metadata={"help": "gpt2 | llama | neox | gemma2 | qwen3"})
    n_layer: int = 4
    d_model: int = 128
    n_head: int = 4
    d_mlp: int = field(default=512, metadata={"help": "MLP hidden width; 0 = attention-only (no MLPs)"})
    pos: str = field(default="learned", metadata={"help": "learned | none (gpt2); rotary (llama, neox, gemma2, qwen3)"})
    n_ctx: int = 256
    dropout: float = 0.0
    init_seed: int = field(default=0, metadata={"help": "seed of the initial weights"})
    count_code_control: bool = field(default=False, metadata={
        "help": "positive control (issue 19 item 5): add fixed sinusoids of each token's character count on its "
                "line to its input embedding (the count on a helix); off = the plain model"})
    # Why these periods: primes, so no two share a multiple below the counts (0-80 at widths 20-80); from 7
    # characters (about one word and its space: a match a few characters wide) to 61 (about one turn over the
    # width range), so the code is both narrow enough to peak and long enough not to alias within a line.
    count_code_periods: tuple[int, ...] = field(default=(7, 13, 29, 61), metadata={
        "help": "periods in characters of the count code's sinusoids (a cosine and a sine each)"})
    # Why 1.0: a trained embedding row of this recipe has norm ~0.6 (0.23 at init), so the code is the larger
    # part of the input at the start and stays comparable to the token's own embedding as it grows.
    count_code_norm: float = field(default=1.0, metadata={"help": "norm of the count code added to each token"})
    attn_softcap: float = field(default=0.0, metadata={
        "help": "gemma2 only: cap each attention logit s at c tanh(s / c) (a bound on the logit); 0 = no cap"})
    qk_logit_bound: float = field(default=0.0, metadata={
        "help": "qwen3 only: fix its q/k norms' gains so that every attention score is B cos(q, k), |s| <= B "
                "(a bound on the score, not only the logit); 0 = Qwen3's learned gains"})

    def __post_init__(self):
        tuples_from_text(self)
        p = self.count_code_periods
        require(len(p) > 0 and all(x >= 2 for x in p), f"count_code_periods must be periods >= 2 characters, got {p}")
        require(not self.count_code_control or 2 * len(p) <= self.d_model,
                f"count_code_periods: {len(p)} periods need 2 * {len(p)} coordinates, and d_model is {self.d_model}")
        require(0 < self.count_code_norm < float("inf"),
                f"count_code_norm must be a finite number > 0, got {self.count_code_norm}")
        require(0 <= self.attn_softcap < float("inf"),
                f"attn_softcap must be a finite number >= 0 (0: no cap), got {self.attn_softcap}")
        require(not self.attn_softcap or self.arch == "gemma2",
                f"attn_softcap is a gemma2 setting (its attention soft cap); arch is {self.arch}")
        require(0 <= self.qk_logit_bound < float("inf"),
                f"qk_logit_bound must be a finite number >= 0 (0: learned gains), got {self.qk_logit_bound}")
        require(not self.qk_logit_bound or self.arch == "qwen3",
                f"qk_logit_bound is a qwen3 setting (the gain of its q/k norms); arch is {self.arch}")


def build_model(cfg: ModelConfig, vocab_size: int, bos_id: int, eos_id: int | None = None,
                pad_id: int | None = None, count_code: dict | None = None):
    """A randomly initialised ``PreTrainedModel`` (causal LM) for ``cfg``; with ``cfg.count_code_control``, the
    count code ``count_code`` (:func:`linebreak.train.count_code.code_settings`) attached."""
    import torch
    from transformers import AutoModelForCausalLM, Gemma2Config, GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen3Config

    from linebreak.train.count_code import attach_count_code

    if cfg.arch not in ARCH_POS:
        raise UserError(f"unknown arch {cfg.arch!r}; choose from: {', '.join(ARCH_POS)}")
    if cfg.pos not in ARCH_POS[cfg.arch]:
        raise UserError(f"arch {cfg.arch} supports pos {' | '.join(ARCH_POS[cfg.arch])}, not {cfg.pos!r}")
    if cfg.d_mlp < 0 or (cfg.d_mlp == 0 and cfg.arch == "gemma2"):
        raise UserError(f"d_mlp must be >= 0 (0 = attention-only; gemma2: > 0), not {cfg.d_mlp}")
    if cfg.d_model % cfg.n_head:
        raise UserError(f"d_model {cfg.d_model} is not divisible by n_head {cfg.n_head}")
    if cfg.count_code_control != (count_code is not None):
        raise UserError("count_code_control: the model is built with its corpus's count code (characters per token), "
                        "and none was given" if cfg.count_code_control
                        else "a count code was given to a model without count_code_control")
    if count_code is not None and (count_code["periods"] != list(cfg.count_code_periods)
                                   or count_code["norm"] != cfg.count_code_norm):
        raise UserError("the count code's periods or norm differ from the model settings")
    ids = dict(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id, vocab_size=vocab_size)
    if cfg.arch == "gpt2":
        config = GPT2Config(n_positions=cfg.n_ctx, n_embd=cfg.d_model, n_layer=cfg.n_layer, n_head=cfg.n_head,
                            n_inner=cfg.d_mlp or 1, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
                            attn_pdrop=cfg.dropout, **ids)
    elif cfg.arch == "llama":
        config = LlamaConfig(hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
                             num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                             num_key_value_heads=cfg.n_head, max_position_embeddings=cfg.n_ctx,
                             attention_dropout=cfg.dropout, tie_word_embeddings=True, **ids)
    elif cfg.arch == "gemma2":
        d_head = cfg.d_model // cfg.n_head
        config = Gemma2Config(hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp, num_hidden_layers=cfg.n_layer,
                              num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_head, head_dim=d_head,
                              query_pre_attn_scalar=d_head, max_position_embeddings=cfg.n_ctx,
                              sliding_window=cfg.n_ctx, layer_types=["full_attention"] * cfg.n_layer,
                              attn_logit_softcapping=cfg.attn_softcap or None, final_logit_softcapping=None,
                              attention_dropout=cfg.dropout, tie_word_embeddings=True, **ids)
    elif cfg.arch == "qwen3":
        config = Qwen3Config(hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp, num_hidden_layers=cfg.n_layer,
                             num_attention_heads=cfg.n_head, num_key_value_heads=cfg.n_head,
                             head_dim=cfg.d_model // cfg.n_head, max_position_embeddings=cfg.n_ctx,
                             attention_dropout=cfg.dropout, tie_word_embeddings=True, **ids)
    else:
        config = GPTNeoXConfig(hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
                               num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                               max_position_embeddings=cfg.n_ctx, attention_dropout=cfg.dropout,
                               hidden_dropout=cfg.dropout, tie_word_embeddings=True, **ids)
    torch.manual_seed(cfg.init_seed)
    with warnings.catch_warnings():  # a zero-width MLP (d_mlp=0) has nothing to initialise
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    if cfg.arch == "gpt2" and cfg.pos == "none":
        with torch.no_grad():
            model.transformer.wpe.weight.zero_()
        model.transformer.wpe.weight.requires_grad_(False)
    if cfg.arch == "gpt2" and cfg.d_mlp == 0:
        for block in model.transformer.h:
            for p in block.mlp.parameters():
                with torch.no_grad():
                    p.zero_()
                p.requires_grad_(False)
    if cfg.qk_logit_bound:
        fix_qk_gain(model, cfg.qk_logit_bound)
    attach_count_code(model, count_code)
    return model


def fix_qk_gain(model, bound: float) -> None:
    """Set every q/k norm gain of a Qwen3 ``model`` to ``(bound / sqrt(d_head)) ** 0.5`` and freeze it, so that
    each attention score ``norm(q) . norm(k) / sqrt(d_head)`` is ``bound * cos(q, k)``."""
    import torch

    for layer in model.model.layers:
        attn = layer.self_attn
        gain = (bound / attn.head_dim ** 0.5) ** 0.5
        for norm in (attn.q_norm, attn.k_norm):
            with torch.no_grad():
                norm.weight.fill_(gain)
            norm.weight.requires_grad_(False)
