"""Disk I/O shared by every stage: atomic writes, JSON, safetensors, output folders, user errors.

Every file linebreak writes goes through :func:`atomic_write` (write to a temporary file in the same folder,
then rename), so an interrupted run never leaves a half-written file in place of a good one. Weights and
activations are read with safetensors only: nothing a user hands us is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


class UserError(Exception):
    """A problem with the user's input. The CLI prints it as one line and exits with status 2."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` (same folder, so atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def refuse_existing_file(path: str | Path, force: bool) -> None:
    """A :class:`UserError` when ``path`` is a folder, or is a file and ``force`` is off (a script that writes
    one file keeps an existing one unless told to replace it)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} exists")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it")


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN/inf; null means "not defined"
    if hasattr(x, "__dataclass_fields__"):
        from dataclasses import asdict

        return _jsonable(asdict(x))
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:  # torch scalar
        return _jsonable(x.item())
    return x


def to_jsonable(x: Any) -> Any:
    """Convert numpy/torch scalars and arrays, dataclasses and paths into plain JSON values."""
    return _jsonable(x)


def save_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(_jsonable(obj), indent=indent, allow_nan=False) + "\n")


def load_json(path: str | Path, what: str = "file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{what} is not valid JSON: {path} ({e.msg if hasattr(e, 'msg') else e})") from None


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON line (a log; each line is complete or absent)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_jsonable(record), allow_nan=False) + "\n")
        f.flush()


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from an interrupted run
    return out


def save_tensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """Save a dict of torch tensors or numpy arrays as safetensors, atomically."""
    import torch
    from safetensors.torch import save_file

    clean, seen = {}, set()
    for k, v in tensors.items():
        t = (torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v).detach().cpu().contiguous()
        # safetensors stores each name's own bytes: a tensor held under two names (a capture's resid_pre L and
        # resid_post L-1) is written twice, from a copy
        clean[k] = t.clone() if t.untyped_storage().data_ptr() in seen else t
        seen.add(t.untyped_storage().data_ptr())
    return atomic_write(path, lambda p: save_file(clean, str(p), metadata=metadata))


def load_tensors(path: str | Path, what: str = "tensor file") -> dict[str, Any]:
    """Load a safetensors file as torch tensors; a missing or corrupt file is a :class:`UserError`."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises several types on corrupt headers
        raise UserError(f"{what} is corrupt or not safetensors: {path} ({type(e).__name__})") from None


def prepare_out_dir(path: str | Path, force: bool, marker: str) -> Path:
    """Make ``path`` ready for new results.

    If it already holds ``marker`` (the file that says results are there), refuse unless ``force``.
    With ``force`` nothing is deleted up front: each file is replaced atomically as the new run writes it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"output path exists and is not a directory: {path}")
    if (path / marker).exists() and not force:
        raise UserError(f"{path} already holds results ({marker}); pass --force to overwrite")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def staging_dir(final: str | Path) -> Iterator[Path]:
    """A temporary sibling folder that replaces ``final`` only if the block finishes.

    Used for outputs that are a whole folder (a corpus, a saved model): the old folder stays intact until
    the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the finished folder gets the usual mode
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
