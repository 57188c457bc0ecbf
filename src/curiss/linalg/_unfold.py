"""Change of unfolding for row selection (CURISS, Meier et al., arXiv:2602.03744).

A stack D (n_E, n_y * n_x) has pixel p = y * n_x + x.  The s_E measured images X_e (n_y, n_x) are put
side by side, F = [X_e1 | X_e2 | ...] (n_y, s_E * n_x), so each row of F is one spatial row y seen at
every imaged energy.  The top-k left singular vectors of F are the basis on which ARP (Cortinovis &
Kressner 2024) selects the k spatial rows to scan at the other energies; the D columns (pixels) of
those rows are given by :func:`row_pixels`.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_index_array, as_int

__all__ = ["unfold_images", "row_basis", "row_pixels"]


def _as_images(images) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"images must be a 3-D array (s, n_y, n_x), got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"images must be real numbers, got dtype {arr.dtype}")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"images must have n_y >= 1 and n_x >= 1, got shape {arr.shape}")
    return arr


def unfold_images(images: np.ndarray) -> np.ndarray:
    """Unfold images into the spatial-row matrix ``F = [X_1 | X_2 | ...]``.

    Parameters
    ----------
    images : array_like, shape (s, n_y, n_x)
        s images (e.g. optical density at the imaged energies).

    Returns
    -------
    F : ndarray, shape (n_y, s * n_x)
        ``F[y, j * n_x + x] == images[j, y, x]``.  A new array (the input is not referenced).
    """
    arr = _as_images(images)
    s, n_y, n_x = arr.shape
    return np.ascontiguousarray(arr.transpose(1, 0, 2)).reshape(n_y, s * n_x).copy()


def row_basis(images: np.ndarray, k: int) -> np.ndarray:
    """Orthonormal basis of the dominant k-dimensional column space of the unfolding F.

    Parameters
    ----------
    images : array_like, shape (s, n_y, n_x)
        Measured images; must be finite.
    k : int
        Number of basis vectors, ``1 <= k <= n_y`` (the number of spatial rows ARP will pick).

    Returns
    -------
    V : ndarray, shape (n_y, k)
        Top-k left singular vectors of ``F = unfold_images(images)``.  If the numerical rank r of F
        (singular values > max(F.shape) * eps * s_1) is below k, the last k - r columns complete the
        r singular vectors to an orthonormal set deterministically (from a complete QR factorisation),
        so ``V.T @ V == I_k`` always holds.
    """
    F = unfold_images(images).astype(np.float64)
    if not np.all(np.isfinite(F)):
        raise ValueError("images contain NaN or Inf; all entries must be finite")
    n_y = F.shape[0]
    k = as_int(k, "k", minimum=1, maximum=n_y)
    if F.size:
        U, s, _ = np.linalg.svd(F, full_matrices=False)
        tol = max(F.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
        r = int(np.count_nonzero(s > tol)) if s.size and s[0] > 0 else 0
    else:
        U, r = np.zeros((n_y, 0)), 0
    r = min(r, k)
    if r == k:
        return np.ascontiguousarray(U[:, :k])
    if r == 0:
        return np.eye(n_y, k)
    Q, _ = np.linalg.qr(U[:, :r], mode="complete")
    return np.hstack([U[:, :r], Q[:, r:k]])


def row_pixels(rows, n_x: int, *, n_y: int | None = None) -> np.ndarray:
    """Pixel (D column) indices of whole spatial rows.

    Parameters
    ----------
    rows : sequence of int, shape (k,)
        Spatial row indices y (distinct).
    n_x : int
        Pixels per row.
    n_y : int, optional
        Number of rows; when given, rows are checked to lie in ``[0, n_y)``.

    Returns
    -------
    pixels : ndarray of intp, shape (k * n_x,)
        ``y * n_x + x`` for each y in the given order and x ascending within each row.
    """
    n_x = as_int(n_x, "n_x", minimum=1)
    upper = None if n_y is None else as_int(n_y, "n_y", minimum=1)
    r = as_index_array(rows, "rows", upper=upper, distinct=True)
    return (r[:, None] * n_x + np.arange(n_x, dtype=np.intp)[None, :]).ravel()
