"""Tests for the change of unfolding (Meier et al., arXiv:2602.03744)."""

import numpy as np
import pytest

from curiss.linalg import row_basis, row_pixels, unfold_images


@pytest.mark.parametrize("seed", [0, 1])
def test_unfold_against_cube(seed):
    rng = np.random.default_rng(seed)
    n_e, n_y, n_x = 9, 5, 7
    cube = rng.standard_normal((n_e, n_y, n_x))
    imaged = np.array([6, 1, 3])
    F = unfold_images(cube[imaged])
    assert F.shape == (n_y, imaged.size * n_x)
    for j, e in enumerate(imaged):
        np.testing.assert_array_equal(F[:, j * n_x : (j + 1) * n_x], cube[e])
    # each row of F is spatial row y at the imaged energies
    for y in range(n_y):
        np.testing.assert_array_equal(F[y], cube[imaged, y, :].ravel())


def test_row_pixels_against_reshape():
    n_e, n_y, n_x = 4, 6, 5
    D = np.arange(n_e * n_y * n_x, dtype=float).reshape(n_e, n_y * n_x)
    cube = D.reshape(n_e, n_y, n_x)
    rows = [4, 0, 2]
    pix = row_pixels(rows, n_x)
    assert pix.shape == (len(rows) * n_x,)
    np.testing.assert_array_equal(D[:, pix], cube[:, rows, :].reshape(n_e, -1))
    np.testing.assert_array_equal(pix[:n_x], 4 * n_x + np.arange(n_x))
    with pytest.raises(ValueError, match="repeated"):
        row_pixels([1, 1], n_x)
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        row_pixels([6], n_x, n_y=n_y)


@pytest.mark.parametrize("seed", [0, 1])
def test_row_basis_orthonormal_and_spans_F(seed):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((3, 12, 8))
    V = row_basis(images, 5)
    assert V.shape == (12, 5)
    np.testing.assert_allclose(V.T @ V, np.eye(5), atol=1e-12)
    U = np.linalg.svd(unfold_images(images), full_matrices=False)[0][:, :5]
    np.testing.assert_allclose(np.abs(U.T @ V), np.eye(5), atol=1e-8)


def test_row_basis_completed_when_rank_deficient():
    rng = np.random.default_rng(3)
    u = rng.standard_normal(10)
    images = np.stack([np.outer(u, rng.standard_normal(4)) for _ in range(2)])  # rank(F) = 1
    V = row_basis(images, 4)
    assert V.shape == (10, 4)
    np.testing.assert_allclose(V.T @ V, np.eye(4), atol=1e-12)
    assert abs(V[:, 0] @ u) == pytest.approx(np.linalg.norm(u))
    V0 = row_basis(np.zeros((2, 6, 3)), 3)
    np.testing.assert_allclose(V0.T @ V0, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="k must be <= 10"):
        row_basis(images, 11)


# --- row_basis through the Gram matrix (with the SVD as fallback) ---------------------------------

def _svd_basis(images, k):
    """Reference: the top-k left singular vectors of F from a full SVD."""
    return np.linalg.svd(unfold_images(images).astype(float), full_matrices=False)[0][:, :k]


def _subspace_sine(A, B):
    """Sine of the largest principal angle between the column spaces of A and B (orthonormal)."""
    return float(np.linalg.norm(B - A @ (A.T @ B), 2))


def _low_rank_images(rng, s, n_y, n_x, rank, noise=0.0):
    images = np.einsum("yr,rsx->syx", rng.standard_normal((n_y, rank)), rng.standard_normal((rank, s, n_x)))
    return images + noise * rng.standard_normal(images.shape)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(3, 40, 16), (1, 60, 5), (4, 25, 30)])
def test_row_basis_matches_svd_subspace(seed, shape):
    rng = np.random.default_rng(seed)
    s, n_y, n_x = shape
    images = _low_rank_images(rng, s, n_y, n_x, rank=4, noise=1e-2)
    before = images.copy()
    full = min(n_y, s * n_x)  # rank of F (noise): above it the columns are a completion, not SVD's
    for k in sorted({min(k, full) for k in (1, 3, 4, 6, n_y // 2, full)}):
        V = row_basis(images, k)
        assert V.shape == (n_y, k) and V.dtype == np.float64
        np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-12)
        assert _subspace_sine(_svd_basis(images, k), V) < 1e-8
    np.testing.assert_array_equal(images, before)  # input not mutated


def test_row_basis_gram_route_taken_and_ordered():
    """A well-separated spectrum goes through the Gram matrix; vectors match the SVD's one by one."""
    from curiss.linalg import _unfold

    rng = np.random.default_rng(5)
    images = _low_rank_images(rng, 3, 50, 20, rank=5, noise=1e-3)
    F = unfold_images(images)
    assert _unfold._gram_basis(F, 5) is not None
    V, U = row_basis(images, 5), _svd_basis(images, 5)
    np.testing.assert_allclose(np.abs(U.T @ V), np.eye(5), atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_row_basis_rank_deficient_falls_back_to_svd(seed):
    from curiss.linalg import _unfold

    rng = np.random.default_rng(seed)
    images = _low_rank_images(rng, 2, 30, 12, rank=3)  # rank(F) = 3 exactly
    F = unfold_images(images)
    assert _unfold._gram_basis(F, 5) is None  # lambda_4, lambda_5 are round-off: not resolved
    V = row_basis(images, 5)
    np.testing.assert_allclose(V.T @ V, np.eye(5), atol=1e-12)
    # the first 3 columns span the range of F, the other 2 are orthogonal to it
    U3 = _svd_basis(images, 3)
    assert _subspace_sine(U3, V[:, :3]) < 1e-10
    assert np.abs(U3.T @ V[:, 3:]).max() < 1e-10
    # a numerically tiny but resolvable direction (s_4 / s_1 ~ 1e-9) also goes through the SVD
    tiny = images + 1e-9 * np.einsum("y,sx->syx", rng.standard_normal(30), rng.standard_normal((2, 12)))
    assert _unfold._gram_basis(unfold_images(tiny), 4) is None
    assert _subspace_sine(_svd_basis(tiny, 4), row_basis(tiny, 4)) < 1e-8


@pytest.mark.parametrize("scale", [2.0**600, 2.0**-600, 1e150, 1e-150])
def test_row_basis_huge_and_tiny_scale(scale):
    rng = np.random.default_rng(7)
    images = _low_rank_images(rng, 3, 24, 10, rank=3, noise=1e-2)
    V1 = row_basis(images, 4)
    Vs = row_basis(images * scale, 4)
    assert np.all(np.isfinite(Vs))
    np.testing.assert_allclose(Vs.T @ Vs, np.eye(4), atol=1e-12)
    assert _subspace_sine(_svd_basis(images, 4), Vs) < 1e-8
    if np.log2(scale).is_integer():  # power-of-two scaling is exact on the Gram route
        np.testing.assert_array_equal(np.abs(V1), np.abs(Vs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arp_choices_same_as_with_svd_basis(seed):
    """ARP depends on the basis only through its span: the Gram basis gives the SVD basis' rows."""
    from curiss.linalg import arp

    rng = np.random.default_rng(seed)
    images = _low_rank_images(rng, 3, 64, 16, rank=4, noise=1e-2)
    for k in (3, 8, 20):
        V, U = row_basis(images, k), _svd_basis(images, k)
        np.testing.assert_allclose((V**2).sum(1), (U**2).sum(1), atol=1e-9)  # the row weights
        for draw_seed in range(3):
            pre = [int(y) for y in rng.choice(64, 2, replace=False)]
            np.testing.assert_array_equal(arp(V, k, preselected=pre, rng=draw_seed),
                                          arp(U, k, preselected=pre, rng=draw_seed))
