"""Benchmark: capture + probe + qk on a GPT-2-small-sized model, against a plain forward pass of the same model.

Builds a randomly initialised 12-layer, d_model 768 Llama-style decoder (12 heads, d_mlp 3072, rotary: the
default study's architecture at GPT-2 small / Pythia-160M size) on the default study corpus' vocabulary
(generated into a temporary folder unless ``--corpus`` names one), then times, over the default study's
validation split (every stage on the same documents):

    forward   model(input_ids, output_hidden_states=True) in batches, no hooks: the reference
    capture   the study's one pass: the capture (resid_pre, resid_post of every layer, a 32768-row sample) with
              the qk stage's sums riding it, as ``linebreak study`` runs them (``--separate``: the capture alone)
    probe     the study's probes and manifold geometry on that capture
    qk        the study's QK analysis (``n_docs`` raised to the split, so it reads the same tokens), from the
              sums of the shared pass (``--separate``: with its own forward pass, as ``linebreak qk`` runs it)

and prints tokens per second per stage, the ratio of the three analysis stages' time to the plain forward
pass, and the peak resident memory (``ru_maxrss``) after each stage. Targets (issue 18): analysis <= 3x the
plain forward pass, peak < 4 GB.

    OMP_NUM_THREADS=2 python benchmarks/bench_analysis.py [--corpus DIR] [--docs N] [--threads 2] [--separate]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 3.0
TARGET_PEAK_GB = 4.0


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def build_model(vocab_size: int, n_ctx: int):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                      num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=n_ctx)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


def plain_forward(model, ids, batch_size: int) -> None:
    import torch

    from linebreak.hooks.run import as_tensor, batches

    with torch.no_grad():
        for s, e in batches(len(ids), batch_size):
            model(input_ids=as_tensor(ids[s:e]), output_hidden_states=True, use_cache=False)


def main() -> None:
    import torch

    from linebreak.capture.collect import capture
    from linebreak.corpus.store import generate_corpus, load_corpus
    from linebreak.presets import STUDY
    from linebreak.probe.layers import analyse
    from linebreak.qk.analysis import qk_analysis, qk_pass

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=None, help="a default-study corpus folder (default: generate one)")
    ap.add_argument("--docs", type=int, default=0, help="validation documents to use (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--separate", action="store_true", help="capture and qk each with a forward pass of its own")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sp = STUDY["default"]
    with tempfile.TemporaryDirectory() as tmp:
        corpus_dir = Path(args.corpus) if args.corpus else generate_corpus(sp.train.data, Path(tmp) / "corpus")
        corpus = load_corpus(corpus_dir)
        ids = corpus.splits["validation"].input_ids
        n_docs = args.docs or len(ids)
        ids = ids[:n_docs]
        tokens = ids.size
        model = build_model(len(corpus.token_lengths), ids.shape[1])
        n_params = sum(p.numel() for p in model.parameters())
        print(f"model: 12 layers, d_model 768, {n_params / 1e6:.1f}M parameters, vocab {len(corpus.token_lengths)}; "
              f"{n_docs} validation documents x {ids.shape[1]} = {tokens} tokens; {args.threads} threads")
        cap_cfg = dataclasses.replace(sp.capture, max_docs=n_docs)
        qk_cfg = dataclasses.replace(sp.qk, n_docs=n_docs)
        times, peaks = {}, {}

        def timed(name, fn):
            t0 = time.perf_counter()
            out = fn()
            times[name] = time.perf_counter() - t0
            peaks[name] = peak_gb()
            print(f"  {name:<8} {times[name]:8.1f} s   peak so far {peaks[name]:.2f} GB", flush=True)
            return out

        timed("forward", lambda: plain_forward(model, ids, cap_cfg.batch_size))
        read = None if args.separate else qk_pass(model, corpus, qk_cfg, tokenizer=corpus.tokenizer)
        also = [] if read is None else [read.reader]
        held = {"acts": timed("capture", lambda: capture(model, corpus, cap_cfg, progress=False, also=also))}
        timed("probe", lambda: analyse(held["acts"], sp.probe, progress=False))
        held.clear()  # the capture is the largest thing held; qk does not read it
        timed("qk", lambda: qk_analysis(model, corpus, qk_cfg, tokenizer=corpus.tokenizer, read=read))

    fwd = times["forward"]
    print(f"\n{'stage':<10}{'seconds':>10}{'tokens/s':>12}{'x forward':>11}{'peak GB':>9}")
    for name, t in times.items():
        print(f"{name:<10}{t:>10.1f}{tokens / t:>12.0f}{t / fwd:>11.2f}{peaks[name]:>9.2f}")
    analysis = times["capture"] + times["probe"] + times["qk"]
    ratio, peak = analysis / fwd, max(peaks.values())
    print(f"{'analysis':<10}{analysis:>10.1f}{tokens / analysis:>12.0f}{ratio:>11.2f}{peak:>9.2f}")
    print(f"analysis / plain forward = {ratio:.2f} (target <= {TARGET_RATIO:g}x) -> "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    print(f"peak resident memory = {peak:.2f} GB (target < {TARGET_PEAK_GB:g} GB) -> "
          f"{'met' if peak < TARGET_PEAK_GB else 'NOT met'}")


if __name__ == "__main__":
    main()
