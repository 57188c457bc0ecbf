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
