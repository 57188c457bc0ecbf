"""Greedy row subset selection by pivoted QR: the deterministic counterpart of :func:`arp`.

Column-pivoted QR of Vᵀ (LAPACK ``geqp3``, Businger & Golub 1965) picks, at each step, the row of V
with the largest norm once the rows already picked are projected out. ARP draws that row with
probability proportional to the squared norm instead (:mod:`curiss.linalg._arp`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._checks import as_index_array, as_int, as_matrix

__all__ = ["pivoted_rows", "residual_row_norms"]


def _project_out(V: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """V (n, c) with the span of its rows ``pre`` projected out of every row (n, c). The span is
    taken by SVD, cut at 1e-12 of V's own scale (its 2-norm), so linearly dependent rows add no
    direction, and rows that are zero to rounding add none either: for orthonormal V that is
    ARP's cut (a squared residual norm of 1e-24). A cut relative to the preselected rows alone
    took a whole direction from the rounding noise of a blank spatial line."""
    if pre.size == 0:
        return V
    U, s, _ = np.linalg.svd(V[pre].T, full_matrices=False)
    scale = float(np.linalg.norm(V, 2))
    Q = U[:, s > 1e-12 * scale] if scale > 0 else U[:, :0]  # relative to V: scale-free
    return V - (V @ Q) @ Q.T


def residual_row_norms(V: np.ndarray, preselected=()) -> np.ndarray:
    """Squared norm of each row of ``V`` once the span of the ``preselected`` rows is projected out.

    Parameters
    ----------
    V : array_like, shape (n, c)
        Basis whose rows are the candidates (see :func:`pivoted_rows`).
    preselected : sequence of int, optional
        Distinct rows chosen earlier.

    Returns
    -------
    norms : ndarray of float, shape (n,)
        0 at the preselected rows. Normalised, they are the distribution :func:`arp` draws its
        next row from given the preselected rows (for V with orthonormal columns: its
        eliminations leave exactly these norms), and :func:`pivoted_rows` takes the largest.
    """
    V = as_matrix(V, "V")
    pre = as_index_array(preselected, "preselected", upper=V.shape[0], distinct=True)
    R = _project_out(V, pre)
    norms = np.einsum("ij,ij->i", R, R)
    norms[pre] = 0.0
    return norms


def pivoted_rows(V: np.ndarray, k: int | None = None, *, preselected=(), exclude=()) -> np.ndarray:
    """Select ``k`` rows of ``V`` greedily: each new row has the largest residual norm.

    Parameters
    ----------
    V : array_like, shape (n, c)
        Basis whose rows are the candidates, e.g. the top-c left singular vectors of the
        spatial-row unfolding from :func:`row_basis` (orthonormal columns are not required).
    k : int, optional
        Total number of rows to return, ``len(preselected) <= k <= min(n, c)``. Defaults to
        ``min(n, c)``.
    preselected : sequence of int, optional
        Distinct rows chosen earlier: returned first, in the given order, and projected out
        (their span in the row space of V, see :func:`residual_row_norms`) before the new rows
        are picked.
    exclude : sequence of int, optional
        Rows never picked as new rows, unless fewer than ``k - len(preselected)`` other rows are
        left (then the exclusion is lifted). A preselected row may also be excluded.

    Returns
    -------
    rows : ndarray of intp, shape (k,)
        Distinct row indices: ``preselected`` first, then the new rows in pivot order.

    Notes
    -----
    The new rows are the first ``k - len(preselected)`` pivots of the column-pivoted QR of
    ``Rᵀ`` (``scipy.linalg.qr(..., pivoting=True)``), R the rows of V allowed as candidates with
    the preselected rows' span projected out: at each step the candidate of largest residual
    norm (an exact tie goes to whichever candidate LAPACK's pivoting meets first, not necessarily
    the lowest index). Deterministic; O(n c²); invariant under scaling V.
    """
    V = as_matrix(V, "V")
    n, c = V.shape
    k = min(n, c) if k is None else as_int(k, "k", minimum=0, maximum=min(n, c))
    pre = as_index_array(preselected, "preselected", upper=n, distinct=True)
    if pre.size > k:
        raise ValueError(f"len(preselected)={pre.size} exceeds k={k}")
    excl = as_index_array(exclude, "exclude", upper=n, distinct=False)
    need = k - pre.size
    if need == 0:
        return pre.copy()
    R = _project_out(V, pre)
    free = np.setdiff1d(np.arange(n), pre)
    candidates = np.setdiff1d(free, excl)
    if candidates.size < need:
        candidates = free
    _, _, piv = scipy.linalg.qr(R[candidates].T, mode="economic", pivoting=True)
    return np.concatenate([pre, candidates[piv[:need]]]).astype(np.intp)
