"""``linebreak study``: the whole study in one command, resumable, ending in a report a researcher can read.

Stages, each a folder under the output directory, each reused while its inputs are unchanged
(:mod:`linebreak.study.stages`):

    corpus   generate the wrapped corpus               (or re-wrap ``--text`` with ``--model``'s tokenizer)
    model    train the newline model                   (skipped with ``--model DIR``: analyse that model)
    manifold capture activations, probes, count-manifold geometry; the same for a randomly initialised
             control of the same architecture (geometry means little without one)
    qk       boundary heads and the QK twist verdict
    causal   head / subspace ablations, count patching, insertion sweep
    grok     the mod-P Fourier reference (``fast`` preset)

then ``report.md`` / ``report.json`` (:mod:`linebreak.study.findings` turns stage summaries into findings).
The sweep (:mod:`linebreak.study.sweep`) runs the first four stages for many settings through
:func:`run_line_stages`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from linebreak.corpus.store import CorpusConfig
from linebreak.io import UserError, save_json
from linebreak.presets import STUDY as STUDY_PRESETS
from linebreak.presets import StudyPreset, TrainPreset
from linebreak.study.stages import StageResult, run_stage

STAGES = ("corpus", "model", "manifold", "qk", "causal", "grok")


@dataclass(frozen=True)
class StudyConfig:
    preset: str = field(default="default", metadata={"help": f"one of: {', '.join(STUDY_PRESETS)}"})
    seed: int = field(default=0, metadata={"help": "seed of the corpus, the model and the analyses"})
    widths: str = field(default="", metadata={"help": "override the preset's widths (20,40,60 or 20:150)"})
    skip: str = field(default="", metadata={"help": "comma list of stages to skip: manifold,qk,causal,grok"})
    model: str = field(default="", metadata={"help": "analyse this local HF causal LM instead of training"})
    text: str = field(default="", metadata={"help": "re-wrap this text file (needed with --model)"})
    reuse: bool = field(default=True, metadata={"help": "reuse finished stages whose inputs are unchanged"})


def resolve(cfg: StudyConfig) -> StudyPreset:
    """The study preset with the seed, widths and text of ``cfg`` applied."""
    if cfg.preset not in STUDY_PRESETS:
        raise UserError(f"unknown preset {cfg.preset!r}; choose from: {', '.join(STUDY_PRESETS)}")
    p = STUDY_PRESETS[cfg.preset]
    data = dataclasses.replace(p.train.data, seed=cfg.seed, **({"widths": cfg.widths} if cfg.widths else {}),
                               **({"text": str(Path(cfg.text).resolve())} if cfg.text else {}))
    model = dataclasses.replace(p.train.train.model, init_seed=cfg.seed)
    optim = dataclasses.replace(p.train.train.optim, seed=cfg.seed)
    train = TrainPreset(data, dataclasses.replace(p.train.train, model=model, optim=optim))
    return dataclasses.replace(p, train=train, qk=dataclasses.replace(p.qk, seed=cfg.seed),
                               capture=dataclasses.replace(p.capture, seed=cfg.seed))


def _skips(cfg: StudyConfig) -> set[str]:
    skip = {s.strip() for s in cfg.skip.split(",") if s.strip()}
    bad = skip - set(STAGES[2:])
    if bad:
        raise UserError(f"cannot skip {', '.join(sorted(bad))}; skippable stages: {', '.join(STAGES[2:])}")
    if cfg.model and not cfg.text:
        raise UserError("--model needs --text FILE: the prose to re-wrap with that model's tokenizer")
    return skip


# ---- the line-width stages --------------------------------------------------------------------------------
def corpus_stage(out: Path, data: CorpusConfig, model_dir: str, reuse: bool, log) -> StageResult:
    from linebreak.corpus.store import generate_corpus, load_corpus

    settings = {"data": dataclasses.asdict(data), "tokenizer_of": model_dir}

    def work(path: Path) -> dict:
        if model_dir:
            from linebreak.corpus.external import generate_with_tokenizer

            generate_with_tokenizer(data, model_dir, path, force=True)
        else:
            generate_corpus(data, path, force=True)
        meta = load_corpus(path).meta
        return {k: meta[k] for k in ("fingerprint", "stats") if k in meta}

    return run_stage("corpus", out / "corpus", settings, [], work, reuse, log)


def model_stage(out: Path, preset: TrainPreset, corpus_res: StageResult, reuse: bool, log) -> StageResult:
    from linebreak.corpus.store import load_corpus
    from linebreak.train.loop import train

    def work(path: Path) -> dict:
        res = train(preset.train, load_corpus(corpus_res.path), path, force=True)
        return res.metrics

    return run_stage("model", out / "model", dataclasses.asdict(preset.train), [corpus_res.fingerprint], work,
                     reuse, log)


def control_model(model, cfg_model, corpus, path: Path) -> Path:
    """Save a randomly initialised model of the same architecture (seeded), the geometry control."""
    from linebreak.train.model import build_model

    if cfg_model is not None:
        ctrl = build_model(cfg_model, len(corpus.token_lengths), corpus.bos_id)
    else:  # an external model: re-initialise its own config
        import torch
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0)
        ctrl = AutoModelForCausalLM.from_config(model.config, attn_implementation="eager")
    ctrl.save_pretrained(str(path))
    corpus.tokenizer.save_pretrained(str(path))
    return path


def manifold_stage(out: Path, sp: StudyPreset, model_dir: Path, corpus_dir: Path, upstream: list[str],
                   cfg_model, reuse: bool, log) -> StageResult:
    from linebreak.capture.activations import capture
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.arch import load_model
    from linebreak.probe.layers import analyse, save_analysis

    settings = {"capture": dataclasses.asdict(sp.capture), "probe": dataclasses.asdict(sp.probe)}

    def work(path: Path) -> dict:
        corpus = load_corpus(corpus_dir)
        model, _ = load_model(model_dir)
        ctrl_dir = control_model(model, cfg_model, corpus, path / "control_model")
        summary = {}
        for name, mdir, dst in (("model", model_dir, path), ("control", ctrl_dir, path / "control")):
            m, _ = load_model(mdir)
            res = analyse(capture(m, corpus, sp.capture), sp.probe)
            save_analysis(res, dst)
            summary[name] = res["layers"]
        return summary

    return run_stage("manifold", out / "manifold", settings, upstream, work, reuse, log)


def qk_stage(out: Path, sp: StudyPreset, model_dir: Path, corpus_dir: Path, upstream: list[str], reuse: bool,
             log) -> StageResult:
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.arch import load_model
    from linebreak.io import to_jsonable
    from linebreak.qk.analysis import qk_analysis

    def work(path: Path) -> dict:
        model, tok = load_model(model_dir)
        res = to_jsonable(qk_analysis(model, load_corpus(corpus_dir), sp.qk, tokenizer=tok))
        save_json(path / "qk.json", res)
        return res

    return run_stage("qk", out / "qk", dataclasses.asdict(sp.qk), upstream, work, reuse, log)


def run_line_stages(out: str | Path, cfg: StudyConfig, sp: StudyPreset | None = None,
                    stages: tuple[str, ...] = ("corpus", "model", "manifold", "qk"), log=print) -> dict:
    """Run the line-width stages into ``out``; returns ``{stage name: StageResult}``."""
    out = Path(out)
    sp = sp or resolve(cfg)
    res: dict[str, StageResult] = {}
    res["corpus"] = corpus_stage(out, sp.train.data, cfg.model, cfg.reuse, log)
    if cfg.model:
        model_dir, model_fp, cfg_model = Path(cfg.model).resolve(), _dir_fingerprint(cfg.model), None
    else:
        res["model"] = model_stage(out, sp.train, res["corpus"], cfg.reuse, log)
        model_dir, model_fp, cfg_model = res["model"].path, res["model"].fingerprint, sp.train.train.model
    up = [res["corpus"].fingerprint, model_fp]
    if "manifold" in stages:
        res["manifold"] = manifold_stage(out, sp, model_dir, res["corpus"].path, up, cfg_model, cfg.reuse, log)
    if "qk" in stages:
        res["qk"] = qk_stage(out, sp, model_dir, res["corpus"].path, up, cfg.reuse, log)
    if "causal" in stages:
        res["causal"] = causal_stage(out, sp, model_dir, res["corpus"].path, res.get("qk"), up, cfg.reuse, log)
    return res


def causal_stage(out: Path, sp: StudyPreset, model_dir: Path, corpus_dir: Path, qk_res: StageResult | None,
                 upstream: list[str], reuse: bool, log) -> StageResult:
    from linebreak.causal.analysis import causal_checks
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.arch import load_model
    from linebreak.io import to_jsonable

    if qk_res is None:
        raise UserError("the causal stage needs the qk stage (it ablates the heads qk ranks)")

    def work(path: Path) -> dict:
        model, tok = load_model(model_dir)
        res = to_jsonable(causal_checks(model, load_corpus(corpus_dir), qk_res.summary, sp.causal, tokenizer=tok))
        save_json(path / "causal.json", res)
        return res

    return run_stage("causal", out / "causal", dataclasses.asdict(sp.causal), upstream + [qk_res.fingerprint],
                     work, reuse, log)


def grok_stage(out: Path, preset: str, seed: int, reuse: bool, log) -> StageResult:
    from linebreak.grok.train import run_grok
    from linebreak.presets import GROK as PRESETS

    cfg = dataclasses.replace(PRESETS[preset], seed=seed)

    def work(path: Path) -> dict:
        return run_grok(cfg, path, force=True, progress=True).summary

    return run_stage("grok", out / "grok", dataclasses.asdict(cfg), [], work, reuse, log)


def _dir_fingerprint(path: str | Path) -> str:
    """A fingerprint of a model folder from its files' names, sizes and modification times."""
    from linebreak.study.stages import fingerprint

    p = Path(path)
    if not p.is_dir():
        raise UserError(f"model directory not found: {p}")
    return fingerprint(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file()))


# ---- the whole study --------------------------------------------------------------------------------------
def run_study(cfg: StudyConfig, out: str | Path, log=print) -> dict:
    """Run every stage not skipped, then figures and the report; returns the report record."""
    from linebreak.study.findings import build_report

    out = Path(out)
    skip = _skips(cfg)
    sp = resolve(cfg)
    t0 = time.perf_counter()
    wanted = tuple(s for s in ("manifold", "qk", "causal") if s not in skip)
    if "causal" in wanted and "qk" not in wanted:
        raise UserError("the causal stage needs the qk stage; skip both or neither")
    res = run_line_stages(out, cfg, sp, wanted, log=log)
    if "grok" not in skip:
        res["grok"] = grok_stage(out, sp.grok, cfg.seed, cfg.reuse, log)
    for name, r in res.items():
        log(f"[{name}] {'reused' if r.reused else 'done'} in {r.wall_s:.1f} s -> {r.path}")
    record = build_report(out, cfg, sp, res, time.perf_counter() - t0)
    return record


