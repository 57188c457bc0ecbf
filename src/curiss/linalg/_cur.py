"""CUR completion of a stack from full images (rows) and chosen pixels at all energies (columns).

With R = D[I, :] (images at energies I), C = D[:, J] (pixels J at all energies) and the core
G = D[I, J], the completion is D_hat = C G^+ R (Meier et al., arXiv:2602.03744).  G^+ is never formed:
with a truncated SVD G ~= U_r S_r V_r^T,

    D_hat = (C V_r S_r^{-1}) (U_r^T R),

which is stable because only the r retained singular values are inverted.  The rank r is chosen by a
relative tolerance, a caller's cap, or a noise-aware rule (keep s > sigma (sqrt|I| + sqrt|J|), the
largest singular value expected from an |I| x |J| matrix of i.i.d. noise of standard deviation sigma).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_float, as_index_array, as_int, as_matrix

__all__ = ["CURResult", "cur_complete"]

_CONSISTENCY_RTOL = 1e-6


@dataclass(frozen=True)
class CURResult:
    """Result of :func:`cur_complete`.

    Attributes
    ----------
    matrix : ndarray, shape (m, n)
        Completed matrix D_hat (same units as the inputs).
    rank : int
        Rank r of the truncated core used (0 only if the core is exactly zero).
    condition : float
        s_1 / s_r of the retained core singular values (NaN when rank == 0).
    singular_values : ndarray, shape (min(|I|, |J|),)
        All singular values of the core G = R[:, cols], descending.
    """

    matrix: np.ndarray
    rank: int
    condition: float
    singular_values: np.ndarray


def cur_complete(
    C: np.ndarray,
    R: np.ndarray,
    rows,
    cols,
    *,
    rank: int | None = None,
    rtol: float = 1e-10,
    noise_level: float | None = None,
    write_back: bool = False,
    check: bool = True,
) -> CURResult:
    """Complete a matrix from its rows ``I`` and columns ``J`` by a stabilised CUR formula.

    Parameters
    ----------
    C : array_like, shape (m, |J|)
        ``D[:, cols]``: the chosen pixel columns at all m energies.  Finite.
    R : array_like, shape (|I|, n)
        ``D[rows, :]``: the images at the imaged energies.  Finite.
    rows : sequence of int, shape (|I|,)
        Distinct energy (row) indices I in ``[0, m)``.
    cols : sequence of int, shape (|J|,)
        Distinct pixel (column) indices J in ``[0, n)``.
    rank : int, optional
        Cap on the rank (>= 1).  The rank used is ``min(rank, #{s > rtol * s_1})``.
    rtol : float, default 1e-10
        Relative singular-value threshold defining the numerical rank of the core.
    noise_level : float, optional
        Standard deviation sigma of the entrywise noise (same units as D).  Used only if ``rank`` is
        None: keep singular values ``> sigma * (sqrt(|I|) + sqrt(|J|))`` (at least one, and never
        more than the numerical rank).
    write_back : bool, default False
        If True, measured entries are kept: ``D_hat[:, J] = C`` then ``D_hat[I, :] = R`` (so R's
        values win on the core).
    check : bool, default True
        Check that ``C[rows, :]`` equals ``R[:, cols]`` to a relative tolerance 1e-6 (cheap, catches
        swapped or misaligned indices).  The core is always taken from R.

    Returns
    -------
    CURResult
        Always the same type; see :class:`CURResult`.  Inputs are not modified.

    Raises
    ------
    ValueError
        Shape mismatches, non-finite values, invalid or repeated indices, inconsistent C and R.
    """
    C = as_matrix(C, "C")
    R = as_matrix(R, "R")
    m, n = C.shape[0], R.shape[1]
    I = as_index_array(rows, "rows", upper=m)
    J = as_index_array(cols, "cols", upper=n)
    if I.size == 0 or J.size == 0:
        raise ValueError("rows and cols must each contain at least one index")
    if C.shape != (m, J.size):
        raise ValueError(f"C must have shape (m, len(cols)) = ({m}, {J.size}), got {C.shape}")
    if R.shape != (I.size, n):
        raise ValueError(f"R must have shape (len(rows), n) = ({I.size}, {n}), got {R.shape}")
    rtol = as_float(rtol, "rtol", minimum=0.0)
    G = R[:, J]
    if check:
        diff = np.linalg.norm(C[I, :] - G)
        scale = max(np.linalg.norm(G), np.linalg.norm(C[I, :]))
        if diff > _CONSISTENCY_RTOL * scale:
            raise ValueError(
                "C[rows, :] and R[:, cols] disagree (relative difference "
                f"{diff / scale:.3g}); C must be D[:, cols] and R must be D[rows, :] "
                "(pass check=False to use R's values regardless)"
            )
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    r_num = int(np.count_nonzero(s > rtol * s[0])) if s[0] > 0 else 0
    if rank is not None:
        r = min(as_int(rank, "rank", minimum=1), r_num)
    elif noise_level is not None:
        sigma = as_float(noise_level, "noise_level", minimum=0.0)
        thresh = sigma * (np.sqrt(I.size) + np.sqrt(J.size))
        r = min(max(int(np.count_nonzero(s > thresh)), 1), r_num)
    else:
        r = r_num
    if r == 0:
        out = np.zeros((m, n))
        condition = float("nan")
    else:
        left = C @ (Vt[:r].T / s[:r])  # (m, r) = C V_r S_r^{-1}
        out = left @ (U[:, :r].T @ R)  # (m, n)
        condition = float(s[0] / s[r - 1])
    if write_back:
        out[:, J] = C
        out[I, :] = R
    return CURResult(matrix=out, rank=int(r), condition=condition, singular_values=s.copy())
