"""Train the modular-addition transformer full-batch with AdamW and log the progress measures.

``run_grok(cfg, out_dir)`` is the one entry point (the CLI and the study call it). It writes to ``out_dir``:

* ``log.jsonl``: one record per ``eval_every`` steps (train/test loss and accuracy, total squared weight
  norm, the embedding's key frequencies at that step, Gini of the Fourier norms of ``W_E`` and ``W_L``);
  records at multiples of ``measure_every`` also carry ``restricted_loss`` and ``excluded_loss``, computed
  at the end of the run with the *final* key frequencies, as in Nanda et al. (the file is rewritten
  atomically with them);
* ``checkpoints/step_XXXXXX.safetensors`` (weights, AdamW state, P and the config in the metadata) every
  ``checkpoint_every`` steps and at the end;
* ``summary.json`` (:class:`linebreak.grok.result.GrokResult`) and the figures.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from linebreak.grok import analysis
from linebreak.grok.config import GrokConfig
from linebreak.grok.data import ModpData, check_task, make_data
from linebreak.grok.model import Transformer
from linebreak.grok.phases import detect_phases
from linebreak.grok.result import GrokResult, GrokRun
from linebreak.io import UserError, append_jsonl, load_tensors, prepare_out_dir, save_tensors, write_text
from linebreak.rules.grok import NEURON_SHARE


def _optimizer(model: Transformer, cfg: GrokConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                             betas=(cfg.beta1, cfg.beta2))


def save_checkpoint(path: Path, model: Transformer, opt: torch.optim.Optimizer, cfg: GrokConfig, step: int):
    tensors = {name: p.detach() for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        st = opt.state.get(p, {})
        if st:
            tensors[f"adam.exp_avg.{name}"] = st["exp_avg"]
            tensors[f"adam.exp_avg_sq.{name}"] = st["exp_avg_sq"]
    meta = {"p": str(cfg.p), "step": str(step), "config": json.dumps(dataclasses.asdict(cfg))}
    save_tensors(path, tensors, metadata=meta)


def load_checkpoint(path: str | Path, cfg: GrokConfig) -> tuple[Transformer, torch.optim.AdamW, int]:
    """Model and optimiser from a checkpoint; refuses one trained for another P or model shape."""
    from safetensors import safe_open

    tensors = load_tensors(path, "checkpoint")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "p" not in meta or "step" not in meta:
        raise UserError(f"{path} is not a linebreak grok checkpoint (no P in its metadata)")
    if int(meta["p"]) != cfg.p:
        raise UserError(f"checkpoint {path} was trained with P = {meta['p']}, but this run has P = {cfg.p}")
    model = Transformer(cfg.shape(), seed=cfg.seed)
    params = dict(model.named_parameters())
    for name, p in params.items():
        if name not in tensors or tensors[name].shape != p.shape:
            raise UserError(f"checkpoint {path} does not match this model's shape (weight {name})")
        p.data.copy_(tensors[name])
    opt = _optimizer(model, cfg)
    step = int(meta["step"])
    if f"adam.exp_avg.{next(iter(params))}" in tensors:
        for name, p in params.items():
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": tensors[f"adam.exp_avg.{name}"].clone(),
                            "exp_avg_sq": tensors[f"adam.exp_avg_sq.{name}"].clone()}
    return model, opt, step


def _eval_record(model: Transformer, data: ModpData, step: int) -> dict:
    rec = {"step": step, **analysis.accuracy_and_loss(model, data), "weight_norm_sq": model.weight_norm_sq(),
           "key_freqs": analysis.embedding_key_frequencies(model), **analysis.gini_measures(model)}
    return rec


def train(cfg: GrokConfig, data: ModpData, log_path: Path, ckpt_dir: Path, resume_from: str | None = None,
          progress: bool = True) -> tuple[Transformer, list[dict], dict[int, dict]]:
    """The training loop. Returns the model, the log records and in-memory weight snapshots for measures."""
    from linebreak.progress import bar

    torch.manual_seed(cfg.seed)
    if resume_from:
        model, opt, start = load_checkpoint(resume_from, cfg)
    else:
        model, start = Transformer(cfg.shape(), seed=cfg.seed), 0
        opt = _optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((start + s + 1) / cfg.warmup_steps, 1.0) if cfg.warmup_steps else 1.0)
    x, y = data.tokens[data.train_idx], data.labels[data.train_idx]
    records, snapshots = [], {}

    def observe(step: int):
        model.eval()
        rec = _eval_record(model, data, step)
        records.append(rec)
        append_jsonl(log_path, rec)
        if step % cfg.measure_every == 0 or step == cfg.steps:
            snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt_dir / f"step_{step:06d}.safetensors", model, opt, cfg, step)
        pbar.set_postfix(train=f"{rec['train_acc']:.3f}", test=f"{rec['test_acc']:.3f}", refresh=False)
        model.train()

    pbar = bar(range(start, cfg.steps), desc=f"grok P={cfg.p}", disable=not progress, mininterval=1.0)
    if start % cfg.eval_every == 0:
        observe(start)
    for step in pbar:
        loss = analysis.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            observe(step + 1)
    return model, records, snapshots


def _progress_measures(cfg: GrokConfig, data: ModpData, records: list[dict], snapshots: dict[int, dict],
                       keys: list[int]) -> None:
    model = Transformer(cfg.shape(), seed=cfg.seed)
    for rec in records:
        if rec["step"] in snapshots:
            model.load_state_dict(snapshots[rec["step"]])
            rec["restricted_loss"], rec["excluded_loss"] = analysis.restricted_excluded_loss(model, data, keys)


def _loss_ordering(records: list[dict], phases) -> dict:
    """Nanda's two qualitative checks, measured on the logged curves."""
    m = [r for r in records if "restricted_loss" in r]
    out = {"restricted_falls_before_test": None, "excluded_rises_while_test_high": None}
    if not m or phases.memorised is None:
        return out
    # the step where each loss has first fallen below half of its value at the end of memorisation
    at_mem = next((r for r in m if r["step"] >= phases.memorised), m[-1])

    def half_step(key):
        return next((r["step"] for r in m if r["step"] > at_mem["step"] and r[key] < at_mem[key] / 2), None)

    r_half, t_half = half_step("restricted_loss"), half_step("test_loss")
    out["restricted_half_step"], out["test_half_step"] = r_half, t_half
    out["restricted_falls_before_test"] = r_half is not None and (t_half is None or r_half < t_half)
    high = [r for r in m if r["step"] >= at_mem["step"] and r["test_loss"] > at_mem["test_loss"] / 2]
    peak = max(high, key=lambda r: r["excluded_loss"]) if high else None
    out["excluded_loss_at_memorised"] = at_mem["excluded_loss"]
    out["excluded_loss_peak_while_test_high"] = peak["excluded_loss"] if peak else None
    out["excluded_rises_while_test_high"] = bool(peak and peak["excluded_loss"] > 2 * at_mem["excluded_loss"])
    return out


def run_grok(cfg: GrokConfig, out_dir: str | Path, force: bool = False, progress: bool = True,
             resume_from: str | None = None, figures: bool = True, threads: int | None = 1) -> GrokRun:
    """Train, measure, detect the phases, write the log, summary and figures; return them.

    ``threads`` torch CPU threads for the run (restored afterwards). The default, 1, makes a run repeatable
    bit for bit: with several threads the embedding gradients are summed in a varying order, and a grokking
    run amplifies such differences (the grok step moved by one evaluation interval between two 2-thread runs).
    For this small model one thread is as fast. ``None`` keeps torch's setting."""
    if threads is not None and threads < 1:
        raise UserError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_grok(cfg, out_dir, force, progress, resume_from, figures)
    finally:
        torch.set_num_threads(before)


def _run_grok(cfg: GrokConfig, out_dir: str | Path, force: bool, progress: bool, resume_from: str | None,
              figures: bool) -> GrokRun:
    check_task(cfg.p, cfg.frac_train)
    for name in ("steps", "eval_every", "measure_every", "checkpoint_every"):
        if getattr(cfg, name) < 1:
            raise UserError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    out = prepare_out_dir(out_dir, force, marker="summary.json")
    data = make_data(cfg.p, cfg.frac_train, cfg.seed)
    log_path = out / "log.jsonl"
    write_text(log_path, "")
    t0 = time.perf_counter()
    model, records, snapshots = train(cfg, data, log_path, out / "checkpoints", resume_from, progress)
    train_s = time.perf_counter() - t0
    keys = analysis.embedding_key_frequencies(model)
    _progress_measures(cfg, data, records, snapshots, keys)
    write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))
    phases = detect_phases(records)
    neurons = analysis.neuron_frequencies(model, data)
    final = records[-1]
    summary = GrokResult(
        config=cfg, n_train=len(data.train_idx), n_test=len(data.test_idx),
        final_step=final["step"], final_train_acc=final["train_acc"], final_test_acc=final["test_acc"],
        final_train_loss=final["train_loss"], final_test_loss=final["test_loss"],
        memorisation_step=phases.memorised, grok_step=phases.grok,
        phases=phases, key_frequencies=keys, n_key_frequencies=len(keys),
        final_restricted_loss=final.get("restricted_loss"), final_excluded_loss=final.get("excluded_loss"),
        neurons_single_frequency_share=float((neurons.share >= NEURON_SHARE).mean()),
        neurons_on_key_frequencies_share=float(sum((neurons.freq == k).sum() for k in keys) / len(neurons.freq)),
        loss_ordering=_loss_ordering(records, phases),
        train_seconds=train_s, wall_seconds=None,
    )
    if figures:
        from linebreak.plots.modp import plot_all

        summary.figures = [p.name for p in plot_all(out, records, phases, model, neurons, keys)]
    summary.wall_seconds = time.perf_counter() - t0
    summary.save(out / "summary.json")
    return GrokRun(out, summary, records)
