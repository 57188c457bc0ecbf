"""Leverage scores and weighted sampling without replacement.

Leverage scores of a matrix A are the squared row norms of an orthonormal basis of its dominant column
space; they sum to the rank.  CURISS (Meier et al., arXiv:2602.03744) draws the energies to image with
these weights, computed from a dictionary of reference spectra (uniform weights without a dictionary),
with already-measured energies given weight zero.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_index_array, as_int, as_matrix, as_rng, as_rtol, is_real_dtype

__all__ = ["leverage_scores", "weighted_sample"]


def leverage_scores(A: np.ndarray, *, rank: int | None = None, rtol: float = 1e-8) -> np.ndarray:
    """Leverage scores of the rows of ``A``.

    Parameters
    ----------
    A : array_like, shape (n, m)
        Real matrix, e.g. a dictionary (n_E, n_refs) of reference spectra.  Must be finite.
    rank : int, optional
        Dimension r of the dominant column space, ``1 <= rank <= min(n, m)``.  If omitted, the
        numerical rank: the number of singular values ``> rtol * s_max``.
    rtol : float, default 1e-8
        Relative threshold for the numerical rank, in [0, 1) (ignored when ``rank`` is given).

    Returns
    -------
    scores : ndarray, shape (n,)
        ``scores[i] = ||U_r[i, :]||^2`` with ``U_r`` the top-r left singular vectors of ``A``.  Each
        lies in [0, 1] and they sum to r (all zero when ``A`` is zero and ``rank`` is omitted).

    Raises
    ------
    ValueError
        If ``A`` is not 2-D, is empty, contains NaN/Inf, or ``rank``/``rtol`` is out of range.
    """
    A = as_matrix(A, "A")
    if A.size == 0:
        raise ValueError(f"A must be non-empty, got shape {A.shape}")
    rtol = as_rtol(rtol, "rtol")
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    if rank is None:
        r = int(np.count_nonzero(s > rtol * s[0])) if s[0] > 0 else 0
    else:
        r = as_int(rank, "rank", minimum=1, maximum=min(A.shape))
    Ur = U[:, :r]
    return np.einsum("ij,ij->i", Ur, Ur)


def weighted_sample(
    weights: np.ndarray | None,
    k: int,
    *,
    exclude=None,
    rng: None | int | np.random.Generator = None,
    n: int | None = None,
) -> np.ndarray:
    """Draw ``k`` distinct indices with probability proportional to ``weights``.

    Sampling is successive (sequential) sampling without replacement: each draw picks a not yet
    chosen index i with probability ``w_i / sum(w_j, j not chosen)``.  Indices in ``exclude`` get
    weight 0 and are never returned.

    If fewer than ``k`` candidates have a positive weight, all of them are drawn first (in weighted
    random order) and the remaining draws are made **uniformly** among the other non-excluded
    indices (those with zero weight).  Any finite magnitude of the weights is safe (they are rescaled
    when their sum would overflow), and ``k == 0`` returns an empty array whatever the weights.

    Parameters
    ----------
    weights : array_like, shape (n,), or None
        Non-negative finite weights (e.g. leverage scores).  ``None`` means uniform weights over
        ``range(n)``; then the keyword ``n`` is required.
    k : int
        Number of indices to draw, ``0 <= k <= n - len(set(exclude))``.
    exclude : sequence of int, optional
        Indices that must not be drawn (e.g. energies already imaged).  Repeats are allowed.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness.
    n : int, optional
        Number of candidates when ``weights`` is None (ignored otherwise, but must then agree
        with ``len(weights)`` if given).

    Returns
    -------
    indices : ndarray of intp, shape (k,)
        Distinct indices in draw order.

    Raises
    ------
    ValueError
        Negative or non-finite weights, out-of-range exclusions, or ``k`` larger than the number
        of non-excluded indices.
    """
    if weights is None:
        if n is None:
            raise ValueError("weights=None (uniform) requires the number of candidates n=...")
        n = as_int(n, "n", minimum=0)
        w = np.ones(n)
    else:
        w = np.asarray(weights)
        if w.ndim != 1:
            raise ValueError(f"weights must be 1-D, got shape {w.shape}")
        if not is_real_dtype(w):
            raise TypeError(f"weights must be real numbers, got dtype {w.dtype}")
        w = w.astype(np.float64)  # copy: never mutate the caller's array
        if not np.all(np.isfinite(w)):
            raise ValueError("weights must be finite (no NaN/Inf)")
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0, got minimum {w.min()}")
        if n is not None and as_int(n, "n", minimum=0) != w.size:
            raise ValueError(f"n={n} disagrees with len(weights)={w.size}")
        n = w.size
    k = as_int(k, "k", minimum=0)
    rng = as_rng(rng)
    allowed = np.ones(n, dtype=bool)
    if exclude is not None:
        ex = as_index_array(exclude, "exclude", upper=n, distinct=False)
        allowed[ex] = False
    n_allowed = int(allowed.sum())
    if k > n_allowed:
        raise ValueError(
            f"cannot draw k={k} distinct indices: only {n_allowed} of {n} are not excluded"
        )
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    w[~allowed] = 0.0
    with np.errstate(over="ignore"):
        total = w.sum()
    if not np.isfinite(total) or 0.0 < total < np.finfo(np.float64).tiny:
        # the sum overflows (huge weights) or is subnormal: use weights relative to the largest
        # (a weight below ~1e-308 of the largest then counts as zero)
        w /= w.max()
    # a weight that underflows to 0 in w / w.sum() (below ~1e-308 of the total) counts as zero
    total = w.sum()
    p = w / total if total > 0 else w  # all zero: uniform fill below
    positive = np.flatnonzero(p > 0)
    if positive.size >= k:
        return rng.choice(n, size=k, replace=False, p=p).astype(np.intp)
    first = positive
    if positive.size > 1:
        pp = w[positive] / w[positive].sum()
        first = rng.choice(positive, size=positive.size, replace=False, p=pp)
    rest = np.flatnonzero(allowed & ~(p > 0))
    fill = rng.choice(rest, size=k - positive.size, replace=False)
    return np.concatenate([first, fill]).astype(np.intp)
