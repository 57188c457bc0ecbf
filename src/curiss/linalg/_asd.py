"""Matrix completion by Alternating Steepest Descent (ASD) and LoopedASD.

ASD (Tanner & Wei, "Low rank matrix completion by alternating steepest descent methods", Appl.
Comput. Harmon. Anal. 2016) minimises f(X, Y) = 1/2 ||P_Omega(X Y - M)||_F^2 over X (m, r), Y (r, n)
by alternating gradient steps with exact line search,

    X <- X + t_X G_X,  G_X = P_Omega(M - X Y) Y^T,  t_X = ||G_X||^2 / ||P_Omega(G_X Y)||^2,
    Y <- Y + t_Y G_Y,  G_Y = X^T P_Omega(M - X Y),  t_Y = ||G_Y||^2 / ||P_Omega(X G_Y)||^2.

LoopedASD (Townsend et al., "Undersampling raster scans in spectromicroscopy for a reduced dose and
faster measurements", Opt. Express 2022) starts at rank 1 and grows the rank by one (appending a
rank-1 term) after a fixed number of ASD iterations, stopping on a small residual, stagnation or a
maximal rank.  It is the completion used by RISS and the random-rows baseline in Meier et al.,
arXiv:2602.03744.

Implementation: columns of the mask with identical patterns are grouped (for the row-scan masks of
spectromicroscopy the columns of one spatial row share a pattern), so every product is restricted to
the observed entries, P_Omega(A B) is computed block by block as A[T_g] @ B[:, J_g], and the cost per
iteration is O(|Omega| r) up to padding (general masks work too, with smaller blocks).

Scale: both solvers run on M divided by an even power of two near its largest observed magnitude
and scale the factors back (each by the square root, again a power of two).  Squared norms then
neither overflow for huge data nor underflow for tiny data; every step is exact, so data of ordinary
magnitude give bit-identical results, and the solvers are exactly scale-equivariant for
factors 4**j (up to round-off for other factors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_float, as_int, as_matrix, as_rng, pow2_scale

__all__ = ["ASDResult", "asd", "looped_asd"]

_PLATEAU = 0.5  # grow the rank once a chunk of ASD improves the residual by < 50%
_RECOMPUTE_EVERY = 50  # exact residual recomputation period (guards drift of the cheap update)


@dataclass(frozen=True)
class ASDResult:
    """Result of :func:`asd` / :func:`looped_asd`.

    Attributes
    ----------
    X : ndarray, shape (m, rank)
    Y : ndarray, shape (rank, n)
    rank : int
    n_iter : int
        ASD iterations performed (each updates X then Y), summed over ranks for LoopedASD.
    residual : float
        Relative residual ``||P_Omega(X Y - M)||_F / ||P_Omega(M)||_F`` of the returned factors.
    converged : bool
        True when ``residual <= tol``.
    stop_reason : str
        "tol", "max_iter", "stationary" (zero gradient/step), "stagnation" or "max_rank".
    """

    X: np.ndarray
    Y: np.ndarray
    rank: int
    n_iter: int
    residual: float
    converged: bool
    stop_reason: str = ""

    @property
    def matrix(self) -> np.ndarray:
        """Completed matrix ``X @ Y``, shape (m, n)."""
        return self.X @ self.Y


def _sqnorm(a: np.ndarray) -> float:
    """Squared Frobenius norm without BLAS (multithreaded ddot is very slow on a busy machine)."""
    flat = np.ravel(a)
    return float(np.einsum("i,i->", flat, flat))


def _validate(M, mask) -> tuple[np.ndarray, np.ndarray, float]:
    """Checked (M / scale, mask, scale); scale = 4**j near max |M| on the mask (1 if that is 0)."""
    Mv = as_matrix(M, "M", finite=False)
    W = np.asarray(mask)
    if W.dtype != bool:
        raise TypeError(f"mask must be a boolean array, got dtype {W.dtype}")
    if W.shape != Mv.shape:
        raise ValueError(f"mask shape {W.shape} differs from M shape {Mv.shape}")
    if not np.all(np.isfinite(Mv[W])):
        raise ValueError("M must be finite on the observed entries (mask True)")
    if not W.any():
        raise ValueError("mask has no observed entry")
    scale = pow2_scale(float(np.abs(Mv[W]).max()), even=True)
    return np.where(W, Mv, 0.0) / scale, W, scale  # unobserved entries are ignored: never scaled


def _rescaled(result: "ASDResult", root: float) -> "ASDResult":
    """Factors of the unscaled problem: X, Y each multiplied by root = sqrt(scale)."""
    if root == 1.0:
        return result
    return ASDResult(result.X * root, result.Y * root, result.rank, result.n_iter, result.residual,
                     result.converged, result.stop_reason)


class _Problem:
    """Observed entries of M, stored as padded dense blocks of columns sharing a mask pattern.

    Columns with identical mask columns form a group (rows T_g); groups are cut into pieces of at
    most ``w`` columns (w = median group size) and padded to (t_max, w) with a dummy row index m and
    a dummy column index n whose factor entries are kept at zero, so padded residual entries stay
    zero.  All products then are batched matrix products over the pieces.
    """

    def __init__(self, M: np.ndarray, mask: np.ndarray):
        m, n = M.shape
        self.shape = (m, n)
        packed = np.packbits(mask, axis=0).T.copy()  # (n, ceil(m/8))
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, inverse = np.unique(keys, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        starts = np.concatenate([[0], bounds]).astype(int)
        ends = np.concatenate([bounds, [n]]).astype(int)
        width = max(1, int(np.median(ends - starts)))
        pieces = []
        for s, e in zip(starts, ends):
            rows = np.flatnonzero(mask[:, order[s]])
            for a in range(s, e, width):
                pieces.append((rows, order[a : min(a + width, e)]))
        t_max = max(rows.size for rows, _ in pieces)
        n_p = len(pieces)
        self.rowidx = np.full((n_p, t_max), m, dtype=np.intp)
        self.colidx = np.full((n_p, width), n, dtype=np.intp)
        for p, (rows, cols) in enumerate(pieces):
            self.rowidx[p, : rows.size] = rows
            self.colidx[p, : cols.size] = cols
        M_ext = np.zeros((m + 1, n + 1))
        M_ext[:m, :n] = np.where(mask, M, 0.0)
        self.M_blocks = M_ext[self.rowidx[:, :, None], self.colidx[:, None, :]]  # (P, t, w)
        self.norm_m = float(np.sqrt(_sqnorm(self.M_blocks)))
        self.fraction = float(mask.mean())
        self.row_flat = self.rowidx.ravel()
        self.col_flat = self.colidx.ravel()

    # --- state: X_ext (m+1, r), Y_ext (r, n+1) with zero padding entries, residual blocks ------
    def set_factors(self, X: np.ndarray, Y: np.ndarray) -> None:
        m, n = self.shape
        r = X.shape[1]
        self.X = np.zeros((m + 1, r))
        self.X[:m] = X
        self.Y = np.zeros((r, n + 1))
        self.Y[:, :n] = Y
        self.recompute()

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        m, n = self.shape
        return self.X[:m].copy(), self.Y[:, :n].copy()

    def _xg(self, X):  # (P, t, r)
        return X[self.rowidx]

    def _yg(self, Y):  # (P, r, w)
        return Y[:, self.colidx].transpose(1, 0, 2)

    def recompute(self) -> None:
        self.R = self.M_blocks - np.matmul(self._xg(self.X), self._yg(self.Y))
        self._buf = np.empty_like(self.R)  # reused for P_Omega(G Y), P_Omega(X G): no page faults
        self.res2 = _sqnorm(self.R)

    def residual_direction(self) -> tuple[np.ndarray, np.ndarray]:
        """Top singular pair of P_Omega(M - XY) / p, split as (sqrt(s) u, sqrt(s) v), p = |Omega|/mn."""
        m, n = self.shape
        dense = np.zeros((m + 1, n + 1))
        dense[self.rowidx[:, :, None], self.colidx[:, None, :]] = self.R
        dense = dense[:m, :n] / self.fraction
        if m <= n:
            w, U = np.linalg.eigh(dense @ dense.T)
            u = U[:, -1]
            v = u @ dense
        else:
            w, V = np.linalg.eigh(dense.T @ dense)
            v = V[:, -1]
            u = dense @ v
        s = float(np.sqrt(max(w[-1], 0.0)))
        if s == 0.0:
            return np.zeros(m), np.zeros(n)
        if m <= n:
            v = v / s
        else:
            u = u / s
        return np.sqrt(s) * u, np.sqrt(s) * v

    def rel_residual(self) -> float:
        res = float(np.sqrt(max(self.res2, 0.0)))
        return res / self.norm_m if self.norm_m > 0 else res

    def step(self) -> bool:
        """One ASD iteration (X then Y). Returns False at a stationary point."""
        m, n = self.shape
        r = self.X.shape[1]
        moved = False
        for half in ("X", "Y"):
            if half == "X":
                Yg = self._yg(self.Y)
                part = np.matmul(self.R, Yg.transpose(0, 2, 1)).reshape(-1, r)  # (P*t, r)
                G = np.empty_like(self.X)
                for c in range(r):
                    G[:, c] = np.bincount(self.row_flat, weights=part[:, c], minlength=m + 1)
                G[m] = 0.0
                A = np.matmul(self._xg(G), Yg, out=self._buf)
            else:
                Xg = self._xg(self.X)
                part = np.matmul(Xg.transpose(0, 2, 1), self.R)  # (P, r, w)
                G = np.zeros_like(self.Y)
                G[:, self.col_flat] = part.transpose(1, 0, 2).reshape(r, -1)
                G[:, n] = 0.0
                A = np.matmul(Xg, self._yg(G), out=self._buf)
            nd = _sqnorm(G)
            den = _sqnorm(A)
            if nd == 0.0 or den == 0.0:
                continue
            t = nd / den
            if half == "X":
                self.X += t * G
            else:
                self.Y += t * G
            A *= t
            self.R -= A
            # exact line search: ||R - t A||^2 = ||R||^2 - nd^2 / den
            self.res2 -= nd * nd / den
            moved = True
        return moved

    def run(self, n_steps: int, tol: float) -> tuple[int, str]:
        """Run up to n_steps iterations; returns (iterations done, reason)."""
        for it in range(1, n_steps + 1):
            moved = self.step()
            if it % _RECOMPUTE_EVERY == 0:
                self.recompute()
            if self.rel_residual() <= tol:
                self.recompute()
                if self.rel_residual() <= tol:
                    return it, "tol"
            if not moved:
                return it, "stationary"
        self.recompute()
        return n_steps, "max_iter"


def _spectral_init(M: np.ndarray, mask: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``rank`` SVD of P_Omega(M) / p (p = observed fraction), split symmetrically."""
    M0 = np.where(mask, M, 0.0) / mask.mean()
    m, n = M0.shape
    if m <= n:
        w, U = np.linalg.eigh(M0 @ M0.T)
        idx = np.argsort(w)[::-1][:rank]
        U = U[:, idx]
        B = U.T @ M0  # (r, n) = S V^T
        s = np.linalg.norm(B, axis=1)
        Vt = B / np.where(s > 0, s, 1.0)[:, None]
    else:
        w, V = np.linalg.eigh(M0.T @ M0)
        idx = np.argsort(w)[::-1][:rank]
        V = V[:, idx]
        B = M0 @ V  # (m, r) = U S
        s = np.linalg.norm(B, axis=0)
        U = B / np.where(s > 0, s, 1.0)[None, :]
        Vt = V.T
    root = np.sqrt(s)
    return U * root[None, :], root[:, None] * Vt


def asd(
    M: np.ndarray,
    mask: np.ndarray,
    rank: int,
    *,
    X0: np.ndarray | None = None,
    Y0: np.ndarray | None = None,
    max_iter: int = 1000,
    tol: float = 1e-8,
    rng: None | int | np.random.Generator = None,
) -> ASDResult:
    """Rank-``rank`` matrix completion by Alternating Steepest Descent (Tanner & Wei 2016).

    Parameters
    ----------
    M : array_like, shape (m, n)
        Data; entries where ``mask`` is False are ignored (may be NaN).  Finite on the mask.
    mask : array_like of bool, shape (m, n)
        True where M is observed.
    rank : int
        Rank r of the factorisation, ``1 <= r <= min(m, n)``.
    X0, Y0 : array_like, shapes (m, r) and (r, n), optional
        Initial factors (both or neither).  Default: the rank-r truncated SVD of P_Omega(M) / p,
        p = observed fraction (spectral initialisation, deterministic).
    max_iter : int, default 1000
        Maximal number of iterations (each updates X then Y).
    tol : float, default 1e-8
        Stop when ``||P_Omega(X Y - M)||_F / ||P_Omega(M)||_F <= tol``.
    rng : None, int or numpy.random.Generator, optional
        Used only to break exact ties of the spectral initialisation (random tiny perturbation when
        an initial factor is identically zero).

    Returns
    -------
    ASDResult
        Factors X (m, r), Y (r, n), iterations, relative residual, convergence flag.
    """
    Mv, W, scale = _validate(M, mask)
    root = float(np.sqrt(scale))
    m, n = Mv.shape
    r = as_int(rank, "rank", minimum=1, maximum=min(m, n))
    max_iter = as_int(max_iter, "max_iter", minimum=0)
    tol = as_float(tol, "tol", minimum=0.0)
    gen = as_rng(rng)
    if (X0 is None) != (Y0 is None):
        raise ValueError("give both X0 and Y0, or neither")
    if X0 is None:
        X, Y = _spectral_init(Mv, W, r)
        if not np.any(X) or not np.any(Y):
            eps = max(np.linalg.norm(np.where(W, Mv, 0.0)), 1.0) * 1e-3
            X = X + eps * gen.standard_normal((m, r)) / np.sqrt(m * r)
            Y = Y + eps * gen.standard_normal((r, n)) / np.sqrt(n * r)
    else:
        X, Y = as_matrix(X0, "X0"), as_matrix(Y0, "Y0")
        if X.shape != (m, r) or Y.shape != (r, n):
            raise ValueError(
                f"X0, Y0 must have shapes ({m}, {r}) and ({r}, {n}), got {X.shape} and {Y.shape}"
            )
        X, Y = X / root, Y / root
    prob = _Problem(Mv, W)
    prob.set_factors(X, Y)
    if prob.rel_residual() <= tol:
        n_iter, reason = 0, "tol"
    else:
        n_iter, reason = prob.run(max_iter, tol)
    Xf, Yf = prob.factors()
    res = prob.rel_residual()
    return _rescaled(ASDResult(Xf, Yf, r, n_iter, res, bool(res <= tol), reason), root)


def looped_asd(
    M: np.ndarray,
    mask: np.ndarray,
    *,
    max_rank: int | None = None,
    inner_iter: int = 75,
    tol: float = 1e-6,
    stagnation: float | None = None,
    max_iter: int = 5000,
    rng: None | int | np.random.Generator = None,
) -> ASDResult:
    """Matrix completion by LoopedASD: ASD with a rank grown one at a time (Townsend et al. 2022).

    Starts at rank 1 (spectral initialisation) and runs ASD in chunks of ``inner_iter`` iterations.
    Once a chunk improves the relative residual by less than half (plateau at this rank; while the
    residual still falls fast the rank is kept), the rank grows by one: the appended rank-1 term is
    the top singular pair of the rescaled residual P_Omega(M - XY) / p plus a small random
    perturbation (10% of its norm).  A purely random small term (as in the authors' code) was found
    to leave ASD in slow regions where the next rank looks useful, growing past the true rank and
    overfitting on row-scan masks; the residual direction avoids this.

    Parameters
    ----------
    M : array_like, shape (m, n)
        Data; ignored (may be NaN) where ``mask`` is False.
    mask : array_like of bool, shape (m, n)
        True where observed.  Every row and column needs at least one observation.
    max_rank : int, optional
        Largest rank tried.  The default and the upper limit (a larger value is clipped) is the
        largest r such that every column and every row of the mask has >= r observations.
    inner_iter : int, default 75
        ASD iterations per chunk (the authors' code runs 75 per rank).
    tol : float, default 1e-6
        Stop when the relative residual ``||P_Omega(XY - M)|| / ||P_Omega M||`` is <= tol.
    stagnation : float, optional
        Stop when a rank increment improves the relative residual (at plateau) by a relative amount
        below this; the factors of the previous (lower) rank are then returned.  Default
        ``max(1e-3, 2 (m + n) / |Omega|)``: about four times the improvement expected from fitting
        noise with one more rank-1 term (m + n parameters for |Omega| observations).
    max_iter : int, default 5000
        Cap on the total number of ASD iterations.
    rng : None, int or numpy.random.Generator, optional
        Source of the random rank-1 terms.

    Returns
    -------
    ASDResult
        ``stop_reason`` is "tol", "stagnation", "max_rank" or "max_iter".

    Raises
    ------
    ValueError
        If some column or row of the mask has no observation, or on invalid parameters.
    """
    Mv, W, scale = _validate(M, mask)
    root = float(np.sqrt(scale))
    m, n = Mv.shape
    col_counts = W.sum(axis=0)
    row_counts = W.sum(axis=1)
    if np.any(col_counts == 0):
        bad = np.flatnonzero(col_counts == 0)
        raise ValueError(
            f"{bad.size} column(s) of the mask have no observation (first: {bad[:5].tolist()}); "
            "every column needs >= 1 observed entry"
        )
    if np.any(row_counts == 0):
        bad = np.flatnonzero(row_counts == 0)
        raise ValueError(
            f"{bad.size} row(s) of the mask have no observation (first: {bad[:5].tolist()})"
        )
    bound = int(min(col_counts.min(), row_counts.min(), m, n))
    r_max = bound if max_rank is None else min(as_int(max_rank, "max_rank", minimum=1), bound)
    inner_iter = as_int(inner_iter, "inner_iter", minimum=1)
    max_iter = as_int(max_iter, "max_iter", minimum=1)
    tol = as_float(tol, "tol", minimum=0.0)
    if stagnation is None:
        stagnation = max(1e-3, 2.0 * (m + n) / int(W.sum()))
    stagnation = as_float(stagnation, "stagnation", minimum=0.0)
    gen = as_rng(rng)

    prob = _Problem(Mv, W)
    X, Y = _spectral_init(Mv, W, 1)
    if not np.any(X) or not np.any(Y):
        X = X + gen.standard_normal((m, 1)) * 1e-3
        Y = Y + gen.standard_normal((1, n)) * 1e-3
    prob.set_factors(X, Y)
    total = 0
    best: ASDResult | None = None
    r = 1
    while True:
        reason = "tol" if prob.rel_residual() <= tol else ""
        while not reason and total < max_iter:
            before = prob.rel_residual()
            done, why = prob.run(min(inner_iter, max_iter - total), tol)
            total += done
            if why in ("tol", "stationary"):
                break
            if before - prob.rel_residual() < _PLATEAU * before:
                break
        Xf, Yf = prob.factors()
        res = prob.rel_residual()
        current = ASDResult(Xf, Yf, r, total, res, bool(res <= tol), "")
        if res <= tol:
            return _with(current, "tol", root=root)
        if best is not None and best.residual - res < stagnation * best.residual:
            return _with(best, "stagnation", total, root=root)
        if total >= max_iter:
            return _with(current, "max_iter", root=root)
        best = current
        if r >= r_max:
            return _with(current, "max_rank", root=root)
        # grow the rank: new term along the top singular pair of the rescaled residual
        # P_Omega(M - XY) / p, plus a small random perturbation (10% of its norm)
        x, y = prob.residual_direction()
        x = x + 0.1 * np.linalg.norm(x) * gen.standard_normal(m) / np.sqrt(m)
        y = y + 0.1 * np.linalg.norm(y) * gen.standard_normal(n) / np.sqrt(n)
        prob.set_factors(np.column_stack([Xf, x]), np.vstack([Yf, y]))
        r += 1


def _with(result: ASDResult, reason: str, n_iter: int | None = None, *, root: float = 1.0) -> ASDResult:
    return ASDResult(
        result.X * root,
        result.Y * root,
        result.rank,
        result.n_iter if n_iter is None else n_iter,
        result.residual,
        result.converged,
        reason,
    )
