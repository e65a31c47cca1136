"""The ringing gate on curves whose answer is known: noise reads "no ringing" (while the ungated count can
read some), a planted helix reads the sign changes, ripples and turns that follow from its construction, a
ramp reads one sign change, the count window is applied to model and control alike, and bad input is one
line."""

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.probe import ringing as R

N = 100


def embed(B, d=64, noise=0.0, seed=0):
    """``B`` rotated into d dimensions by a seeded orthonormal map, plus optional noise."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(d, B.shape[1])))[0]
    return B @ Q.T + noise * rng.normal(size=(len(B), d))


def helix(f, n=N):
    i = np.arange(n)
    return np.column_stack([np.cos(2 * np.pi * f * i / n), np.sin(2 * np.pi * f * i / n), (i - i.mean()) / n])


def expected_sign_changes(f, n, window_len):
    """The lag profile of f turns over n counts is ~cos(2 pi f k / n); its zeros lie at k = (2m + 1) n / (4f).
    Count those inside the lags the gate reads (0 .. window_len - MIN_PAIRS)."""
    last_lag = window_len - R.MIN_PAIRS
    return sum(1 for m in range(4 * f) if (2 * m + 1) * n / (4 * f) < last_lag)


@pytest.mark.parametrize("d", [3, 64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_reads_no_ringing(d, seed):
    C = np.random.default_rng(seed).normal(size=(80, d))
    g = R.gated_ringing(C)
    assert not g["rings"]
    assert not g["gate_open"] or g["sign_changes"] == 0
    assert g["sign_changes"] == 0 and g["ripples"] == 0 and g["turns"] is None
    assert "not smooth" in g["reason"] and g["smoothness"] < R.SMOOTH_MIN


def test_the_ungated_count_is_fooled_by_noise():
    """Without the gate, noise centroids read as ringing: what the gate is for."""
    raw = [R.gated_ringing(np.random.default_rng(s).normal(size=(80, 64)))["ungated_sign_changes"]
           for s in range(3)]
    assert max(raw) >= 2


@pytest.mark.parametrize("f", [1, 2, 3])
@pytest.mark.parametrize("d,noise", [(3, 0.0), (64, 0.01)])
def test_planted_helix_reads_its_turns(f, d, noise):
    C = helix(f) if d == 3 else embed(helix(f), d, noise, seed=f)
    g = R.gated_ringing(C)
    assert g["gate_open"] and g["reason"] is None
    assert g["sign_changes"] == expected_sign_changes(f, N, N) == 2 * f
    # turning points of cos(2 pi f k / n) at k = m n / (2f), m = 1 .. 2f - 1, each followed by a full swing
    assert g["ripples"] == 2 * f - 1
    # the angle sweeps 2 pi f (n - 1) / n from the first centroid to the last; the ramp tilts the PC plane a little
    assert abs(g["turns"] - f * (N - 1) / N) < 0.1
    assert g["rings"]


@pytest.mark.parametrize("turns,changes", [(0.5, 1), (0.7, 1), (0.8, 2), (0.9, 2)])
def test_an_arc_past_three_quarters_of_a_turn_changes_sign_twice_with_one_ripple(turns, changes):
    """What two sign changes can mean: the lag profile of an arc of ``turns`` is ~cos(2 pi turns k / n), which
    comes back above zero once the arc passes three quarters of a turn. So a single loop meets ">= 2 sign
    changes" with one ripple, where ripples (2f - 1 for f turns) tell a loop from a curve that rings."""
    i = np.arange(N)
    arc = np.column_stack([np.cos(2 * np.pi * turns * i / N), np.sin(2 * np.pi * turns * i / N)])
    g = R.gated_ringing(embed(arc, 32, noise=0.01))
    assert g["gate_open"] and g["sign_changes"] == changes and g["ripples"] == 1
    assert g["rings"] == (changes >= 2)


def test_the_count_window_is_applied():
    """Half of a two-turn helix is one turn: two sign changes, not four."""
    g = R.gated_ringing(helix(2), np.arange(N), window=(0, N // 2 - 1))
    assert g["window"] == [0.0, N // 2 - 1] and g["n_values"] == N // 2
    assert g["sign_changes"] == expected_sign_changes(1, N // 2, N // 2) == 2


def test_ramp_reads_one_sign_change_and_no_ripples():
    ramp = (np.arange(40) - 19.5)[:, None]
    for C in (ramp, embed(ramp, 32, noise=0.01)):
        g = R.gated_ringing(C)
        assert g["gate_open"] and g["sign_changes"] == 1 and g["ripples"] == 0 and not g["rings"]


def test_compare_uses_one_window_for_model_and_control():
    noise = np.random.default_rng(5).normal(size=(60, 64))
    out = R.compare(embed(helix(2)), np.arange(N), noise, np.arange(60))
    assert out["window"] == [0.0, 59.0] == out["model"]["window"] == out["control"]["window"]
    assert out["model_rings_control_not"]
    assert not R.compare(noise, np.arange(60), noise[::-1].copy(), np.arange(60))["model_rings_control_not"]
    with pytest.raises(UserError):
        R.compare(embed(helix(1)), np.arange(N), noise, np.arange(60) * 2)  # same window, other counts


def test_a_failed_probe_closes_the_gate():
    g = R.gated_ringing(helix(2), probe_r2=0.1)
    assert not g["gate_open"] and "probe" in g["reason"] and g["sign_changes"] == 0


@pytest.mark.parametrize("C,kw", [
    (np.ones((2, 4)), {}),
    (np.array([[0.0, 1.0], [np.nan, 1.0], [1.0, 0.0], [2.0, 0.0]]), {}),
    (np.ones(5), {}),
    (np.eye(5), {"values": np.arange(4)}),
    (np.eye(5), {"values": np.array([0, 2, 1, 3, 4])}),
    (np.eye(5), {"window": (0, 1)}),
    (np.eye(5), {"dead_zone": 0.0}),
])
def test_bad_input_is_one_line(C, kw):
    with pytest.raises(UserError) as e:
        R.gated_ringing(C, **kw)
    assert "\n" not in str(e.value)
