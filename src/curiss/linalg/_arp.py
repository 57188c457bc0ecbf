"""Adaptive Randomized Pivoting (ARP) for row subset selection.

Cortinovis & Kressner, "Adaptive randomized pivoting for column subset selection, DEIM, and low-rank
approximation" (2024).  Given V (n, c) with orthonormal columns, ARP picks row i with probability
||V_i||^2 / (number of remaining columns), then applies a Householder reflector mapping row i onto one
coordinate direction and drops that column: the remaining columns stay orthonormal and row i becomes
zero.  With V the top-k left singular vectors of A, the rows J drawn satisfy

    E ||A - A A_J^+ A_J||_F^2 <= (k + 1) ||A - A_k||_F^2,

and the output is distributed exactly as volume sampling (projection DPP; Epperly 2025).  Eliminating
given rows first and sampling the rest is conditional volume sampling, as used by ACURISS to add
spatial rows to those already scanned (Meier et al., arXiv:2602.03744).
"""

from __future__ import annotations

import numpy as np

from ._checks import as_index_array, as_int, as_matrix, as_rng

__all__ = ["arp"]

_ORTHO_TOL = 1e-6  # max |V^T V - I| accepted
_ZERO_NORM = 1e-24  # squared row norm below which a row is treated as zero


def _eliminate(V: np.ndarray, i: int) -> np.ndarray:
    """Reflect V (n, c') so that row i lies along one column, and drop that column -> (n, c'-1)."""
    v = V[i]
    nv = np.linalg.norm(v)
    col = int(np.argmax(np.abs(v)))
    # Sign-stable Householder: u = v - alpha e_col with alpha = -sign(v_col) ||v|| (no cancellation).
    alpha = -nv if v[col] >= 0 else nv
    u = v.copy()
    u[col] -= alpha
    VH = V - np.outer(V @ u, u * (2.0 / (u @ u)))
    VH[i] = 0.0  # exactly alpha * e_col before dropping the column
    return np.delete(VH, col, axis=1)


def arp(
    V: np.ndarray,
    k: int | None = None,
    *,
    preselected=(),
    rng: None | int | np.random.Generator = None,
) -> np.ndarray:
    """Select ``k`` rows of ``V`` by adaptive randomized pivoting.

    Parameters
    ----------
    V : array_like, shape (n, c)
        Matrix with orthonormal columns (``V.T @ V ~= I_c``; checked to 1e-6), e.g. the top-c
        left singular vectors of the spatial-row unfolding from :func:`row_basis`.
    k : int, optional
        Total number of rows to return, ``len(preselected) <= k <= c``.  Defaults to c.
    preselected : sequence of int, optional
        Distinct rows chosen earlier.  They are eliminated first, deterministically and in the given
        order (conditional volume sampling), then sampling continues until k rows in total.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness.

    Returns
    -------
    rows : ndarray of intp, shape (k,)
        Distinct row indices: ``preselected`` first (in the given order), then the new draws in draw
        order.

    Notes
    -----
    Draw j picks row i with probability ``||V_i||^2 / c_j`` where V is the current (reflected and
    reduced) basis with c_j columns; chosen rows are exactly zero, so they are never drawn twice.
    Each elimination costs O(n c), so the total is O(n k c) with no SVD.  A row whose norm is
    numerically zero when it is (pre)selected removes no column.  If the remaining row norms are all
    numerically zero (only possible through round-off), the draw is uniform among unchosen rows.
    """
    V = as_matrix(V, "V")
    n, c = V.shape
    if c > n:
        raise ValueError(f"V (n, c) must have c <= n for orthonormal columns, got shape {V.shape}")
    gram_err = np.abs(V.T @ V - np.eye(c)).max() if c else 0.0
    if gram_err > _ORTHO_TOL:
        raise ValueError(
            f"V must have orthonormal columns: max |V^T V - I| = {gram_err:.3g} > {_ORTHO_TOL:g}"
        )
    k = c if k is None else as_int(k, "k", minimum=0, maximum=c)
    pre = as_index_array(preselected, "preselected", upper=n, distinct=True)
    if pre.size > k:
        raise ValueError(f"len(preselected)={pre.size} exceeds k={k}")
    rng = as_rng(rng)

    W = V.copy()
    chosen: list[int] = []
    unchosen = np.ones(n, dtype=bool)

    def take(i: int) -> None:
        nonlocal W
        chosen.append(int(i))
        unchosen[i] = False
        if W.shape[1] and W[i] @ W[i] > _ZERO_NORM:
            W = _eliminate(W, i)
        else:
            W[i] = 0.0

    for i in pre:
        take(int(i))
    while len(chosen) < k:
        norms = np.einsum("ij,ij->i", W, W)
        norms[~unchosen] = 0.0
        total = norms.sum()
        if total > _ZERO_NORM * n and W.shape[1]:
            i = rng.choice(n, p=norms / total)
        else:
            i = rng.choice(np.flatnonzero(unchosen))
        take(int(i))
    return np.asarray(chosen, dtype=np.intp)
