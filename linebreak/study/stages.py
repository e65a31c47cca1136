"""Resumable pipeline stages: run a stage once, reuse it while its inputs have not changed.

A stage's *fingerprint* is a hash of its own settings and its upstream stages' fingerprints. When a stage
finishes, ``stage.json`` (name, fingerprint, summary, wall time) is written last, atomically, into its folder;
a rerun whose fingerprint matches that file reuses the folder instead of recomputing. An interrupted stage
never wrote ``stage.json``, so a rerun redoes exactly the stages that did not finish.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linebreak.io import load_json, save_json, to_jsonable

STAGE_FILE = "stage.json"


def fingerprint(settings: Any, upstream: list[str] | tuple[str, ...] = ()) -> str:
    """A short, stable hash of JSON-able settings plus the fingerprints of the stages this one reads."""
    blob = json.dumps({"settings": to_jsonable(settings), "upstream": list(upstream)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class StageResult:
    name: str
    path: Path
    fingerprint: str
    summary: dict
    wall_s: float
    reused: bool
    extra: dict = field(default_factory=dict)


def finished(path: Path, fp: str) -> dict | None:
    """The saved stage record if ``path`` holds a finished run with fingerprint ``fp``."""
    f = Path(path) / STAGE_FILE
    if not f.is_file():
        return None
    try:
        rec = load_json(f)
    except Exception:
        return None
    return rec if rec.get("fingerprint") == fp else None


def run_stage(name: str, path: str | Path, settings: Any, upstream: list[str], fn: Callable[[Path], dict],
              reuse: bool = True, log: Callable[[str], None] = print) -> StageResult:
    """Run ``fn(path) -> summary`` unless ``path`` already holds a finished run with the same fingerprint."""
    path = Path(path)
    fp = fingerprint(settings, upstream)
    rec = finished(path, fp) if reuse else None
    if rec is not None:
        log(f"[{name}] reusing {path} (inputs unchanged, fingerprint {fp})")
        return StageResult(name, path, fp, rec["summary"], rec["wall_s"], True)
    (path / STAGE_FILE).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = fn(path)
    wall = time.perf_counter() - t0
    save_json(path / STAGE_FILE, {"name": name, "fingerprint": fp, "settings": settings,
                                  "upstream": upstream, "summary": summary, "wall_s": wall})
    return StageResult(name, path, fp, summary, wall, False)
