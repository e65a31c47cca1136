"""The study's stages, each a folder with ``stage.json``, reused while its inputs are unchanged.

    corpus   generate the wrapped corpus (or re-wrap ``--text`` with ``--model``'s tokenizer)   plain summary
    model    train the newline model                    -> :class:`linebreak.train.result.TrainMetrics`
    probe    capture, probes and count-manifold geometry of the model and of its random-init control
             (:func:`linebreak.capture.control.control_model`)        -> :class:`ProbeRuns`
    qk       boundary heads and the QK twist verdict    -> :class:`linebreak.qk.result.QKResult`
    causal   ablations, key resampling, count patching  -> :class:`linebreak.causal.result.CausalResult`
    grok     the mod-P Fourier reference                -> :class:`linebreak.grok.result.GrokResult`

Each work function saves its result's JSON in the stage folder (``metrics.json``, ``probe.json``, ``qk.json``,
``causal.json``, ``summary.json``) and returns it as the stage summary; :class:`~linebreak.study.stages.
StageResult` hands the typed result on as ``.result``. The sweep runs the first four through
:func:`run_line_stages`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from linebreak.corpus.store import CorpusConfig
from linebreak.io import UserError, save_json
from linebreak.presets import StudyPreset, TrainPreset
from linebreak.probe.result import ProbeResult
from linebreak.results import Result
from linebreak.study.stages import StageResult, fingerprint, finished, run_stage


@dataclass
class ProbeRuns(Result):
    """The probe stage's result: the trained model's probes and geometry beside its random-init control's."""

    FORMAT: ClassVar[str] = "linebreak-study-probe/1"
    model: ProbeResult
    control: ProbeResult | None = None

    def to_json(self) -> dict:
        return {"format": self.FORMAT, "model": self.model.to_json(),
                "control": self.control.to_json() if self.control is not None else None}

    @classmethod
    def from_json(cls, data: dict, where: str | None = None) -> ProbeRuns:
        where = cls.check_format(data, where)
        ctrl = data.get("control")
        return cls(ProbeResult.from_json(data.get("model"), f"{where}: model"),
                   ProbeResult.from_json(ctrl, f"{where}: control") if ctrl is not None else None)


def corpus_stage(out: Path, data: CorpusConfig, model_dir: str, reuse: bool, log) -> StageResult:
    from linebreak.corpus.store import generate_corpus, load_corpus

    settings = {"data": dataclasses.asdict(data), "tokenizer_of": model_dir}

    def work(path: Path) -> dict:
        if model_dir:
            from linebreak.corpus.external import generate_with_tokenizer

            generate_with_tokenizer(data, model_dir, path, force=True, long_words=data.long_words)
        else:
            generate_corpus(data, path, force=True)
        meta = load_corpus(path).meta
        return {k: meta[k] for k in ("fingerprint", "stats") if k in meta}

    return run_stage("corpus", out / "corpus", settings, [], work, reuse, log)


def model_stage(out: Path, preset: TrainPreset, corpus_res: StageResult, reuse: bool, log) -> StageResult:
    from linebreak.corpus.store import load_corpus
    from linebreak.train.loop import train
    from linebreak.train.result import TrainMetrics

    def work(path: Path) -> dict:  # train() writes metrics.json itself
        return train(preset.train, load_corpus(corpus_res.path), path, force=True).metrics.to_json()

    return run_stage("model", out / "model", dataclasses.asdict(preset.train), [corpus_res.fingerprint], work,
                     reuse, log, TrainMetrics)


def shares_pass(sp: StudyPreset) -> bool:
    """Whether the qk stage can read the probe stage's capture pass: the same split, batches, device and dtype
    (and then :func:`qk_can_ride` checks the documents)."""
    cap, qk = sp.capture, sp.qk
    return (cap.split, cap.batch_size, cap.device, cap.dtype) == (qk.split, qk.batch_size, qk.device, qk.dtype)


def qk_can_ride(read, ids) -> bool:
    """Whether the qk pass ``read`` (:func:`linebreak.qk.analysis.qk_pass`) reads the first documents of the
    capture's ``ids``, so that one pass serves both."""
    import numpy as np

    return len(read.ids) <= len(ids) and np.array_equal(read.ids, ids[: len(read.ids)])


def probe_stage(out: Path, sp: StudyPreset, model_dir: Path, corpus_dir: Path, upstream: list[str],
                cfg_model, reuse: bool, log, carry: dict | None = None) -> StageResult:
    """The probe stage. With ``carry`` (a dict), the qk stage's pass rides the model's capture pass when it
    can (:func:`shares_pass`, :func:`qk_can_ride`): the qk reader is left in ``carry["qk"]``, already run, for
    :func:`qk_stage`, and the model runs over the documents once instead of twice."""
    from linebreak.capture.collect import capture
    from linebreak.capture.control import save_control_model
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.load import load_model
    from linebreak.probe.layers import analyse
    from linebreak.probe.result import save_probe

    settings = {"capture": dataclasses.asdict(sp.capture), "probe": dataclasses.asdict(sp.probe)}
    cap = sp.capture

    def work(path: Path) -> dict:
        corpus = load_corpus(corpus_dir)
        model, tok = load_model(model_dir, cap.device, cap.dtype)
        ctrl_dir = save_control_model(model, corpus, path / "control_model", cfg_model)
        also = []
        if carry is not None and shares_pass(sp):
            from linebreak.qk.analysis import qk_pass

            read = qk_pass(model, corpus, sp.qk, tokenizer=tok)
            if qk_can_ride(read, corpus.splits[cap.split].input_ids[: cap.max_docs]):
                carry["qk"], also = read, [read.reader]
        runs = {"model": analyse(capture(model, corpus, cap, also=also), sp.probe)}
        save_probe(runs["model"], path)
        del model  # one model on the device at a time: the control is loaded once the model's capture is done
        runs["control"] = analyse(capture(load_model(ctrl_dir, cap.device, cap.dtype)[0], corpus, cap), sp.probe)
        save_probe(runs["control"], path / "control")
        return ProbeRuns(runs["model"], runs["control"]).to_json()

    return run_stage("probe", out / "probe", settings, upstream, work, reuse, log, ProbeRuns)


def qk_stage(out: Path, sp: StudyPreset, model_dir: Path, corpus_dir: Path, upstream: list[str], reuse: bool,
             log, carry: dict | None = None) -> StageResult:
    """The qk stage; it reads ``carry["qk"]`` when the probe stage's pass carried it (:func:`probe_stage`)."""
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.load import load_model
    from linebreak.qk.analysis import qk_analysis
    from linebreak.qk.result import QKResult

    def work(path: Path) -> dict:
        model, tok = load_model(model_dir, sp.qk.device, sp.qk.dtype)
        read = (carry or {}).pop("qk", None)
        res = qk_analysis(model, load_corpus(corpus_dir), sp.qk, tokenizer=tok, read=read).to_json()
        save_json(path / "qk.json", res)
        return res

    return run_stage("qk", out / "qk", dataclasses.asdict(sp.qk), upstream, work, reuse, log, QKResult)


def causal_stage(out: Path, sp: StudyPreset, model_dir: Path, corpus_dir: Path, qk_res: StageResult | None,
                 upstream: list[str], reuse: bool, log) -> StageResult:
    from linebreak.causal.analysis import causal_checks
    from linebreak.causal.result import CausalResult
    from linebreak.corpus.store import load_corpus
    from linebreak.hooks.load import load_model

    if qk_res is None:
        raise UserError("the causal stage needs the qk stage (it ablates the heads qk ranks)")

    def work(path: Path) -> dict:
        model, tok = load_model(model_dir, sp.causal.device, sp.causal.dtype)
        res = causal_checks(model, load_corpus(corpus_dir), qk_res.result, sp.causal, tokenizer=tok).to_json()
        save_json(path / "causal.json", res)
        return res

    return run_stage("causal", out / "causal", dataclasses.asdict(sp.causal), upstream + [qk_res.fingerprint],
                     work, reuse, log, CausalResult)


def grok_stage(out: Path, preset: str, seed: int, reuse: bool, log) -> StageResult:
    from linebreak.grok.result import GrokResult
    from linebreak.grok.train import run_grok
    from linebreak.presets import GROK as PRESETS

    cfg = dataclasses.replace(PRESETS[preset], seed=seed)

    def work(path: Path) -> dict:  # run_grok writes summary.json itself
        return run_grok(cfg, path, force=True, progress=True).summary.to_json()

    return run_stage("grok", out / "grok", dataclasses.asdict(cfg), [], work, reuse, log, GrokResult)


def dir_fingerprint(path: str | Path) -> str:
    """A fingerprint of a model folder from its files' names, sizes and modification times."""
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"model directory not found: {p}")
    return fingerprint(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file()))


def run_line_stages(out: str | Path, cfg, sp: StudyPreset | None = None,
                    stages: tuple[str, ...] = ("corpus", "model", "probe", "qk"), log=print) -> dict:
    """Run the line-width stages of study config ``cfg`` into ``out``; returns ``{stage name: StageResult}``."""
    from linebreak.study.pipeline import resolve

    out = Path(out)
    sp = sp or resolve(cfg)
    res: dict[str, StageResult] = {}
    res["corpus"] = corpus_stage(out, sp.train.data, cfg.model, cfg.reuse, log)
    if cfg.model:
        model_dir, model_fp, cfg_model = Path(cfg.model).resolve(), dir_fingerprint(cfg.model), None
    else:
        res["model"] = model_stage(out, sp.train, res["corpus"], cfg.reuse, log)
        model_dir, model_fp, cfg_model = res["model"].path, res["model"].fingerprint, sp.train.train.model
    up = [res["corpus"].fingerprint, model_fp]
    # the qk stage's pass rides the probe stage's capture when qk will run (not reused): one pass, not two
    qk_runs = "qk" in stages and not (cfg.reuse and finished(out / "qk", fingerprint(dataclasses.asdict(sp.qk), up)))
    carry: dict = {}
    if "probe" in stages:
        res["probe"] = probe_stage(out, sp, model_dir, res["corpus"].path, up, cfg_model, cfg.reuse, log,
                                   carry if qk_runs else None)
    if "qk" in stages:
        res["qk"] = qk_stage(out, sp, model_dir, res["corpus"].path, up, cfg.reuse, log, carry)
    if "causal" in stages:
        res["causal"] = causal_stage(out, sp, model_dir, res["corpus"].path, res.get("qk"), up, cfg.reuse, log)
    return res
