"""``linebreak study``: the whole study in one command, resumable, ending in a report a researcher can read.

Stages, each a folder under the output directory, each reused while its inputs are unchanged
(:mod:`linebreak.study.stages`; the stage functions are in :mod:`linebreak.study.line_stages`):

    corpus   generate the wrapped corpus               (or re-wrap ``--text`` with ``--model``'s tokenizer)
    model    train the newline model                   (skipped with ``--model DIR``: analyse that model)
    probe    capture activations, probes, count-manifold geometry; the same for a randomly initialised
             control of the same architecture (geometry means little without one)
    qk       boundary heads and the QK twist verdict
    causal   head / subspace ablations, count patching, insertion sweep
    grok     the mod-P Fourier reference (``fast`` preset)

then ``report.md`` / ``report.json`` (:mod:`linebreak.study.findings` turns the stages' typed results into
findings). The sweep (:mod:`linebreak.study.sweep`) runs the first four stages for many settings.

``--device cpu|cuda`` and ``--dtype float32|bfloat16|float16`` (:class:`~linebreak.hooks.device.OnDevice`) are
where the analysed model runs, the trained one or ``--model``'s, in probe, qk and causal (training stays on the
CPU in float32; the mod-P reference is its own small model on the CPU); the device is checked before any stage
runs. ``--layers`` limits the probe stage's capture and the qk stage's analysis to those layers (a 2-9B model's
residual stream at every layer, and qk's per-value sums of it, do not fit in memory); causal reads the layers of
the heads qk ranks. Without ``--layers`` both stages read every layer. ``--max-gb`` sets the memory budget of
both (each refuses a plan over it before its model runs, saying what to cut; default: their own, 8 GB).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from linebreak.config import require, tuples_from_text
from linebreak.corpus.wrap import LONG_WORDS
from linebreak.hooks.device import OnDevice
from linebreak.io import UserError
from linebreak.presets import STUDY as STUDY_PRESETS
from linebreak.presets import StudyPreset, TrainPreset

STAGES = ("corpus", "model", "probe", "qk", "causal", "grok")
SKIPPABLE = STAGES[2:]
RENAMED = {"manifold": "probe"}  # stage names of earlier versions


@dataclass(frozen=True)
class StudyConfig(OnDevice):
    preset: str = field(default="default", metadata={"help": f"one of: {', '.join(STUDY_PRESETS)}"})
    seed: int = field(default=0, metadata={"help": "seed of the corpus, the model and the analyses"})
    widths: tuple[int, ...] = field(default=(), metadata={
        "help": "override the preset's widths (20,40,60 or 20:150)"})
    skip: tuple[str, ...] = field(default=(), metadata={"help": f"stages to skip: {','.join(SKIPPABLE)}"})
    model: str = field(default="", metadata={"help": "analyse this local HF causal LM instead of training"})
    text: str = field(default="", metadata={"help": "re-wrap this text file (needed with --model)"})
    reuse: bool = field(default=True, metadata={"help": "reuse finished stages whose inputs are unchanged"})
    layers: tuple[int, ...] = field(default=(), metadata={
        "help": "layers the probe stage captures and probes and whose heads the qk stage judges (empty: all)"})
    max_gb: float = field(default=0.0, metadata={
        "help": "memory budget (GB) of the probe stage's capture and of the qk stage; 0: their own (8 each)"})
    long_words: str = field(default="alone", metadata={
        "help": "a --text word longer than the line: alone (on a line of its own, left out of the statistics) "
                "| refuse"})

    def __post_init__(self):
        tuples_from_text(self)  # "qk,grok" and "20:150" from code and old records
        super().__post_init__()
        require(self.preset in STUDY_PRESETS,
                f"unknown preset {self.preset!r}; choose from: {', '.join(STUDY_PRESETS)}")
        bad = sorted(set(self.skip) - set(SKIPPABLE))
        renamed = "".join(f" ({s} is now called {RENAMED[s]})" for s in bad if s in RENAMED)
        require(not bad, f"cannot skip {', '.join(bad)}; skippable stages: {', '.join(SKIPPABLE)}{renamed}")
        require(not self.model or bool(self.text),
                "--model needs --text FILE: the prose to re-wrap with that model's tokenizer")
        require("qk" not in self.skip or "causal" in self.skip,
                "the causal stage needs the qk stage; skip both or neither")
        require(all(w > 0 for w in self.widths), f"widths must be positive, got {min(self.widths, default=0)}")
        require(self.max_gb >= 0, f"max_gb must be >= 0 (0: the stages' own budgets), got {self.max_gb}")
        require(self.long_words in LONG_WORDS, f"long_words must be {' or '.join(LONG_WORDS)}, got {self.long_words!r}")


def resolve(cfg: StudyConfig) -> StudyPreset:
    """The study preset with the seed, widths, text, device, dtype, layers and memory budget (probe and qk) of
    ``cfg`` applied."""
    p = STUDY_PRESETS[cfg.preset]
    data = dataclasses.replace(p.train.data, seed=cfg.seed, **({"widths": cfg.widths} if cfg.widths else {}),
                               **({"text": str(Path(cfg.text).resolve()), "long_words": cfg.long_words}
                                  if cfg.text else {}))
    model = dataclasses.replace(p.train.train.model, init_seed=cfg.seed)
    optim = dataclasses.replace(p.train.train.optim, seed=cfg.seed)
    train = TrainPreset(data, dataclasses.replace(p.train.train, model=model, optim=optim))
    on = {"device": cfg.device, "dtype": cfg.dtype}
    bounded = {"layers": cfg.layers, **({"max_gb": cfg.max_gb} if cfg.max_gb else {})}
    return dataclasses.replace(p, train=train, qk=dataclasses.replace(p.qk, seed=cfg.seed, **bounded, **on),
                               capture=dataclasses.replace(p.capture, seed=cfg.seed, **bounded, **on),
                               causal=dataclasses.replace(p.causal, **on))


def run_study(cfg: StudyConfig, out: str | Path, log=print) -> dict:
    """Run every stage not skipped, then figures and the report; returns the report record."""
    from linebreak.hooks.load import check_device
    from linebreak.study.findings import build_report
    from linebreak.study.line_stages import grok_stage, run_line_stages

    if not isinstance(cfg, StudyConfig):
        raise UserError("run_study needs a StudyConfig")
    check_device(cfg.device, cfg.dtype)  # before any stage writes
    if cfg.model:  # a bad model folder or tokenizer, before any stage writes
        from linebreak.corpus.external import check_tokenizer
        from linebreak.hooks.load import check_model_folder

        check_model_folder(cfg.model)
        check_tokenizer(cfg.model)
    out = Path(out)
    sp = resolve(cfg)
    t0 = time.perf_counter()
    wanted = tuple(s for s in ("probe", "qk", "causal") if s not in cfg.skip)
    res = run_line_stages(out, cfg, sp, wanted, log=log)
    if "grok" not in cfg.skip:
        res["grok"] = grok_stage(out, sp.grok, cfg.seed, cfg.reuse, log)
    for name, r in res.items():
        log(f"[{name}] {'reused' if r.reused else 'done'} in {r.wall_s:.1f} s -> {r.path}")
    return build_report(out, cfg, sp, res, time.perf_counter() - t0)
