"""The captured activations of one run, in memory and on disk (safetensors only: nothing is ever unpickled).

A folder holds ``activations.safetensors`` (TL hook name -> tensor ``[N, ...]``, patterns
``[pattern_docs, head, q, k]``), ``labels.safetensors`` (label name -> array ``[N]``, one row per kept token)
and ``capture.json`` (settings, shapes, label ranges; written last, so it marks a complete folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linebreak.hooks.points import hook_name
from linebreak.io import UserError, load_json, load_tensors, save_json, save_tensors

MARKER = "capture.json"
# /2: ``ln1`` is ``ln1.hook_out`` (under /1 the same tensor was stored as ``ln1.hook_normalized``, a name that
# now holds TransformerLens' pre-weight tensor) and ``hook_k`` has one key per key/value head.
FORMAT = "linebreak-activations/2"


@dataclass
class Activations:
    acts: dict  # TL hook name -> torch.Tensor
    labels: dict  # label name -> np.ndarray [N]
    meta: dict

    def get(self, site: str, layer: int):
        name = hook_name(site, layer)
        if name not in self.acts:
            have = sorted({k for k in self.acts})
            raise UserError(f"no activations for {name}; captured: {', '.join(have[:6])}"
                            f"{' ...' if len(have) > 6 else ''}")
        return self.acts[name]

    def layers(self, site: str) -> list[int]:
        return [L for L in range(self.meta["n_layers"]) if hook_name(site, L) in self.acts]


def save_activations(a: Activations, out_dir: str | Path) -> Path:
    """Write ``activations.safetensors``, ``labels.safetensors`` and ``capture.json`` (last: the marker)."""
    out_dir = Path(out_dir)
    save_tensors(out_dir / "activations.safetensors", a.acts)
    save_tensors(out_dir / "labels.safetensors", {k: np.ascontiguousarray(v) for k, v in a.labels.items()})
    desc = {k: {"dtype": str(v.dtype), "min": v.min().item() if len(v) else None,
                "max": v.max().item() if len(v) else None} for k, v in a.labels.items()}
    shapes = {k: list(v.shape) for k, v in a.acts.items()}
    save_json(out_dir / MARKER, a.meta | {"labels": desc, "shapes": shapes})
    return out_dir


def load_activations(path: str | Path) -> Activations:
    """Load a folder written by :func:`save_activations` (safetensors only; nothing unpickled)."""
    path = Path(path)
    meta = load_json(path / MARKER, "capture settings")
    found = meta.get("format") if isinstance(meta, dict) else None
    if isinstance(found, str) and found.startswith("linebreak-activations/") and found != FORMAT:
        raise UserError(f"{path}: activations of format {found}, written by an older linebreak (this one reads "
                        f"{FORMAT}: ln1 is now ln1.hook_out and hook_k one key per key/value head); rerun capture")
    if found != FORMAT:
        raise UserError(f"not a linebreak activations folder ({MARKER} format): {path}")
    acts = load_tensors(path / "activations.safetensors", "activations")
    labels = {k: v.numpy() for k, v in load_tensors(path / "labels.safetensors", "labels").items()}
    n = {len(v) for v in labels.values()}
    if n != {meta["n_rows"]}:
        raise UserError(f"labels do not match the activations ({n} rows vs {meta['n_rows']}): {path}")
    meta.pop("labels", None)
    meta.pop("shapes", None)
    return Activations(acts, labels, meta)
