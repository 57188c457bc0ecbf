"""Tests of curiss.analysis: SVD + k-means analysis, matching, variations, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from curiss.analysis import (
    SpectralAnalysis,
    adjusted_rand,
    completion_variation,
    match_spectra,
    raw_error,
    signal_error,
    spectra_error,
    spectral_analysis,
    spectral_variation,
)

SEEDS = [0, 1, 7]


def _materials(n_e: int, rng: np.random.Generator) -> np.ndarray:
    """Three distinct positive spectra (n_E, 3): an edge step plus a white line at random positions."""
    e = np.linspace(0.0, 1.0, n_e)
    spectra = []
    for j, centre in enumerate(rng.permutation([0.3, 0.5, 0.7])):
        step = 0.2 + (0.3 + 0.2 * j) / (1.0 + np.exp(-(e - centre + 0.05) / 0.02))
        peak = (0.5 + 0.3 * j) * np.exp(-0.5 * ((e - centre) / 0.03) ** 2)
        spectra.append(step + peak)
    return np.column_stack(spectra)


def _phantom(seed: int, n_e: int = 40, shape: tuple[int, int] = (24, 30), noise: float = 0.005):
    """Cube of three spatially separated materials (vertical bands), thickness varying slightly."""
    rng = np.random.default_rng(seed)
    n_y, n_x = shape
    spectra = _materials(n_e, rng)
    truth_labels = np.zeros(shape, dtype=int)
    truth_labels[:, n_x // 3 : 2 * n_x // 3] = 1
    truth_labels[:, 2 * n_x // 3 :] = 2
    thickness = 1.0 + 0.05 * rng.random(shape)
    cube = spectra[:, truth_labels] * thickness[None]
    cube = cube + noise * rng.standard_normal(cube.shape)
    return cube, truth_labels, spectra * thickness.mean()


# --------------------------------------------------------------------------- spectral_analysis


@pytest.mark.parametrize("seed", SEEDS)
def test_recovers_material_map_and_spectra(seed):
    cube, truth, spectra = _phantom(seed)
    res = spectral_analysis(cube, n_components=3, n_clusters=3, seed=seed)
    assert isinstance(res, SpectralAnalysis)
    assert res.labels.shape == truth.shape
    assert adjusted_rand(res.labels, truth) == 1.0
    assert spectra_error(spectra, res.cluster_spectra) < 0.02


@pytest.mark.parametrize("seed", SEEDS)
def test_shapes_order_and_svd(seed):
    cube, _, _ = _phantom(seed)
    n_e, n_y, n_x = cube.shape
    res = spectral_analysis(cube, n_components=4, n_clusters=5, seed=seed)
    assert res.eigenspectra.shape == (n_e, 4)
    assert res.eigenimages.shape == (4, n_y, n_x)
    assert res.singular_values.shape == (4,)
    assert res.cluster_spectra.shape == (n_e, 5)
    assert res.n_components == 4 and res.n_clusters == 5
    assert res.labels.min() == 0 and res.labels.max() == 4
    assert np.issubdtype(res.labels.dtype, np.integer)
    assert res.cluster_sizes.sum() == n_y * n_x
    # clusters sorted by mean intensity, ascending
    assert np.all(np.diff(res.cluster_spectra.mean(axis=0)) >= 0)
    # eigenspectra orthonormal; eigenimages reconstruct the rank-4 truncation
    np.testing.assert_allclose(res.eigenspectra.T @ res.eigenspectra, np.eye(4), atol=1e-10)
    d = cube.reshape(n_e, -1)
    u, s, vt = np.linalg.svd(d, full_matrices=False)
    np.testing.assert_allclose(res.singular_values, s[:4], rtol=1e-9)
    dk = (u[:, :4] * s[:4]) @ vt[:4]
    np.testing.assert_allclose(res.eigenspectra @ res.eigenimages.reshape(4, -1), dk, atol=1e-9)
    # cluster spectra are the cluster means of the cube
    for c in range(5):
        np.testing.assert_allclose(res.cluster_spectra[:, c], d[:, res.labels.ravel() == c].mean(1))


@pytest.mark.parametrize(
    "n_e, shape",
    [(10, (8, 9)),  # small: exact SVD
     (40, (30, 40)),  # n_E << n_pix: Gram matrix
     (300, (12, 12)),  # n_pix < n_E: exact SVD
     (300, (20, 20))],  # both large: randomized SVD
)
@pytest.mark.parametrize("seed", [0, 3])
def test_svd_paths_agree_with_lapack(n_e, shape, seed):
    rng = np.random.default_rng(seed)
    n_pix = shape[0] * shape[1]
    # rank-3 signal with well separated singular values plus small noise
    u0 = np.linalg.qr(rng.standard_normal((n_e, 3)))[0]
    v0 = np.linalg.qr(rng.standard_normal((n_pix, 3)))[0]
    d = (u0 * [100.0, 30.0, 10.0]) @ v0.T + 1e-3 * rng.standard_normal((n_e, n_pix))
    res = spectral_analysis(d.reshape(n_e, *shape), n_components=3, n_clusters=2, seed=seed)
    u, s, _ = np.linalg.svd(d, full_matrices=False)
    np.testing.assert_allclose(res.singular_values, s[:3], rtol=1e-6)
    np.testing.assert_allclose(np.abs(res.eigenspectra.T @ u[:, :3]), np.eye(3), atol=1e-6)
    # sign convention: largest-magnitude entry of each eigenspectrum is positive
    idx = np.argmax(np.abs(res.eigenspectra), axis=0)
    assert np.all(res.eigenspectra[idx, np.arange(3)] > 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_reproducible_with_seed_and_input_untouched(seed):
    cube, _, _ = _phantom(seed)
    before = cube.copy()
    a = spectral_analysis(cube, n_clusters=4, seed=seed)
    b = spectral_analysis(cube, n_clusters=4, seed=seed)
    c = spectral_analysis(cube, n_clusters=4, seed=np.random.default_rng(seed))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.cluster_spectra, b.cluster_spectra)
    assert c.labels.shape == a.labels.shape
    np.testing.assert_array_equal(cube, before)
    assert not a.labels.flags.writeable


@pytest.mark.parametrize("seed", SEEDS)
def test_mask_uses_measured_values(seed):
    cube, truth, _ = _phantom(seed)
    rng = np.random.default_rng(100 + seed)
    mask = rng.random(cube.shape) < 0.4
    measured = np.where(mask, cube + 0.3, np.nan)  # measured differs from the completion
    res = spectral_analysis(cube, n_clusters=3, seed=seed, mask=mask, measured=measured)
    mixed = np.where(mask, cube + 0.3, cube).reshape(cube.shape[0], -1)
    for c in range(3):
        np.testing.assert_allclose(res.cluster_spectra[:, c],
                                   mixed[:, res.labels.ravel() == c].mean(axis=1))
    plain = spectral_analysis(cube, n_clusters=3, seed=seed)
    # labels come from the completion, so they agree; spectra are shifted by 0.3 x measured share
    assert adjusted_rand(res.labels, plain.labels) == 1.0
    assert not np.allclose(res.cluster_spectra, plain.cluster_spectra)
    # mask omitted: NaN in measured marks unmeasured entries
    res2 = spectral_analysis(cube, n_clusters=3, seed=seed, measured=measured)
    np.testing.assert_allclose(res2.cluster_spectra, res.cluster_spectra)


def test_validation():
    cube, _, _ = _phantom(0, n_e=8, shape=(4, 5))
    bad = cube.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spectral_analysis(bad)
    with pytest.raises(ValueError, match="n_clusters"):
        spectral_analysis(cube, n_clusters=21)
    with pytest.raises(ValueError, match="n_components"):
        spectral_analysis(cube, n_components=0)
    with pytest.raises(ValueError, match="n_components"):
        spectral_analysis(cube, n_components=9)
    with pytest.raises(ValueError, match="3-D"):
        spectral_analysis(cube[0])
    with pytest.raises(ValueError, match="measured"):
        spectral_analysis(cube, mask=np.ones(cube.shape, bool))
    with pytest.raises(ValueError, match="mask has shape"):
        spectral_analysis(cube, mask=np.ones((8, 4, 4), bool), measured=cube)
    with pytest.raises(TypeError, match="seed"):
        spectral_analysis(cube, seed="x")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        spectral_analysis(cube, seed=-1)  # numpy's message did not name the argument
    with pytest.raises(TypeError, match="seed"):
        spectral_analysis(cube, seed=True)
    with pytest.raises(ValueError, match="distinct"):
        spectral_analysis(np.ones((5, 4, 4)), n_components=1, n_clusters=3, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k, n_clusters", [(1, 2), (3, 3)])
def test_a_uniform_cube_is_not_split_on_rounding_noise(seed, k, n_clusters):
    """One spectrum everywhere (a uniform film): k-means used to split it on 1e-16 noise."""
    with pytest.raises(ValueError, match="1 distinct pixel spectra"):
        spectral_analysis(np.full((20, 8, 6), 0.7), n_components=k, n_clusters=n_clusters, seed=seed)
    two = np.full((20, 8, 6), 0.7)
    two[:, :4] += np.linspace(0, 0.1, 20)[:, None, None]  # two spectra: two clusters are fine
    labels = spectral_analysis(two, n_components=k, n_clusters=2, seed=seed).labels
    assert len(np.unique(labels[:4])) == 1 and len(np.unique(labels[4:])) == 1
    assert labels[0, 0] != labels[-1, -1]


def test_single_cluster():
    cube, _, _ = _phantom(0, n_e=8, shape=(4, 5))
    res = spectral_analysis(cube, n_clusters=1)
    assert np.all(res.labels == 0)
    np.testing.assert_allclose(res.cluster_spectra[:, 0], cube.reshape(8, -1).mean(axis=1))


def test_fast_on_a_realistic_stack():
    rng = np.random.default_rng(0)
    n_e, n_y, n_x = 123, 150, 150
    d = rng.random((n_e, 3)) @ rng.random((3, n_y * n_x)) + 0.01 * rng.random((n_e, n_y * n_x))
    cube = d.reshape(n_e, n_y, n_x)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        spectral_analysis(cube, n_components=3, n_clusters=4, seed=0)
        best = min(best, time.perf_counter() - t0)
    # ~0.15-0.2 s on the 2-core dev machine; generous bound against regressions
    assert best < 1.5


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize("seed", SEEDS)
def test_match_spectra_recovers_shuffle(seed):
    rng = np.random.default_rng(seed)
    ref = rng.random((30, 6))
    p = rng.permutation(6)
    cand = ref[:, p] + 1e-3 * rng.standard_normal((30, 6))
    perm = match_spectra(ref, cand)
    assert sorted(perm.tolist()) == list(range(6))
    np.testing.assert_array_equal(p[perm], np.arange(6))
    np.testing.assert_allclose(cand[:, perm], ref, atol=1e-2)


def test_match_spectra_on_spectra_far_from_zero():
    """The cost |r|^2 + |c|^2 - 2 r.c cancelled on a common offset of 1e8: the swap was chosen
    (error 1.8e-9 instead of 0)."""
    t = np.linspace(0, 1, 50)
    ref = 1e8 + np.stack([t, t**2], axis=1)  # columns 0.3 apart in norm on a 7e8 norm
    perm = match_spectra(ref, ref[:, ::-1])
    np.testing.assert_array_equal(perm, [1, 0])


def test_match_spectra_rectangular_and_errors():
    rng = np.random.default_rng(0)
    ref = rng.random((10, 3))
    cand = np.column_stack([rng.random(10) + 5, ref[:, 2], ref[:, 0], ref[:, 1]])
    np.testing.assert_array_equal(match_spectra(ref, cand), [2, 3, 1])
    with pytest.raises(ValueError, match="fewer"):
        match_spectra(cand, ref)
    with pytest.raises(ValueError, match="energies"):
        match_spectra(ref, ref[:5])
    with pytest.raises(ValueError, match="NaN"):
        match_spectra(ref, np.full((10, 3), np.nan))


# --------------------------------------------------------------------------- variations and errors


@pytest.mark.parametrize("seed", SEEDS)
def test_completion_variation(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((5, 6, 7))
    assert completion_variation(a, a) == 0.0
    assert completion_variation(a, 2 * a) == pytest.approx(0.5)
    b = a + 0.1 * rng.standard_normal(a.shape)
    assert completion_variation(a, b) == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(b))
    with pytest.raises(ValueError, match="shape"):
        completion_variation(a, a[:4])


@pytest.mark.parametrize("seed", SEEDS)
def test_spectral_variation_permutation_invariant(seed):
    rng = np.random.default_rng(seed)
    s = rng.random((20, 4))
    p = rng.permutation(4)
    assert spectral_variation(s, s) == 0.0
    assert spectral_variation(s, s[:, p]) == pytest.approx(0.0, abs=1e-15)
    t = s + 0.05 * rng.standard_normal(s.shape)
    v = spectral_variation(s, t)
    assert v > 0
    assert spectral_variation(s[:, p], t) == pytest.approx(v)
    assert spectral_variation(s, t[:, p]) == pytest.approx(v)
    assert v == pytest.approx(np.linalg.norm(t - s) / np.linalg.norm(t))  # small noise: identity match


def test_spectral_variation_authors_options():
    rng = np.random.default_rng(0)
    s = 1.0 + rng.random((20, 3))
    scaled = s * np.array([2.0, 0.5, 3.0])  # same shapes, different intensity
    post = slice(15, 20)
    assert spectral_variation(s, scaled) > 0.1
    assert spectral_variation(s, scaled, normalize_post_edge=post) == pytest.approx(0.0, abs=1e-12)
    mask = np.zeros(20, bool)
    mask[15:] = True
    assert spectral_variation(s, scaled, normalize_post_edge=mask) == pytest.approx(0.0, abs=1e-12)
    # a background (smallest mean) that changes a lot is ignored with drop_background
    bg_prev = np.column_stack([0.01 * rng.random(20), s])
    bg_cur = np.column_stack([0.05 * rng.random(20), s])
    assert spectral_variation(bg_prev, bg_cur) > 0
    assert spectral_variation(bg_prev, bg_cur, drop_background=True) == 0.0
    with pytest.raises(ValueError, match="mask must have shape"):
        spectral_variation(s, s, normalize_post_edge=np.ones(5, bool))


def test_spectra_error():
    rng = np.random.default_rng(0)
    ref = rng.random((15, 4))
    assert spectra_error(ref, ref[:, [2, 0, 3, 1]]) == 0.0
    assert spectra_error(ref, 1.1 * ref[:, [3, 2, 1, 0]]) == pytest.approx(0.1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3])
def test_signal_error(seed, k):
    rng = np.random.default_rng(seed)
    d = rng.random((12, 50))
    u, s, vt = np.linalg.svd(d, full_matrices=False)
    dk = (u[:, :k] * s[:k]) @ vt[:k]
    assert signal_error(dk, d, k=k) < 1e-12
    assert signal_error(dk.reshape(12, 5, 10), d.reshape(12, 5, 10), k=k) < 1e-12
    expected = np.linalg.norm(d - dk) / np.linalg.norm(dk)
    assert signal_error(d, d, k=k) == pytest.approx(expected)
    assert expected > 0
    with pytest.raises(ValueError, match="k must be"):
        signal_error(d, d, k=13)


def test_raw_error_and_ari():
    rng = np.random.default_rng(0)
    d = rng.random((6, 4, 5))
    assert raw_error(d, d) == 0.0
    assert raw_error(1.2 * d, d) == pytest.approx(0.2)
    labels = rng.integers(0, 3, (4, 5))
    relabelled = np.array([2, 0, 1])[labels]
    assert adjusted_rand(labels, relabelled) == 1.0
    with pytest.raises(ValueError, match="shape"):
        adjusted_rand(labels, labels.ravel())


@pytest.mark.parametrize("bad, error, match", [
    ([13], ValueError, r"indices must lie in \[-5, 5\)"),
    ([-6, 0], ValueError, r"indices must lie in \[-5, 5\)"),
    ([], ValueError, "selects no energies"),
    ([1.5, 2.0], TypeError, "must be a slice, a bool mask"),
    ([[1, 2]], TypeError, "must be a slice, a bool mask"),
])
def test_spectral_variation_refuses_normalize_post_edge_off_the_grid(bad, error, match):
    """An index past the grid used to escape as numpy's IndexError."""
    s = 1.0 + np.random.default_rng(0).random((5, 2))
    with pytest.raises(error, match=match):
        spectral_variation(s, s, normalize_post_edge=bad)
    assert spectral_variation(s, 2 * s, normalize_post_edge=[-1, 3]) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("measure", ["signal_error", "raw_error"])
def test_quality_measures_refuse_stacks_of_another_shape(measure):
    """signal_error compared a (10, 8, 6) completion with a (10, 6, 8) stack (flattened to the
    same size); a cube against its own unfolded matrix is still accepted."""
    import curiss.analysis as an

    rng = np.random.default_rng(0)
    full = rng.random((10, 6, 8))
    fn = getattr(an, measure)
    with pytest.raises(ValueError, match=r"\(10, 8, 6\) and full \(10, 6, 8\) differ in shape"):
        fn(full.transpose(0, 2, 1), full)
    if measure == "signal_error":
        assert fn(full.reshape(10, -1), full) == pytest.approx(fn(full, full))


@pytest.mark.parametrize("call", ["raw_error", "signal_error", "spectra_error"])
@pytest.mark.parametrize("kind", ["complex", "bool", "text"])
def test_quality_measures_refuse_what_is_not_real_numbers(call, kind):
    """raw_error(d + 1j, d) was 0 (the imaginary part dropped with a warning), a bool cube was
    read as OD 0/1, text spectra were parsed; spectral_analysis already refused them."""
    rng = np.random.default_rng(1)
    d = rng.random((6, 4, 5)) if call != "spectra_error" else rng.random((6, 3))
    bad = {"complex": d + 1j, "bool": d > 0.5, "text": d.astype(str)}[kind]
    fn = {"raw_error": raw_error, "signal_error": signal_error, "spectra_error": spectra_error}[call]
    with pytest.raises(TypeError, match="must be a real numeric array, got dtype"):
        fn(bad, d)
    with pytest.raises(TypeError, match="must be a real numeric array, got dtype"):
        fn(d, bad)
    counts = np.rint(100 * d).astype(np.int64)  # integers are real numbers: accepted
    assert np.isfinite(fn(d, d)) and np.isfinite(fn(counts, 100 * d))
