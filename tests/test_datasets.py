"""Tests of curiss.datasets: synthetic phantoms with a known low-rank truth."""

from __future__ import annotations

import numpy as np
import pytest

from curiss.datasets import BACKGROUND_LABEL, Phantom, make_phantom

SEEDS = [0, 1, 7, 2024]


def _rel_singular_values(phantom: Phantom) -> np.ndarray:
    s = np.linalg.svd(phantom.truth.reshape(phantom.n_energies, -1), compute_uv=False)
    return s / s[0]


def test_shapes_and_fields():
    ph = make_phantom(25, (12, 9), 2, seed=0)
    assert isinstance(ph, Phantom)
    assert ph.energies.shape == (25,)
    assert ph.cube.shape == ph.truth.shape == (25, 12, 9)
    assert ph.spectra.shape == (25, 2)
    assert ph.thickness.shape == (2, 12, 9)
    assert ph.labels.shape == (12, 9)
    assert np.issubdtype(ph.labels.dtype, np.integer)
    assert ph.shape == (12, 9) and ph.n_energies == 25 and ph.n_materials == 2
    assert ph.dictionary is ph.spectra
    assert ph.D.shape == (25, 12 * 9)
    np.testing.assert_array_equal(ph.D[:, 3 * 9 + 4], ph.cube[:, 3, 4])  # p = y * n_x + x
    assert ph.energies[0] == 700.0 and ph.energies[-1] == 730.0
    assert np.all(np.diff(ph.energies) > 0)


def test_defaults():
    ph = make_phantom(seed=3)
    assert ph.cube.shape == (60, 32, 32)
    assert ph.n_materials == 3
    assert ph.noise == 0.0
    assert ph.cube is ph.truth


@pytest.mark.parametrize("seed", SEEDS)
def test_reproducible_from_seed(seed):
    a = make_phantom(30, (16, 16), 3, seed=seed)
    b = make_phantom(30, (16, 16), 3, seed=seed)
    for name in ("energies", "cube", "spectra", "thickness", "labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = make_phantom(30, (16, 16), 3, seed=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.cube, c.cube)


def test_different_across_seeds():
    cubes = [make_phantom(30, (16, 16), 3, seed=s).cube for s in SEEDS]
    for i in range(len(cubes)):
        for j in range(i + 1, len(cubes)):
            assert not np.allclose(cubes[i], cubes[j])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_materials", [1, 2, 3, 4])
def test_noise_free_cube_has_rank_n_materials(seed, n_materials):
    ph = make_phantom(40, (20, 24), n_materials, seed=seed)
    s = _rel_singular_values(ph)
    # rank <= n_materials: everything past the n-th singular value is round-off ...
    assert np.all(s[n_materials:] < 1e-12)
    # ... and every material contributes (rank == n_materials)
    assert s[n_materials - 1] > 1e-6
    np.testing.assert_allclose(ph.truth, np.einsum("em,myx->eyx", ph.spectra, ph.thickness),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
def test_peak_od_is_realistic(seed):
    ph = make_phantom(30, (16, 16), 3, seed=seed)
    assert ph.truth.max() == pytest.approx(1.5)
    assert ph.truth.min() >= 0.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_materials", [2, 3, 5])
def test_spectra_distinct_but_overlapping(seed, n_materials):
    ph = make_phantom(60, (8, 8), n_materials, seed=seed)
    S = ph.spectra
    assert np.all(S > 0)
    assert np.all(S.max(axis=0) <= 1.2 + 1e-12) and np.all(S.max(axis=0) >= 0.5)
    # an absorption edge: post-edge absorption well above the pre-edge
    assert np.all(S[-5:].mean(axis=0) > 2 * S[:3].mean(axis=0))
    # linearly independent and not near-duplicates
    s = np.linalg.svd(S / np.linalg.norm(S, axis=0), compute_uv=False)
    assert s[-1] > 1e-3
    for i in range(n_materials):
        for j in range(i + 1, n_materials):
            diff = np.linalg.norm(S[:, i] - S[:, j]) / np.linalg.norm(S[:, i])
            assert diff > 0.05
            # overlapping: same edge, white lines within a few eV (chemical shift)
            shift = abs(ph.energies[np.argmax(S[:, i])] - ph.energies[np.argmax(S[:, j])])
            assert shift < 0.25 * (ph.energies[-1] - ph.energies[0])
            assert np.corrcoef(S[:, i], S[:, j])[0, 1] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_thickness_background_and_labels(seed):
    ph = make_phantom(20, (32, 32), 3, seed=seed)
    t = ph.thickness
    assert np.all(t >= 0)
    total = t.sum(axis=0)
    empty = total == 0
    assert 0.1 <= empty.mean() <= 0.9  # a real background, and a real sample
    assert np.all(t.reshape(3, -1).max(axis=1) > 0)  # every material present
    # some pixels hold two materials (overlapping particles)
    assert np.any((t > 0).sum(axis=0) >= 2)
    np.testing.assert_array_equal(ph.labels == BACKGROUND_LABEL, empty)
    np.testing.assert_array_equal(ph.labels[~empty], np.argmax(t, axis=0)[~empty])
    np.testing.assert_array_equal(ph.background, empty)
    # the background is empty in every energy image
    assert np.all(ph.truth[:, empty] == 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_noise_is_added_and_truth_kept(seed):
    clean = make_phantom(30, (16, 16), 3, seed=seed)
    noisy = make_phantom(30, (16, 16), 3, seed=seed, noise=0.05)
    np.testing.assert_array_equal(noisy.truth, clean.truth)  # the sample does not change
    resid = noisy.cube - noisy.truth
    assert noisy.noise == 0.05
    assert resid.std() == pytest.approx(0.05, rel=0.05)
    assert abs(resid.mean()) < 0.005
    # noisy stack is full rank
    s = np.linalg.svd(noisy.cube.reshape(30, -1), compute_uv=False)
    assert s[3] / s[0] > 1e-3


def test_energy_range_and_small_grids():
    ph = make_phantom(2, (4, 4), 2, seed=0, energy_range=(7100.0, 7200.0))
    np.testing.assert_array_equal(ph.energies, [7100.0, 7200.0])
    ph = make_phantom(12, (5, 7), 1, seed=1, energy_range=(280, 300))
    assert ph.energies[0] == 280.0 and ph.energies[-1] == 300.0
    assert np.linalg.matrix_rank(ph.D) == 1


def test_arrays_are_read_only():
    ph = make_phantom(10, (6, 6), 2, seed=0, noise=0.01)
    for arr in (ph.energies, ph.cube, ph.truth, ph.spectra, ph.thickness, ph.labels):
        with pytest.raises(ValueError):
            arr[(0,) * arr.ndim] = 1
    with pytest.raises(AttributeError):
        ph.cube = None  # frozen dataclass


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_energies=1), ValueError, "n_energies"),
        (dict(n_energies=10.0), TypeError, "n_energies"),
        (dict(n_materials=0), ValueError, "n_materials"),
        (dict(n_energies=3, n_materials=4), ValueError, "n_materials"),
        (dict(shape=(3, 10)), ValueError, "n_y"),
        (dict(shape=(10,)), ValueError, "shape"),
        (dict(shape=10), TypeError, "shape"),
        (dict(energy_range=(730.0, 700.0)), ValueError, "energy_range"),
        (dict(energy_range=(700.0, np.inf)), ValueError, "energy_range"),
        (dict(energy_range="ab"), TypeError, "energy_range"),
        (dict(noise=-0.1), ValueError, "noise"),
        (dict(noise="0.1"), TypeError, "noise"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(seed=True), TypeError, "seed must be None, an int"),  # was drawn as seed 1
        (dict(seed=-1), ValueError, "seed must be a non-negative int"),  # numpy's message
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_phantom(**kwargs)
