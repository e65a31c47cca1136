"""Training speed and the default preset's targets, measured side by side in one run.

    .venv/bin/python benchmarks/bench_train.py            # speed ratios only (about a minute)
    .venv/bin/python benchmarks/bench_train.py --full     # also train the default preset end to end

Prints (1) tokens/s of linebreak's loop against a plain Hugging Face loop (``model(input_ids, labels=...)``,
``loss.backward()``, AdamW) on the same model and batch, steps interleaved so machine load hits both alike;
(2) the model's training FLOP rate against this machine's measured fp32 matmul rate; (3) with ``--full``,
the wall time, information captured and forced-break accuracy of the default preset against the targets
(:mod:`linebreak.rules.training`: <= 8 minutes, >= 0.95, >= 0.99). Results also go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def matmul_gflops(threads: int, n: int = 1024, reps: int = 20) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def flops_per_token(model, n_layer: int, d_model: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 x (matmul parameters) + attention scores and mixing (fwd + bwd)."""
    n = sum(p.numel() for name, p in model.named_parameters() if "wpe" not in name and p.dim() == 2)
    return 6 * n + 12 * n_layer * seq_len * d_model


def step_times(cfg, vocab: int, batch: torch.Tensor, steps: int) -> dict[str, float]:
    """Median seconds per optimizer step: linebreak's loop body vs a plain Hugging Face loop, interleaved."""
    from linebreak.train.loop import lr_at, make_optimizer, train_step
    from linebreak.train.model import build_model

    models = {k: build_model(cfg.model, vocab, 0) for k in ("linebreak", "hf_plain")}
    for m in models.values():
        m.set_attn_implementation(cfg.optim.attn_implementation)
    o = cfg.optim
    opts = {
        "linebreak": make_optimizer(models["linebreak"], o),
        "hf_plain": torch.optim.AdamW(models["hf_plain"].parameters(), lr=o.lr, weight_decay=o.weight_decay),
    }

    def ours(step):
        train_step(models["linebreak"], opts["linebreak"], batch, lr_at(step, o), o.grad_clip)

    def plain(step):
        m, opt = models["hf_plain"], opts["hf_plain"]
        loss = m(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    times = {"linebreak": [], "hf_plain": []}
    for step in range(steps + 2):
        for name, fn in (("linebreak", ours), ("hf_plain", plain)):
            t = time.perf_counter()
            fn(step)
            if step >= 2:  # warm-up
                times[name].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per loop")
    ap.add_argument("--full", action="store_true", help="also train the preset end to end")
    ap.add_argument("--work", default="runs/bench/train", help="folder for the corpus and model of --full")
    ap.add_argument("--out", default="runs/bench/bench_train.json")
    args = ap.parse_args()

    from linebreak.presets import TRAIN as PRESETS

    preset = PRESETS[args.preset]
    cfg, threads = preset.train, preset.train.optim.threads
    T = preset.data.seq_len
    torch.manual_seed(0)
    vocab = 3 + 2 * preset.data.vocab_size
    batch = torch.randint(3, vocab, (cfg.optim.batch_size, T))
    gflops = matmul_gflops(threads)
    torch.set_num_threads(threads)
    times = step_times(cfg, vocab, batch, args.steps)
    from linebreak.train.model import build_model

    fpt = flops_per_token(build_model(cfg.model, vocab, 0), cfg.model.n_layer, cfg.model.d_model, T)
    tokens = cfg.optim.batch_size * T
    res = {"preset": args.preset, "threads": threads, "matmul_gflops": gflops,
           "tokens_per_s": {k: tokens / v for k, v in times.items()},
           "s_per_step": times, "flops_per_token": fpt}
    res["speed_vs_hf_plain"] = times["hf_plain"] / times["linebreak"]
    res["model_gflops"] = fpt * res["tokens_per_s"]["linebreak"] / 1e9
    res["fraction_of_matmul_rate"] = res["model_gflops"] / gflops
    print(f"threads {threads}   fp32 matmul {gflops:.1f} GFLOP/s   model {fpt / 1e6:.2f} MFLOP/token")
    print(f"{'loop':<12}{'s/step':>10}{'tokens/s':>12}")
    for k in times:
        print(f"{k:<12}{times[k]:>10.3f}{res['tokens_per_s'][k]:>12,.0f}")
    print(f"linebreak / plain HF speed: {res['speed_vs_hf_plain']:.2f}x;  "
          f"model FLOP rate / matmul rate: {res['fraction_of_matmul_rate']:.2f}")

    if args.full:
        from linebreak.corpus import generate_corpus, load_corpus
        from linebreak.rules.training import MAX_TRAIN_MINUTES, MIN_FORCED_BREAK_ACC, MIN_INFO_CAPTURED
        from linebreak.train.loop import train

        work = Path(args.work)
        corpus_dir = work / "corpus"
        t = time.perf_counter()
        if not (corpus_dir / "metadata.json").exists():
            generate_corpus(preset.data, corpus_dir)
        res["generate_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        result = train(cfg, load_corpus(corpus_dir), work / "model", force=True)
        res["train_wall_seconds"] = time.perf_counter() - t
        m = result.metrics
        res["final"] = {k: getattr(m, k) for k in ("newline_ce", "newline_ce_posterior", "newline_ce_oracle",
                                           "newline_ce_constant", "info_captured", "info_captured_oracle",
                                           "forced_break_acc", "forced_break_acc_bayes",
                                           "forced_break_acc_knowable", "no_break_acc", "newline_acc",
                                           "newline_acc_posterior")}
        res["history"] = [{k: r[k] for k in ("step", "elapsed_s", "newline_ce", "info_captured",
                                             "forced_break_acc")} for r in result.history]
        checks = {f"minutes <= {MAX_TRAIN_MINUTES}": res["train_wall_seconds"] / 60,
                  f"info captured >= {MIN_INFO_CAPTURED}": m.info_captured,
                  f"knowable forced-break acc >= {MIN_FORCED_BREAK_ACC}": m.forced_break_acc_knowable}
        ok = [res["train_wall_seconds"] <= 60 * MAX_TRAIN_MINUTES, m.info_captured >= MIN_INFO_CAPTURED,
              (m.forced_break_acc_knowable or 0.0) >= MIN_FORCED_BREAK_ACC]
        for (name, value), good in zip(checks.items(), ok):
            print(f"{name:<36}{value:>8.3f}  {'met' if good else 'NOT met'}")
        res["targets_met"] = dict(zip(checks, ok))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
