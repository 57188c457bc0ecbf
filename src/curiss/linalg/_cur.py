"""CUR completion of a stack from full images (rows) and chosen pixels at all energies (columns).

With R = D[I, :] (images at energies I), C = D[:, J] (pixels J at all energies) and the core
G = D[I, J], the completion is D_hat = C G^+ R (Meier et al., arXiv:2602.03744).  G^+ is never formed:
with a truncated SVD G ~= U_r S_r V_r^T,

    D_hat = (C V_r S_r^{-1}) (U_r^T R),

which is stable because only the r retained singular values are inverted.  The rank r is chosen by a
relative tolerance, a caller's cap, or a noise-aware rule (keep s > sigma (sqrt|I| + sqrt|J|), the
largest singular value expected from an |I| x |J| matrix of i.i.d. noise of standard deviation sigma).

Numerical safety (documented fallbacks, reported in :attr:`CURResult.fallback`):

- **Ill-conditioned core.**  Whatever rule chose r, the rank is reduced further to the largest r' with
  s_1 / s_r' <= ``max_condition`` (default 1e8): the inverted singular values then amplify the data
  by at most ``max_condition / s_1``, so round-off and noise in C and R cannot blow up the completion.
- **Rank larger than the data supports.**  A ``rank`` cap above the core's numerical rank (at most
  min(|I|, |J|): the number of imaged energies or measured pixels) is clipped to that rank.
- **Scale.**  The computation runs on C and R divided by a power of two near their largest magnitude
  (exact; the completion is homogeneous of degree 1 in the data), so data of any magnitude between
  the smallest and the largest normal float gives a finite result with the same relative accuracy,
  and data of ordinary magnitude give bit-identical results to the unscaled formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_float, as_index_array, as_int, as_matrix, pow2_scale

__all__ = ["CURResult", "cur_complete"]

_CONSISTENCY_RTOL = 1e-6
MAX_CONDITION = 1e8  #: default cap on s_1 / s_r of the retained core singular values


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
    rank_before_guard : int
        Rank chosen by the rule asked for (``rank`` cap, ``noise_level`` or ``rtol``) before the
        conditioning guard; equals ``rank`` when the guard did not act.  For a ``rank`` cap above the
        numerical rank it is the cap itself.
    fallback : str
        Empty when the rank rule asked for was applied as is; otherwise a sentence saying how and
        why the core was truncated further (ill-conditioned core, rank cap larger than the data
        supports).  Planners copy it into their decision records.
    """

    matrix: np.ndarray
    rank: int
    condition: float
    singular_values: np.ndarray
    rank_before_guard: int = -1
    fallback: str = ""


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
    max_condition: float | None = MAX_CONDITION,
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
    max_condition : float or None, default 1e8
        Guard on the conditioning of the inverted core: the rank is reduced until
        ``s_1 / s_r <= max_condition`` (>= 1; None disables the guard).  A reduction is reported in
        ``CURResult.fallback``.

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
    if max_condition is not None:
        max_condition = as_float(max_condition, "max_condition", minimum=1.0)
    # Work on data scaled to max |entry| = 1 (the result scales linearly): no overflow in the
    # norms and the SVD for huge data, no underflow to a zero core for tiny data.
    scale = pow2_scale(max(float(np.abs(C).max(initial=0.0)), float(np.abs(R).max(initial=0.0))))
    Cs, Rs = C / scale, R / scale
    G = Rs[:, J]
    if check:
        diff = np.linalg.norm(Cs[I, :] - G)
        ref = max(np.linalg.norm(G), np.linalg.norm(Cs[I, :]))
        if diff > _CONSISTENCY_RTOL * ref:
            raise ValueError(
                "C[rows, :] and R[:, cols] disagree (relative difference "
                f"{diff / ref:.3g}); C must be D[:, cols] and R must be D[rows, :] "
                "(pass check=False to use R's values regardless)"
            )
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    r_num = int(np.count_nonzero(s > rtol * s[0])) if s[0] > 0 else 0
    notes = []
    if rank is not None:
        cap = as_int(rank, "rank", minimum=1)
        r = min(cap, r_num)
        rule_rank = cap
        if cap > r_num:
            notes.append(
                f"rank cap {cap} exceeds the rank the data supports ({r_num}: numerical rank at "
                f"rtol {rtol:g} of the {I.size} x {J.size} core); using {r_num}"
            )
    elif noise_level is not None:
        sigma = as_float(noise_level, "noise_level", minimum=0.0) / scale
        thresh = sigma * (np.sqrt(I.size) + np.sqrt(J.size))
        r = min(max(int(np.count_nonzero(s > thresh)), 1), r_num)
        rule_rank = r
    else:
        r = r_num
        rule_rank = r
    if max_condition is not None and r > 0 and s[0] / s[r - 1] > max_condition:
        r_before, cond_before = r, float(s[0] / s[r - 1])
        r = int(np.count_nonzero(s[:r] * max_condition >= s[0]))
        notes.append(
            f"core truncated from rank {r_before} to {r}: condition {cond_before:.3g} > "
            f"max_condition {max_condition:.3g} (ill-conditioned core)"
        )
    if r == 0:
        out = np.zeros((m, n))
        condition = float("nan")
    else:
        left = Cs @ (Vt[:r].T / s[:r])  # (m, r) = C V_r S_r^{-1}
        out = left @ (U[:, :r].T @ Rs)  # (m, n)
        out *= scale
        condition = float(s[0] / s[r - 1])
    if write_back:
        out[:, J] = C
        out[I, :] = R
    return CURResult(
        matrix=out,
        rank=int(r),
        condition=condition,
        singular_values=s * scale,
        rank_before_guard=int(rule_rank),
        fallback="; ".join(notes),
    )
