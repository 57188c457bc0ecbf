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

import numpy as np

from ._checks import as_bool, as_float, as_index_array, as_int, as_matrix, as_rtol, pow2_scale

__all__ = ["CURResult", "cur_complete"]

_CONSISTENCY_RTOL = 1e-6
MAX_CONDITION = 1e8  #: default cap on s_1 / s_r of the retained core singular values


def _frozen_view(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (``a`` itself, e.g. the caller's array, stays writable)."""
    v = a.view()
    v.flags.writeable = False
    return v


class CURResult:
    """Result of :func:`cur_complete` (read-only: its attributes cannot be set and its arrays
    cannot be written; ``.copy()`` one to change it).

    Built directly, ``CURResult(matrix)`` or ``CURResult(left=..., right=...)``; with the factors
    the rank is ``left.shape[1]`` (a ``rank`` that disagrees is a ``ValueError``).

    The completion is kept as its two factors, ``matrix = left @ right`` (then, with
    ``write_back``, the measured entries written over it); the dense ``matrix`` is formed on
    first access when :func:`cur_complete` was called with ``dense=False``, and cached.

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
    left : ndarray, shape (m, r)
        ``C V_r S_r^-1`` (dimensionless; ``(m, 0)`` when rank == 0).
    right : ndarray, shape (r, n)
        ``U_r^T R`` (units of the inputs; ``(0, n)`` when rank == 0).
    write_back : bool
        True when the measured entries are written over ``left @ right`` in ``matrix`` (the
        factors alone then do not give ``matrix``).
    shape : (int, int)
        ``(m, n)``, the shape of ``matrix``.
    matrix_formed : bool
        Whether the dense ``matrix`` exists yet (False until first access with ``dense=False``).
    """

    __slots__ = ("rank", "condition", "singular_values", "rank_before_guard", "fallback",
                 "left", "write_back", "shape", "_right_s", "_scale", "_right", "_matrix",
                 "_wb", "_frozen")

    def __init__(self, matrix: np.ndarray | None = None, rank: int | None = None,
                 condition: float = float("nan"), singular_values: np.ndarray | None = None,
                 rank_before_guard: int = -1, fallback: str = "", *,
                 left: np.ndarray | None = None, right: np.ndarray | None = None,
                 write_back: bool = False) -> None:
        if matrix is None and (left is None or right is None):
            raise ValueError("CURResult needs the matrix or both factors (left, right)")
        if matrix is None and write_back:
            raise ValueError("CURResult from factors with write_back=True needs the matrix too")
        if left is not None and right is not None:
            r_left, r_right = np.shape(left)[-1], np.shape(right)[0]
            if np.ndim(left) != 2 or np.ndim(right) != 2 or r_left != r_right:
                raise ValueError(f"left (m, r) and right (r, n) must be 2-D with the same r; got "
                                 f"shapes {np.shape(left)} and {np.shape(right)}")
            if rank is None:
                rank = r_left
            elif int(rank) != r_left:
                raise ValueError(f"rank={rank} disagrees with the factors' rank {r_left} "
                                 f"(left {np.shape(left)}, right {np.shape(right)})")
        elif rank is None:
            rank = 0  # a dense matrix alone: rank unknown
        self._setup(matrix, rank, condition, singular_values, rank_before_guard, fallback,
                    left=left, right_scaled=None if right is None else np.asarray(right, float),
                    scale=1.0, write_back=write_back, write_back_data=None)

    def _setup(self, matrix, rank, condition, singular_values, rank_before_guard, fallback, *,
               left, right_scaled, scale, write_back, write_back_data) -> None:
        sa = object.__setattr__
        sa(self, "rank", int(rank))
        sa(self, "condition", float(condition))
        sa(self, "singular_values",
           _frozen_view(np.zeros(0) if singular_values is None else np.asarray(singular_values)))
        sa(self, "rank_before_guard", int(rank_before_guard))
        sa(self, "fallback", str(fallback))
        sa(self, "left", None if left is None else _frozen_view(np.asarray(left, dtype=np.float64)))
        right_scaled = None if right_scaled is None else _frozen_view(right_scaled)
        sa(self, "_right_s", right_scaled)
        sa(self, "_scale", float(scale))
        sa(self, "_right", right_scaled if scale == 1.0 else None)
        sa(self, "write_back", bool(write_back))
        sa(self, "_wb", write_back_data)
        sa(self, "_matrix", None if matrix is None else _frozen_view(np.asarray(matrix)))
        if matrix is not None:
            shape = self._matrix.shape
        else:
            shape = (self.left.shape[0], self._right_s.shape[1])
        sa(self, "shape", tuple(int(v) for v in shape))
        sa(self, "_frozen", True)

    def __setattr__(self, name, value):
        raise AttributeError(f"CURResult is read-only: cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"CURResult is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        return (f"CURResult(shape={self.shape}, rank={self.rank}, condition={self.condition:.3g}, "
                f"write_back={self.write_back}, matrix_formed={self.matrix_formed})")

    @property
    def right(self) -> np.ndarray | None:
        """``U_r^T R``, shape (r, n) (units of the inputs)."""
        if self._right is None and self._right_s is not None:
            object.__setattr__(self, "_right", _frozen_view(self._right_s * self._scale))
        return self._right

    @property
    def matrix_formed(self) -> bool:
        """True once the dense :attr:`matrix` has been formed."""
        return self._matrix is not None

    @property
    def matrix(self) -> np.ndarray:
        """Completed matrix D_hat, shape (m, n); formed from the factors on first access."""
        if self._matrix is None:
            m, n = self.shape
            if self.rank == 0 or self.left.shape[1] == 0:
                out = np.zeros((m, n))
            else:
                out = self.left @ self._right_s  # same operations as the dense path: bit-identical
                out *= self._scale
            if self.write_back:
                C, R, I, J = self._wb
                out[:, J] = C
                out[I, :] = R
            object.__setattr__(self, "_matrix", _frozen_view(out))
            object.__setattr__(self, "_wb", None)  # the measured copies are no longer needed
        return self._matrix

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__ if k != "_frozen"}

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_frozen", True)


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
    dense: bool = True,
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
        Relative singular-value threshold defining the numerical rank of the core, in [0, 1).
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
    dense : bool, default True
        Form the dense completion now.  With False only the factors ``left`` (m, r) and
        ``right`` (r, n) are computed (O((m + n) r) memory); ``CURResult.matrix`` is formed on
        first access, with the same values as with True.

    Returns
    -------
    CURResult
        Always the same type; see :class:`CURResult`.  Inputs are not modified.

    Raises
    ------
    ValueError
        Shape mismatches, non-finite values, invalid or repeated indices, inconsistent C and R.
    """
    write_back, check, dense = (as_bool(write_back, "write_back"), as_bool(check, "check"),
                                as_bool(dense, "dense"))
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
    rtol = as_rtol(rtol, "rtol")
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
        left, right_s = np.zeros((m, 0)), np.zeros((0, n))
        condition = float("nan")
    else:
        left = Cs @ (Vt[:r].T / s[:r])  # (m, r) = C V_r S_r^{-1} (the scale cancels)
        right_s = U[:, :r].T @ Rs  # (r, n) = U_r^T R / scale
        condition = float(s[0] / s[r - 1])
    wb_data = None
    if write_back:  # copies only when the matrix is formed later (the inputs may change by then)
        wb_data = (C, R, I, J) if dense else (np.array(C), np.array(R), I, J)
    res = CURResult.__new__(CURResult)
    res._setup(None, r, condition, s * scale, rule_rank, "; ".join(notes), left=left,
               right_scaled=right_s, scale=scale, write_back=write_back,
               write_back_data=wb_data)
    if dense:
        res.matrix  # noqa: B018  (formed now; write-back uses C and R before they can change)
    return res
