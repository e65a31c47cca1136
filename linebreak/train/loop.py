"""Train a small causal transformer from scratch to emit the newlines of a wrapped corpus.

The loop is deliberately plain (nanoGPT-style): AdamW with linear warm-up and cosine decay, gradient clipping,
next-token cross-entropy on whole documents. Every ``eval_every`` steps it scores the newline decisions on
validation documents against the Bayes references (:mod:`linebreak.train.baselines`), appends a line to
``eval.jsonl`` and writes a checkpoint folder atomically (weights and AdamW moments as safetensors, the
step and settings as JSON: nothing is pickled), so ``resume=True`` continues an interrupted run exactly:
the batch at step ``s`` is a pure function of (seed, s).

The output folder loads with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` and
also holds ``train_config.json`` (settings and the corpus fingerprint), ``metrics.json`` and ``eval.jsonl``.
Presets live in :data:`PRESETS`: each is a data config, a model config and an optimisation config.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from linebreak.corpus.labels import labels_for_split
from linebreak.corpus.store import Corpus
from linebreak.io import (
    UserError,
    append_jsonl,
    load_json,
    load_tensors,
    read_jsonl,
    save_json,
    save_tensors,
    staging_dir,
    to_jsonable,
    write_text,
)
from linebreak.train.baselines import binary_ce, break_prob_oracle, break_prob_posterior, newline_positions
from linebreak.train.model import ModelConfig, build_model


@dataclass(frozen=True)
class OptimConfig:
    steps: int = 1500
    batch_size: int = 16
    lr: float = 2e-3
    beta1: float = 0.9
    beta2: float = 0.98
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_frac: float = field(default=0.1, metadata={"help": "cosine decay ends at lr * min_lr_frac"})
    grad_clip: float = 1.0
    eval_every: int = field(default=250, metadata={"help": "steps between evaluations and checkpoints"})
    eval_docs: int = field(default=128, metadata={"help": "validation documents per evaluation"})
    seed: int = field(default=0, metadata={"help": "seed of the batch order (and of resid_noise)"})
    resid_noise: float = field(default=0.0, metadata={
        "help": "while training, Gaussian noise of this std times each token's RMS added to every block's input"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    attn_implementation: str = field(default="sdpa", metadata={
        "help": "attention kernel while training: sdpa (faster) | eager; the returned model is eager"})
    device: str = field(default="cpu", metadata={
        "help": "torch device to train on: cpu | cuda | cuda:N (the saved model and its metrics are on the CPU)"})


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    optim: OptimConfig


@dataclass
class TrainResult:
    out_dir: Path
    model: object  # the trained PreTrainedModel (eval mode)
    metrics: dict  # final newline metrics plus timing
    history: list[dict]  # the eval.jsonl records


def lr_at(step: int, cfg: OptimConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_frac`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


def train_step(model, optimizer, x, lr: float, grad_clip: float) -> float:
    """One optimisation step on the batch ``x``: next-token cross-entropy, clipped gradients, AdamW."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    logits = model(input_ids=x).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


def batch_indices(step: int, batch_size: int, n_docs: int, seed: int) -> np.ndarray:
    """Documents of the batch at ``step``: consecutive slices of a fresh permutation per epoch."""
    g = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = g // n_docs
    out = np.empty(batch_size, dtype=np.int64)
    for e in np.unique(epochs):
        perm = np.random.default_rng([seed, int(e)]).permutation(n_docs)
        out[epochs == e] = perm[g[epochs == e] % n_docs]
    return out


def evaluate_newlines(model, corpus: Corpus, split: str = "validation", n_docs: int | None = None,
                      batch_size: int = 32) -> dict:
    """Score the model's newline decisions on ``split`` against the oracle, posterior and constant baselines.

    At every word token that has a successor the model's P(next = newline) is compared with what happened:
    newline cross-entropy (nats), the share of achievable information captured
    ``(CE_const - CE_model) / (CE_const - CE_posterior)`` (and the same against the oracle), accuracy where
    a break is forced (no word fits) or impossible (every word fits), and accuracy per width.
    """
    import torch

    s = corpus.splits[split]
    ids, widths = s.input_ids[:n_docs], s.width[:n_docs]
    labels = labels_for_split(ids, widths, corpus.token_lengths, corpus.newline_id)
    mask = newline_positions(labels)
    was_training = model.training
    model.eval()
    p_model, lm_loss = [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(ids), batch_size):
            x = torch.as_tensor(ids[i:i + batch_size], device=device)
            logits = model(input_ids=x).logits.float()
            lm_loss.append(torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item())
            p_model.append(torch.softmax(logits, -1)[..., corpus.newline_id].cpu().numpy())
    model.train(was_training)
    y = labels["next_is_newline"][mask]
    p = np.concatenate(p_model)[mask]
    lp = corpus.word_length_probs
    oracle = break_prob_oracle(labels["remaining"], lp, corpus.fill)[mask]
    posterior = break_prob_posterior(labels, corpus.widths, lp, corpus.fill)[mask]
    const_rate = train_newline_rate(corpus)
    ce = {"model": binary_ce(p, y), "posterior": binary_ce(posterior, y), "oracle": binary_ce(oracle, y),
          "constant": binary_ce(np.full(len(y), const_rate), y)}
    forced, impossible = oracle == 1.0, oracle == 0.0
    knowable = posterior >= 1.0 - 1e-9  # no word fits under every width consistent with the earlier lines
    pred = p > 0.5
    w = labels["width"][mask]
    return {
        "newline_ce": ce["model"], "newline_ce_posterior": ce["posterior"], "newline_ce_oracle": ce["oracle"],
        "newline_ce_constant": ce["constant"],
        "info_captured": (ce["constant"] - ce["model"]) / (ce["constant"] - ce["posterior"]),
        "info_captured_oracle": (ce["constant"] - ce["model"]) / (ce["constant"] - ce["oracle"]),
        "forced_break_acc": float(pred[forced].mean()) if forced.any() else float("nan"),
        # on a document's first line the width is not yet known, so some forced breaks cannot be foreseen:
        # the Bayes-posterior predictor's accuracy there is the ceiling; where the break can be known, the
        # model should always break
        "forced_break_acc_bayes": float((posterior[forced] > 0.5).mean()) if forced.any() else float("nan"),
        "forced_break_acc_knowable": float(pred[knowable].mean()) if knowable.any() else float("nan"),
        "knowable_forced_positions": int(knowable.sum()),
        "no_break_acc": float((~pred[impossible]).mean()) if impossible.any() else float("nan"),
        "newline_acc": float((pred == y).mean()),
        "newline_acc_posterior": float(((posterior > 0.5) == y).mean()),
        "newline_acc_by_width": {int(v): float((pred == y)[w == v].mean()) for v in np.unique(w)},
        "lm_loss": sum(lm_loss) / (ids.shape[0] * (ids.shape[1] - 1)),
        "positions": int(mask.sum()), "forced_positions": int(forced.sum()),
        "impossible_positions": int(impossible.sum()), "documents": len(ids),
    }


_RATE_CACHE: dict[str, float] = {}


def train_newline_rate(corpus: Corpus) -> float:
    """Share of scored training positions followed by a newline (the constant-rate predictor)."""
    key = corpus.fingerprint
    if key not in _RATE_CACHE:
        labels = corpus.labels("train")
        _RATE_CACHE[key] = float(labels["next_is_newline"][newline_positions(labels)].mean())
    return _RATE_CACHE[key]


# -- checkpoints ------------------------------------------------------------------------------------------

def _save_checkpoint(out_dir: Path, model, optimizer, step: int, record: dict) -> None:
    tensors = {}
    for i, st in optimizer.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"{i}.{k}"] = v.cpu()
    with staging_dir(out_dir / "checkpoint") as tmp:
        save_tensors(tmp / "model.safetensors", _unique_state(model))
        save_tensors(tmp / "optimizer.safetensors", tensors)
        save_json(tmp / "state.json", {"step": step, "elapsed_s": record["elapsed_s"]})


def _load_checkpoint(out_dir: Path, model, optimizer) -> dict:
    ckpt = out_dir / "checkpoint"
    state = load_json(ckpt / "state.json", "checkpoint state")
    weights = load_tensors(ckpt / "model.safetensors", "checkpoint weights")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - (set(model.state_dict()) - set(_unique_state(model))):
        raise UserError(f"checkpoint does not match the model settings: {ckpt}")
    moments = load_tensors(ckpt / "optimizer.safetensors", "checkpoint optimizer state")
    sd = optimizer.state_dict()
    per_param: dict[int, dict] = {}
    for key, v in moments.items():
        i, name = key.split(".", 1)
        per_param.setdefault(int(i), {})[name] = v
    sd["state"] = per_param
    optimizer.load_state_dict(sd)
    return state


def _unique_state(model) -> dict:
    """The state dict without the second name of tied weights (safetensors stores each tensor once)."""
    out, seen = {}, set()
    for k, v in model.state_dict().items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            out[k] = v.cpu()
    return out


# -- training -----------------------------------------------------------------------------------------------

def add_resid_noise(model, scale: float, generator) -> list:
    """Hooks that add ``N(0, (scale * rms)^2)`` to every block's input (``resid_pre``) in training mode.

    ``rms`` is each token's root-mean-square over the residual dimension (not differentiated through), so
    the noise is relative: a representation must keep its values apart by more than a fixed share of its own
    size. This is the pressure Gurnee et al. (2025) give for a curved count manifold: at a fixed norm, points
    on a curve can sit further apart than on a straight segment. Off in eval mode. Returns the hook handles.
    """
    import torch

    from linebreak.hooks.arch import blocks

    def pre_hook(module, args, kwargs):
        if not module.training:
            return None
        h = args[0] if args else kwargs["hidden_states"]
        rms = h.detach().pow(2).mean(-1, keepdim=True).sqrt()
        h = h + scale * rms * torch.randn(h.shape, generator=generator, dtype=h.dtype, device=h.device)
        return ((h, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": h})

    return [b.register_forward_pre_hook(pre_hook, with_kwargs=True) for b in blocks(model)]


def _check_settings(cfg: TrainConfig, corpus: Corpus) -> None:
    o = cfg.optim
    if corpus.meta["seq_len"] > cfg.model.n_ctx:
        raise UserError(f"n_ctx {cfg.model.n_ctx} is shorter than the documents ({corpus.meta['seq_len']})")
    for name in ("steps", "batch_size", "eval_every", "eval_docs", "threads"):
        if getattr(o, name) < 1:
            raise UserError(f"{name} must be positive, got {getattr(o, name)}")
    if o.attn_implementation not in ("sdpa", "eager"):
        raise UserError(f"attn_implementation must be sdpa or eager, got {o.attn_implementation!r}")
    if o.lr <= 0 or not 0 <= o.min_lr_frac <= 1:
        raise UserError("lr must be positive and min_lr_frac within [0, 1]")
    if not 0 <= o.resid_noise < math.inf:
        raise UserError(f"resid_noise must be a finite number >= 0, got {o.resid_noise}")
    _check_device(o.device)


def _check_device(device: str) -> None:
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise UserError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA device here")


def _run_record(cfg: TrainConfig, corpus: Corpus) -> dict:
    return {"model": dataclasses.asdict(cfg.model), "optim": dataclasses.asdict(cfg.optim),
            "corpus": {"path": str(corpus.path), "fingerprint": corpus.fingerprint,
                       "data": corpus.meta["config"]}}


def train(cfg: TrainConfig, corpus: Corpus, out_dir: str | Path, force: bool = False,
          resume: bool = False) -> TrainResult:
    """Train ``cfg`` on ``corpus`` into ``out_dir``; see the module docstring for what it writes."""
    import torch

    from linebreak.progress import bar

    out_dir, o = Path(out_dir), cfg.optim
    _check_settings(cfg, corpus)
    record = _run_record(cfg, corpus)
    _prepare(out_dir, record, force, resume)
    torch.set_num_threads(o.threads)
    vocab = len(corpus.token_lengths)
    model = build_model(cfg.model, vocab, corpus.bos_id).to(o.device)
    model.set_attn_implementation(o.attn_implementation)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=o.lr, betas=(o.beta1, o.beta2), fused=False)
    start, elapsed = 0, 0.0
    if resume:
        state = _load_checkpoint(out_dir, model, optimizer)
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
        history = [r for r in read_jsonl(out_dir / "eval.jsonl") if r["step"] <= start]
        write_text(out_dir / "eval.jsonl", "".join(_jsonl(r) for r in history))
    else:
        write_text(out_dir / "eval.jsonl", "")
    data = torch.as_tensor(corpus.splits["train"].input_ids, device=o.device)
    noise = torch.Generator(device=o.device)
    hooks = add_resid_noise(model, o.resid_noise, noise) if o.resid_noise > 0 else []
    model.train()
    t0, losses = time.perf_counter() - elapsed, []
    pbar = bar(range(start, o.steps + 1), initial=start, total=o.steps + 1, desc="train", unit="step",
               dynamic_ncols=True)
    for step in pbar:
        if (step % o.eval_every == 0 or step == o.steps) and not (resume and step == start):
            rec = {"step": step, "tokens": step * o.batch_size * data.shape[1],
                   "train_loss": float(np.mean(losses)) if losses else None, "lr": lr_at(max(step - 1, 0), o),
                   "elapsed_s": time.perf_counter() - t0,
                   **evaluate_newlines(model, corpus, "validation", o.eval_docs)}
            losses = []
            append_jsonl(out_dir / "eval.jsonl", rec)
            pbar.set_postfix(nl_ce=f"{rec['newline_ce']:.3f}", info=f"{rec['info_captured']:.2f}")
            if 0 < step < o.steps:
                _save_checkpoint(out_dir, model, optimizer, step, rec)
        if step == o.steps:
            break
        x = data[torch.as_tensor(batch_indices(step, o.batch_size, len(data), o.seed), device=o.device)]
        if hooks:  # this step's noise depends only on (seed, step), so a resumed run draws the same
            noise.manual_seed(int(np.random.SeedSequence([o.seed, step]).generate_state(1)[0]))
        losses.append(train_step(model, optimizer, x, lr_at(step, o), o.grad_clip))
    pbar.close()
    for hook in hooks:
        hook.remove()
    seconds = time.perf_counter() - t0
    history = read_jsonl(out_dir / "eval.jsonl")
    metrics = {**{k: v for k, v in history[-1].items() if k not in ("lr", "elapsed_s")},
               "train_seconds": seconds,
               "tokens_per_second": o.steps * o.batch_size * data.shape[1] / max(seconds, 1e-9),
               "n_params": sum(p.numel() for p in model.parameters()), "threads": o.threads}
    model.set_attn_implementation("eager")  # what every analysis stage reads attention patterns from
    model.to("cpu")
    _save_final(out_dir, model, corpus, metrics)
    model.eval()
    return TrainResult(out_dir, model, metrics, history)


def _jsonl(record: dict) -> str:
    import json

    return json.dumps(to_jsonable(record), allow_nan=False) + "\n"


def _prepare(out_dir: Path, record: dict, force: bool, resume: bool) -> None:
    """Refuse to overwrite results without ``force``; on ``resume`` check the run is the same one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output path exists and is not a directory: {out_dir}")
    config_path = out_dir / "train_config.json"
    if resume:
        if not (out_dir / "checkpoint" / "state.json").is_file():
            raise UserError(f"nothing to resume in {out_dir} (no checkpoint)")
        if (out_dir / "metrics.json").exists():
            raise UserError(f"{out_dir} holds a finished run; nothing to resume")
        saved = load_json(config_path, "training config")
        same = {k: v for k, v in to_jsonable(record).items() if k != "corpus"}
        if ({k: v for k, v in saved.items() if k != "corpus"} != same
                or saved.get("corpus", {}).get("fingerprint") != record["corpus"]["fingerprint"]):
            raise UserError(f"--resume needs the same settings and corpus as the run in {out_dir}")
        return
    if config_path.exists() and not force:
        raise UserError(f"{out_dir} already holds a training run (train_config.json); pass --force")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json",):
        (out_dir / stale).unlink(missing_ok=True)
    if (out_dir / "checkpoint").is_dir():
        shutil.rmtree(out_dir / "checkpoint")
    save_json(config_path, record)


def _save_final(out_dir: Path, model, corpus: Corpus, metrics: dict) -> None:
    """Model and tokenizer files, each replaced atomically; ``metrics.json`` last marks the run complete."""
    tmp = Path(tempfile.mkdtemp(prefix=".final.", dir=out_dir))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        corpus.tokenizer.save_pretrained(str(tmp))
        for f in sorted(tmp.iterdir()):
            os.replace(f, out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save_json(out_dir / "metrics.json", metrics)
    shutil.rmtree(out_dir / "checkpoint", ignore_errors=True)
