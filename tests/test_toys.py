"""The paper's toy models: the truncated circulant is a Fourier low-pass (its top modes are Fourier modes,
its Gram matrix is the low-passed kernel, Fourier and PCA agree), a narrower kernel ripples more within the
same dimensions, and the sphere simulation is seeded and winds more with a smaller w or more dimensions."""

import numpy as np
import pytest

from linebreak.io import UserError
from linebreak.probe import manifold, toys

N = 100
WIDTHS = (20, 10, 5, 3, 2, 1)  # widest first


def test_top_two_modes_of_the_circulant_are_the_frequency_one_pair():
    E = toys.truncated_kernel(60, 3, 2, cyclic=True)["embedding"]
    U = E / np.linalg.norm(E, axis=0)
    i = np.arange(60)
    F = np.column_stack([np.cos(2 * np.pi * i / 60), np.sin(2 * np.pi * i / 60)])
    F /= np.linalg.norm(F, axis=0)
    share = np.linalg.norm(F.T @ U) ** 2 / 2  # how much of the two modes lies in span{cos 1, sin 1}
    assert share > 1 - 1e-9


@pytest.mark.parametrize("w,k", [(3, 6), (1, 10), (8, 4)])
def test_truncation_is_a_fourier_low_pass(w, k):
    E = toys.truncated_kernel(N, w, k, cyclic=True)["embedding"]
    G = E @ E.T
    low = toys.lowpass_row(N, w, k)
    assert np.abs(G - np.stack([np.roll(low, r) for r in range(N)])).max() < 1e-9


def test_fourier_and_pca_agree_for_the_circulant_not_for_the_line():
    cyc = toys.measure(toys.truncated_kernel(N, 3, 6, cyclic=True)["embedding"])
    assert abs(cyc["gap_6"]) < 1e-9 and sorted(cyc["key_frequencies"]) == [1, 2, 3]
    line = toys.measure(toys.truncated_kernel(N, 3, 6, cyclic=False)["embedding"])
    assert line["gap_6"] > cyc["gap_6"] + 0.01  # a line's count is not periodic: Fourier along it does worse


@pytest.mark.parametrize("cyclic", [True, False])
def test_a_narrower_kernel_ripples_more_in_the_same_dimensions(cyclic):
    gated = [toys.measure(toys.truncated_kernel(N, w, 6, cyclic)["embedding"])["gated"] for w in WIDTHS]
    assert all(g["gate_open"] for g in gated)
    rip = [g["ripples"] for g in gated]
    assert rip == sorted(rip) and rip[-1] > rip[0], rip
    if not cyclic:  # a line: one sign change (a bent ramp) when wide, a second positive lobe when narrow
        sc = [g["sign_changes"] for g in gated]
        assert sc == sorted(sc) and sc[0] == 1 and sc[-1] >= 2, sc


def test_the_sphere_simulation_is_seeded():
    a, b = toys.sphere_chain(60, 4, 3, steps=300, seed=7), toys.sphere_chain(60, 4, 3, steps=300, seed=7)
    assert np.array_equal(a["points"], b["points"])
    assert not np.allclose(a["points"], toys.sphere_chain(60, 4, 3, steps=300, seed=8)["points"])
    assert np.allclose(np.linalg.norm(a["points"], axis=1), 1.0)
    assert a["energy"][-1] < a["energy"][0]


def _sphere(d, w, seeds=(0, 1, 2)):
    runs = [toys.sphere_chain(N, d, w, seed=s)["points"] for s in seeds]
    gated = [toys.measure(X)["gated"] for X in runs]
    widths = [manifold.peak_width(manifold.cosine_matrix(X)) for X in runs]
    return sum(g["ripples"] for g in gated), widths, gated


def test_the_sphere_rings_more_with_a_smaller_w():
    rip_small, width_small, gated = _sphere(6, 2)
    rip_wide, width_wide, _ = _sphere(6, 8)
    assert all(g["gate_open"] for g in gated)
    assert rip_small >= rip_wide  # summed over three seeds: single minima differ from seed to seed
    assert max(width_small) < min(width_wide)  # and each seed's similarity peak is narrower


def test_the_sphere_rings_more_with_more_dimensions():
    rip_3, width_3, _ = _sphere(3, 2)
    rip_8, width_8, _ = _sphere(8, 2)
    assert rip_8 >= rip_3
    assert max(width_8) < min(width_3)


@pytest.mark.parametrize("call", [
    lambda: toys.kernel(2, 1.0),
    lambda: toys.kernel(10, 0.0),
    lambda: toys.truncated_kernel(10, 1.0, 10),
    lambda: toys.sphere_chain(20, 1, 2),
    lambda: toys.sphere_chain(20, 3, 19),
    lambda: toys.sphere_chain(20, 3, 2, steps=0),
    lambda: toys.measure(np.full((5, 3), np.nan)),
])
def test_bad_input_is_one_line(call):
    with pytest.raises(UserError) as e:
        call()
    assert "\n" not in str(e.value)
