"""The files of a training run: the output folder, atomic checkpoints, resume, and the final save.

A checkpoint is the folder ``checkpoint/`` (weights and AdamW moments as safetensors, the step and the
elapsed time as JSON: nothing is pickled), written in a staging folder and renamed, so an interruption
leaves the previous checkpoint or the new one, never half of one. Resuming needs the same settings and the
same corpus (compared with ``train_config.json``). The final save writes the model and the tokenizer in
the Hugging Face layout, then ``metrics.json`` last: its presence marks a finished run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from linebreak.io import (
    UserError,
    load_json,
    load_tensors,
    read_jsonl,
    save_json,
    save_tensors,
    staging_dir,
    to_jsonable,
    write_text,
)


def prepare(out_dir: Path, record: dict, force: bool, resume: bool) -> None:
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


def save(out_dir: Path, model, optimizer, step: int, record: dict) -> None:
    """Write ``out_dir/checkpoint`` atomically: weights, AdamW moments, the step and the elapsed time."""
    tensors = {}
    for i, st in optimizer.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"{i}.{k}"] = v.cpu()
    with staging_dir(out_dir / "checkpoint") as tmp:
        save_tensors(tmp / "model.safetensors", unique_state(model))
        save_tensors(tmp / "optimizer.safetensors", tensors)
        save_json(tmp / "state.json", {"step": step, "elapsed_s": record["elapsed_s"]})


def load(out_dir: Path, model, optimizer) -> dict:
    """Load the checkpoint into ``model`` and ``optimizer``; returns its state (step, elapsed_s)."""
    ckpt = out_dir / "checkpoint"
    state = load_json(ckpt / "state.json", "checkpoint state")
    weights = load_tensors(ckpt / "model.safetensors", "checkpoint weights")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - (set(model.state_dict()) - set(unique_state(model))):
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


def unique_state(model) -> dict:
    """The state dict without the second name of tied weights (safetensors stores each tensor once)."""
    out, seen = {}, set()
    for k, v in model.state_dict().items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            out[k] = v.cpu()
    return out


def start_log(out_dir: Path, resume: bool, start: int) -> None:
    """``eval.jsonl`` empty for a new run; on resume, cut back to the records up to the checkpoint's step."""
    if resume:
        history = [r for r in read_jsonl(out_dir / "eval.jsonl") if r["step"] <= start]
        write_text(out_dir / "eval.jsonl", "".join(_jsonl(r) for r in history))
    else:
        write_text(out_dir / "eval.jsonl", "")


def _jsonl(record: dict) -> str:
    return json.dumps(to_jsonable(record), allow_nan=False) + "\n"


def save_final(out_dir: Path, model, corpus, metrics: dict) -> None:
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
