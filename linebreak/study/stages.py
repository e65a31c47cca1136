"""Resumable pipeline stages: run a stage once, reuse it while its inputs have not changed.

A stage's *fingerprint* is a hash of its own settings and its upstream stages' fingerprints. When a stage
finishes, ``stage.json`` (name, fingerprint, summary, wall time) is written last, atomically, into its folder;
a rerun whose fingerprint matches that file reuses the folder instead of recomputing. An interrupted stage
never wrote ``stage.json``, so a rerun redoes exactly the stages that did not finish.

A stage's summary is its typed result as JSON (``Result.to_json()``, with its ``format``). Given the stage's
result class, :func:`run_stage` reads the summary back into :attr:`StageResult.result` (also for a fresh
run, so that a reused stage and a fresh one hand on the same object). A finished folder whose summary that
class refuses (an older layout or format version) counts as unfinished: it is recomputed, with one line in
the log.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linebreak.io import UserError, load_json, save_json, to_jsonable

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
    summary: dict  # the stage's result as JSON (what stage.json holds)
    wall_s: float
    reused: bool
    result: Any = None  # the typed result read from ``summary`` (the summary itself for an untyped stage)
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
    return rec if isinstance(rec, dict) and rec.get("fingerprint") == fp else None


def run_stage(name: str, path: str | Path, settings: Any, upstream: list[str], fn: Callable[[Path], Any],
              reuse: bool = True, log: Callable[[str], None] = print, result: type | None = None) -> StageResult:
    """Run ``fn(path) -> summary`` unless ``path`` already holds a finished run with the same fingerprint.

    ``fn`` returns the stage's result as JSON (or the typed result itself); ``result`` is its class (with
    ``from_json``), or None for a stage whose summary is a plain dict."""
    path = Path(path)
    fp = fingerprint(settings, upstream)
    read = result.from_json if result is not None else (lambda s, where=None: s)
    rec = finished(path, fp) if reuse else None
    if rec is not None:
        try:
            typed = read(rec.get("summary"), where=f"{path / STAGE_FILE}")
        except UserError as e:
            log(f"[{name}] recomputing {path}: its {STAGE_FILE} is of an older layout ({e})")
        else:
            log(f"[{name}] reusing {path} (inputs unchanged, fingerprint {fp})")
            return StageResult(name, path, fp, rec["summary"], rec["wall_s"], True, typed)
    (path / STAGE_FILE).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = fn(path)
    wall = time.perf_counter() - t0
    if hasattr(summary, "to_json"):
        summary = summary.to_json()
    summary = to_jsonable(summary)  # exactly what stage.json will hold (NaN as None)
    save_json(path / STAGE_FILE, {"name": name, "fingerprint": fp, "settings": settings,
                                  "upstream": upstream, "summary": summary, "wall_s": wall})
    return StageResult(name, path, fp, summary, wall, False, read(summary, where=f"stage {name}"))
