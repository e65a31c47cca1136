"""Train a small causal transformer from scratch to emit the newlines of a wrapped corpus.

The loop is deliberately plain (nanoGPT-style): AdamW with linear warm-up and cosine decay, gradient clipping,
next-token cross-entropy on whole documents. Every ``eval_every`` steps it scores the newline decisions on
validation documents against the Bayes references (:mod:`linebreak.train.metrics`), appends a line to
``eval.jsonl`` and writes a checkpoint (:mod:`linebreak.train.checkpoint`), so ``resume=True`` continues an
interrupted run exactly: the batch at step ``s`` is a pure function of (seed, s), and so is its noise.

The output folder loads with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` and
also holds ``train_config.json`` (settings and the corpus fingerprint), ``metrics.json``
(:class:`linebreak.train.result.TrainMetrics`) and ``eval.jsonl``. Settings: :mod:`linebreak.train.config`;
presets: :data:`linebreak.presets.TRAIN`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from linebreak.corpus.store import Corpus
from linebreak.hooks.interventions import add_resid_noise
from linebreak.io import UserError, append_jsonl, read_jsonl
from linebreak.train import checkpoint
from linebreak.train.config import OptimConfig, TrainConfig, check_settings
from linebreak.train.count_code import code_settings
from linebreak.train.metrics import evaluate_newlines
from linebreak.train.model import build_model
from linebreak.train.result import TrainMetrics, TrainResult


def lr_at(step: int, cfg: OptimConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_frac`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


def batch_indices(step: int, batch_size: int, n_docs: int, seed: int) -> np.ndarray:
    """Documents of the batch at ``step``: consecutive slices of a fresh permutation per epoch."""
    g = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = g // n_docs
    out = np.empty(batch_size, dtype=np.int64)
    for e in np.unique(epochs):
        perm = np.random.default_rng([seed, int(e)]).permutation(n_docs)
        out[epochs == e] = perm[g[epochs == e] % n_docs]
    return out


def make_optimizer(model, o: OptimConfig):
    """AdamW where only weight matrices and embeddings (``dim >= 2``) decay: shrinking biases and LayerNorm
    gains towards zero regularises nothing useful (the nanoGPT rule). Frozen parameters are left out."""
    import torch

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=o.lr, betas=(o.beta1, o.beta2), fused=False)


def train_step(model, optimizer, x, lr: float, grad_clip: float, target_weight=None) -> float:
    """One optimisation step on the batch ``x``: next-token cross-entropy, clipped gradients, AdamW.
    ``target_weight`` (a [vocab] tensor, or None for the plain mean) weighs each position's loss by its
    target token: ``mean(w[target] * CE)`` (``OptimConfig.pad_loss_weight``)."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    logits = model(input_ids=x).logits
    if target_weight is None:
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
    else:
        ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="none")
        loss = (ce * target_weight[x[:, 1:].flatten()]).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


def run_record(cfg: TrainConfig, corpus: Corpus) -> dict:
    """``train_config.json``: the settings and the corpus they trained on (resume compares it)."""
    return {"model": dataclasses.asdict(cfg.model), "optim": dataclasses.asdict(cfg.optim),
            "corpus": {"path": str(corpus.path), "fingerprint": corpus.fingerprint,
                       "data": corpus.meta["config"]}}


def train(cfg: TrainConfig, corpus: Corpus, out_dir: str | Path, force: bool = False,
          resume: bool = False) -> TrainResult:
    """Train ``cfg`` on ``corpus`` into ``out_dir``; see the module docstring for what it writes."""
    import torch

    from linebreak.progress import bar

    out_dir, o = Path(out_dir), cfg.optim
    check_settings(cfg, corpus.meta["seq_len"])
    record = run_record(cfg, corpus)
    checkpoint.prepare(out_dir, record, force, resume)
    torch.set_num_threads(o.threads)
    count_code = code_settings(cfg.model, corpus.token_lengths, corpus.newline_id)  # None: off (the default)
    model = build_model(cfg.model, len(corpus.token_lengths), corpus.bos_id, count_code=count_code).to(o.device)
    # gemma2's soft cap runs only in eager attention (transformers has no sdpa kernel for it)
    model.set_attn_implementation("eager" if cfg.model.arch == "gemma2" else o.attn_implementation)
    optimizer = make_optimizer(model, o)
    start, elapsed = 0, 0.0
    if resume:
        state = checkpoint.load(out_dir, model, optimizer)
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
    checkpoint.start_log(out_dir, resume, start)
    data = torch.as_tensor(corpus.splits["train"].input_ids, device=o.device)
    target_weight = None
    if o.pad_loss_weight != 1.0:
        if corpus.pad_by_id is None:
            raise UserError("pad_loss_weight weighs pad tokens, and this corpus has none (make it with --layout table)")
        target_weight = torch.where(torch.as_tensor(corpus.pad_by_id, device=o.device), o.pad_loss_weight, 1.0)
    noise = torch.Generator(device=o.device)
    # relative noise in the residual stream, the pressure the paper gives for a curved count (off by default)
    hooks = add_resid_noise(model, o.resid_noise, noise) if o.resid_noise > 0 else []
    model.train()
    t0, losses = time.perf_counter() - elapsed, []
    pbar = bar(range(start, o.steps + 1), initial=start, total=o.steps + 1, desc="train", unit="step",
               dynamic_ncols=True)
    for step in pbar:
        # evaluate (and checkpoint) every eval_every steps and at the end; a resumed run has its start's record
        if (step % o.eval_every == 0 or step == o.steps) and not (resume and step == start):
            rec = {"step": step, "tokens": step * o.batch_size * data.shape[1],
                   "train_loss": float(np.mean(losses)) if losses else None, "lr": lr_at(max(step - 1, 0), o),
                   "elapsed_s": time.perf_counter() - t0,
                   **evaluate_newlines(model, corpus, "validation", o.eval_docs)}
            losses = []
            append_jsonl(out_dir / "eval.jsonl", rec)
            pads = {"pad_acc1": f"{rec['pad_acc_rows1']:.2f}"} if rec.get("pad_acc_rows1") is not None else {}
            pbar.set_postfix(nl_ce=f"{rec['newline_ce']:.3f}", info=f"{rec['info_captured']:.2f}", **pads)
            if 0 < step < o.steps:
                checkpoint.save(out_dir, model, optimizer, step, rec)
        if step == o.steps:
            break
        x = data[torch.as_tensor(batch_indices(step, o.batch_size, len(data), o.seed), device=o.device)]
        if hooks:  # this step's noise depends only on (seed, step), so a resumed run draws the same
            noise.manual_seed(int(np.random.SeedSequence([o.seed, step]).generate_state(1)[0]))
        losses.append(train_step(model, optimizer, x, lr_at(step, o), o.grad_clip, target_weight))
    pbar.close()
    for hook in hooks:
        hook.remove()
    seconds = time.perf_counter() - t0
    history = read_jsonl(out_dir / "eval.jsonl")
    # the final record as read back from eval.jsonl (JSON values: NaN is None), without the per-record timing
    metrics = TrainMetrics(**{k: v for k, v in history[-1].items() if k not in ("lr", "elapsed_s")},
                           train_seconds=seconds,
                           tokens_per_second=o.steps * o.batch_size * data.shape[1] / max(seconds, 1e-9),
                           n_params=sum(p.numel() for p in model.parameters()), threads=o.threads)
    model.set_attn_implementation("eager")  # what every analysis stage reads attention patterns from
    model.to("cpu")
    checkpoint.save_final(out_dir, model, corpus, metrics.to_json())
    model.eval()
    return TrainResult(out_dir, model, metrics, history)
