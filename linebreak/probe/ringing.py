"""Ringing numbers that noise cannot fake: the sign changes, lobes and turns of a centroid curve, behind a gate.

:func:`linebreak.probe.manifold.ringing` counts every sign flip of the similarity-by-lag profile. On noisy
centroids that count lies (issue 19: 17-48 sign changes on one run's noisy centroids, 51-57 in a random-init
head space, and 2-5 "turns" of the top-2-PC angle). :func:`gated_ringing` reads the same numbers only where
they can mean something:

* **smoothness**: consecutive centroids must be alike, the mean lag-1 cosine (of the centred centroids, as
  :func:`manifold.cosine_matrix` centres them) at least ``min_smooth``; optionally a working count probe
  (held-out R^2 at least ``min_probe_r2``). Independent noise has a lag-1 cosine near 0 and is refused.
* **a dead zone**: a sign change counts only when the profile crosses from >= +``dead_zone`` to
  <= -``dead_zone`` (or back); wiggles around zero count nothing (``manifold.ringing`` with ``tol``).
* **ripples**: the lobes of the profile whether or not they cross zero (turning points it swings away from
  by at least twice the dead zone). A centred low-pass of a narrow peak ripples below zero (docs/toys.md),
  so it can ring without a second sign change.
* **one count window**: only centroids whose count lies in ``window`` are used, and :func:`compare` reads the
  model and its control in the same window, so a longer axis cannot buy the model extra lobes.

A closed gate reads "no ringing" (0 sign changes, 0 lobes, no turns) and says why. The gate cannot tell a
smooth curve that rings from any other smooth curve that rings: a random walk is smooth and its PCs are
Fourier modes, so it rings too. That is what the random-init control in the same window is for.
"""

from __future__ import annotations

import numpy as np

from linebreak.io import UserError
from linebreak.probe import manifold
from linebreak.rules.probe import RINGING_DEAD_ZONE as DEAD_ZONE
from linebreak.rules.probe import RINGING_MIN_PAIRS as MIN_PAIRS
from linebreak.rules.probe import RINGING_PROBE_R2_MIN as PROBE_R2_MIN
from linebreak.rules.probe import RINGING_SMOOTH_MIN as SMOOTH_MIN  # the gate's thresholds, with their reasons


def _window(C, values, window) -> tuple[np.ndarray, np.ndarray]:
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2:
        raise UserError(f"centroids must be a 2-D array [values, dims], got shape {C.shape}")
    values = np.arange(len(C)) if values is None else np.asarray(values)
    if values.shape != (len(C),):
        raise UserError(f"{len(values)} count values for {len(C)} centroids")
    if not (np.isfinite(C).all() and np.isfinite(values.astype(float)).all()):
        raise UserError("centroids or count values contain NaN or infinity; drop those counts first")
    if np.any(np.diff(values) <= 0):
        raise UserError("count values must increase strictly (one centroid per count, in order)")
    if window is not None:
        lo, hi = window
        keep = (values >= lo) & (values <= hi)
        C, values = C[keep], values[keep]
    if len(C) < 3:
        raise UserError(f"ringing needs at least 3 centroids in the count window, got {len(C)}")
    return C, values


def ripples(profile: np.ndarray, swing: float) -> int:
    """Turning points of a profile after lag 0 that it swings away from by at least ``swing`` (a hysteresis
    count of its lobes, whether or not they cross zero: a centred low-pass ripples below zero). A monotone
    profile (a ramp) has 0, ``cos(2 pi f k / n)`` over k = 0 .. n-3 has 2f - 1."""
    p = np.asarray(profile, dtype=np.float64)
    count, direction, extreme = 0, 0, p[0] if len(p) else 0.0
    for v in p[1:]:
        if direction == 0:  # not moved far enough from lag 0 yet
            if abs(v - p[0]) >= swing:
                direction, extreme = (1 if v > p[0] else -1), v
        elif direction * (v - extreme) > 0:  # still going the same way: the extreme moves on
            extreme = v
        elif direction * (extreme - v) >= swing:  # came back far enough: the extreme was a turning point
            count, direction, extreme = count + 1, -direction, v
    return int(count)


def turns(C: np.ndarray) -> float:
    """How many times the curve winds round its centre in its top-2-PC plane: the unwrapped angle swept from
    the first centroid to the last, over 2 pi (a circle traversed f times: f; a line through its centre: 0.5)."""
    xy = manifold.pca_spectrum(C, 2)["coords"]
    if xy.shape[1] < 2:
        return 0.0
    ang = np.unwrap(np.arctan2(xy[:, 1], xy[:, 0]))
    return float(abs(ang[-1] - ang[0]) / (2 * np.pi))


def gated_ringing(C, values=None, window: tuple[float, float] | None = None, min_smooth: float = SMOOTH_MIN,
                  dead_zone: float = DEAD_ZONE, min_pairs: int = MIN_PAIRS, probe_r2: float | None = None,
                  min_probe_r2: float = PROBE_R2_MIN) -> dict:
    """Gated ringing numbers of centroids ``C [V, d]`` (one row per count ``values``, increasing).

    Returns ``gate_open``, ``reason`` (why closed, else None), ``smoothness`` (mean lag-1 cosine),
    ``sign_changes`` and ``lobes`` (through the dead zone; 0 when the gate is closed), ``ripples`` (turning
    points of the profile that swing by at least twice the dead zone, :func:`ripples`), ``turns`` (top-2-PC
    angle, None when closed), ``rings`` (open and at least 2 sign changes: positive, negative, positive again),
    ``ungated_sign_changes`` (``manifold.ringing`` as the probe stage reports it), the ``window`` actually
    used and the ``profile`` (mean cosine by lag)."""
    if not (0 < dead_zone < 1 and -1 <= min_smooth <= 1 and int(min_pairs) == min_pairs >= 1):
        raise UserError(f"gate settings out of range: dead_zone={dead_zone}, min_smooth={min_smooth}, "
                        f"min_pairs={min_pairs}")
    C, values = _window(C, values, window)
    cos = manifold.cosine_matrix(C)
    smooth = float(manifold.lag_profile(cos)[1])
    reasons = []
    if smooth < min_smooth:
        reasons.append(f"not smooth: lag-1 cosine {smooth:.2f} < {min_smooth}")
    if probe_r2 is not None and not probe_r2 >= min_probe_r2:
        reasons.append(f"no working count probe: R^2 {probe_r2:.2f} < {min_probe_r2}")
    gated = manifold.ringing(cos, tol=dead_zone, min_pairs=int(min_pairs))
    s = np.sign(np.where(np.abs(gated["profile"]) >= dead_zone, gated["profile"], 0.0))
    is_open = not reasons
    changes = gated["sign_changes"] if is_open else 0
    return {"gate_open": is_open, "reason": "; ".join(reasons) or None, "smoothness": smooth,
            "sign_changes": int(changes), "lobes": int(changes + 1 if is_open and s.any() else 0),
            "ripples": ripples(gated["profile"], 2 * dead_zone) if is_open else 0,
            "turns": turns(C) if is_open else None, "rings": bool(is_open and changes >= 2),
            "ungated_sign_changes": int(manifold.ringing(cos)["sign_changes"]),
            "window": [float(values[0]), float(values[-1])], "n_values": int(len(C)),
            "profile": gated["profile"]}


def compare(C_model, values_model, C_control, values_control, window: tuple[float, float] | None = None,
            **gate) -> dict:
    """The model and its control (e.g. the random-init model) read by the same gate in the same count window
    (default: the counts both cover). ``model_rings_control_not`` is the claim a ringing finding may make."""
    vm, vc = np.asarray(values_model), np.asarray(values_control)
    if window is None:
        if len(vm) == 0 or len(vc) == 0:
            raise UserError("the model and the control each need count values")
        window = (max(vm.min(), vc.min()), min(vm.max(), vc.max()))
    model = gated_ringing(C_model, vm, window, **gate)
    control = gated_ringing(C_control, vc, window, **gate)
    if model["window"] != control["window"]:
        raise UserError(f"model and control cover different counts in the window {window}: "
                        f"{model['window']} against {control['window']}")
    return {"window": model["window"], "model": model, "control": control,
            "model_rings_control_not": bool(model["rings"] and not control["rings"])}
