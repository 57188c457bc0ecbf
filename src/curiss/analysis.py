"""Spectral analysis of a (completed) spectromicroscopy stack.

Lerotic et al. (2004) style: a truncated SVD of the stack ``D`` (n_E, n_pix)
gives eigenspectra and eigenimages; k-means on the per-pixel features
``S_k V_k^T`` gives a label map; cluster spectra are the mean spectra of each
cluster's pixels (measured values where measured, the completion elsewhere).

Also the measures used to compare runs and to stop adaptive acquisitions:
permutation matching of cluster spectra (Hungarian algorithm), the relative
completion and spectral variations, and the quality measures of design §8.

Only numpy, scipy and scikit-learn are imported here (layering rule).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score as _sk_adjusted_rand_score
from sklearn.utils.extmath import randomized_svd

try:  # threadpoolctl is a hard dependency of scikit-learn
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover
    _threadpool_limits = None

__all__ = [
    "SpectralAnalysis",
    "spectral_analysis",
    "match_spectra",
    "completion_variation",
    "spectral_variation",
    "spectra_error",
    "signal_error",
    "raw_error",
    "adjusted_rand",
]

#: k-means restarts (fixed so results depend only on the seed).
_N_INIT = 4
#: Oversampling and power iterations of the randomized SVD.
_OVERSAMPLES = 10
_POWER_ITERATIONS = 4
#: Matrices up to this many entries get an exact LAPACK SVD.
_SMALL_SIZE = 40_000
#: Up to this many energies the SVD goes through the (n_E, n_E) Gram matrix.
_GRAM_MAX_ROWS = 256


@dataclass(frozen=True, eq=False)
class SpectralAnalysis:
    """Result of :func:`spectral_analysis` (all arrays read-only).

    Attributes
    ----------
    eigenspectra : ndarray, shape (n_E, n_components)
        Leading left singular vectors ``U_k`` of ``D`` (orthonormal columns).
        Signs are fixed so that each column's largest-magnitude entry is positive.
    eigenimages : ndarray, shape (n_components, n_y, n_x)
        ``S_k V_k^T`` reshaped to images (same units as the cube, OD).
    singular_values : ndarray, shape (n_components,)
        Leading singular values of ``D``, descending.
    labels : ndarray of int, shape (n_y, n_x)
        Cluster of each pixel, in ``[0, n_clusters)``. Clusters are ordered by
        the mean of their cluster spectrum, ascending (cluster 0 is the
        thinnest, usually the background).
    cluster_spectra : ndarray, shape (n_E, n_clusters)
        Mean spectrum (OD) of each cluster's pixels.
    n_components : int
        Number of SVD components used as features.
    n_clusters : int
        Number of k-means clusters.
    """

    eigenspectra: np.ndarray
    eigenimages: np.ndarray
    singular_values: np.ndarray
    labels: np.ndarray
    cluster_spectra: np.ndarray
    n_components: int
    n_clusters: int

    @property
    def cluster_sizes(self) -> np.ndarray:
        """Number of pixels in each cluster, shape (n_clusters,)."""
        return np.bincount(self.labels.ravel(), minlength=self.n_clusters)


_CONTROLLER = None


def _single_openmp_thread() -> Any:
    """Context holding OpenMP (k-means) to one thread; the controller is built once (~5 ms)."""
    global _CONTROLLER
    if _threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="openmp")


def _rng(seed: Any) -> np.random.Generator:
    if seed is None or isinstance(seed, (int, np.integer, np.random.Generator)):
        if isinstance(seed, bool):
            raise TypeError("seed must be None, an int or a numpy.random.Generator, not bool")
        return np.random.default_rng(seed)
    raise TypeError(
        f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}"
    )


def _as_float_cube(cube: Any, name: str) -> np.ndarray:
    arr = np.asarray(cube)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3-D array (n_E, n_y, n_x), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if min(arr.shape) < 1:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"{name} contains {bad} NaN/Inf value(s); spectral_analysis needs a completed cube"
        )
    return arr


def _check_int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}] for this cube, got {value}")
    return value


def _sign_fix(u: np.ndarray, vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make each column of ``u`` have a positive largest-magnitude entry."""
    idx = np.argmax(np.abs(u), axis=0)
    signs = np.sign(u[idx, np.arange(u.shape[1])])
    signs[signs == 0] = 1.0
    return u * signs, vt * signs[:, None]


def _truncated_svd(
    d: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading ``k`` singular triplets of ``d`` (m, n): U (m, k), s (k,), Vt (k, n).

    * small matrices: exact LAPACK SVD;
    * few rows (m <= _GRAM_MAX_ROWS, the usual n_E << n_pix): eigenvectors of the
      m x m Gram matrix ``d d^T`` give ``U_k`` and ``S_k V_k^T = U_k^T d`` exactly
      (one BLAS pass over ``d``; faster than a randomized SVD for m ~ 100);
    * few columns: exact LAPACK SVD (cost m n^2);
    * otherwise: randomized SVD (Halko et al.) seeded from ``rng``.
    """
    m, n = d.shape
    if d.size <= _SMALL_SIZE or (n <= _GRAM_MAX_ROWS and n < m):
        u, s, vt = np.linalg.svd(d, full_matrices=False)
        u, s, vt = u[:, :k], s[:k], vt[:k]
    elif m <= _GRAM_MAX_ROWS:
        w, vecs = np.linalg.eigh(d @ d.T)
        u = vecs[:, ::-1][:, :k]
        f = u.T @ d  # (k, n) = S_k V_k^T
        s = np.linalg.norm(f, axis=1)
        order = np.argsort(-s, kind="stable")
        u, f, s = u[:, order], f[order], s[order]
        safe = np.where(s > 0, s, 1.0)
        vt = f / safe[:, None]
    else:
        state = int(rng.integers(0, 2**31 - 1))
        u, s, vt = randomized_svd(
            d,
            k,
            n_oversamples=_OVERSAMPLES,
            n_iter=_POWER_ITERATIONS,
            power_iteration_normalizer="QR",
            flip_sign=False,
            random_state=state,
        )
    u, vt = _sign_fix(u, vt)
    return u, s, vt


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def spectral_analysis(
    cube: Any,
    *,
    n_components: int = 3,
    n_clusters: int = 4,
    seed: None | int | np.random.Generator = None,
    mask: Any = None,
    measured: Any = None,
) -> SpectralAnalysis:
    """SVD + k-means analysis of a completed stack (Lerotic et al. 2004 style).

    Parameters
    ----------
    cube : array_like, shape (n_E, n_y, n_x)
        Completed stack, optical density; must be finite.
    n_components : int, default 3
        Number of leading SVD components (features per pixel), in
        ``[1, min(n_E, n_y*n_x)]``.
    n_clusters : int, default 4
        Number of k-means clusters, in ``[1, n_y*n_x]``.
    seed : None, int or numpy.random.Generator
        Randomness of the (randomized) SVD and of k-means. With an int the
        result is reproducible.
    mask : array_like of bool, shape (n_E, n_y, n_x), optional
        True where ``measured`` holds measured values. Requires ``measured``.
    measured : array_like, shape (n_E, n_y, n_x), optional
        Measured OD. Cluster spectra average ``measured`` where ``mask`` is True
        and ``cube`` (the completion) elsewhere. If ``mask`` is omitted it is
        taken as ``isfinite(measured)`` (NaN marks unmeasured entries).

    Returns
    -------
    SpectralAnalysis
        Eigenspectra, eigenimages, singular values, label map and cluster
        spectra; clusters are ordered by mean cluster-spectrum intensity,
        ascending.

    Raises
    ------
    ValueError
        If the cube is not 3-D or has NaN/Inf, if ``n_components`` or
        ``n_clusters`` are out of range, if ``mask``/``measured`` do not match
        the cube, or if the cube has fewer distinct pixels than ``n_clusters``.
    """
    arr = _as_float_cube(cube, "cube")
    n_e, n_y, n_x = arr.shape
    n_pix = n_y * n_x
    k = _check_int(n_components, "n_components", 1, min(n_e, n_pix))
    n_cl = _check_int(n_clusters, "n_clusters", 1, n_pix)
    rng = _rng(seed)

    values = _mixed_values(arr, mask, measured)

    d = arr.reshape(n_e, n_pix)
    u, s, vt = _truncated_svd(d, k, rng)
    features = (s[:, None] * vt).T  # (n_pix, k)

    if n_cl == 1:
        raw_labels = np.zeros(n_pix, dtype=np.intp)
    else:
        km = KMeans(
            n_clusters=n_cl,
            n_init=_N_INIT,
            random_state=int(rng.integers(0, 2**31 - 1)),
        )
        # One OpenMP thread: k-means on a few features per pixel is memory-bound and
        # OpenMP threads spin badly on a loaded 2-core machine (about 20x slower).
        with warnings.catch_warnings(), _single_openmp_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            raw_labels = km.fit_predict(features).astype(np.intp)

    counts = np.bincount(raw_labels, minlength=n_cl)
    if np.any(counts == 0):
        raise ValueError(
            f"k-means found only {int(np.count_nonzero(counts))} distinct clusters for "
            f"n_clusters={n_cl}: the cube has too few distinct pixels; lower n_clusters"
        )

    v = values.reshape(n_e, n_pix)
    onehot = np.zeros((n_pix, n_cl))
    onehot[np.arange(n_pix), raw_labels] = 1.0
    spectra = (v @ onehot) / counts

    # Deterministic cluster order: mean intensity ascending, ties by first pixel.
    first_pixel = np.array([np.argmax(raw_labels == c) for c in range(n_cl)])
    order = np.lexsort((first_pixel, spectra.mean(axis=0)))
    relabel = np.empty(n_cl, dtype=np.intp)
    relabel[order] = np.arange(n_cl)
    labels = relabel[raw_labels].reshape(n_y, n_x)

    return SpectralAnalysis(
        eigenspectra=_readonly(u),
        eigenimages=_readonly(features.T.reshape(k, n_y, n_x)),
        singular_values=_readonly(s),
        labels=_readonly(labels),
        cluster_spectra=_readonly(spectra[:, order]),
        n_components=k,
        n_clusters=n_cl,
    )


def _mixed_values(arr: np.ndarray, mask: Any, measured: Any) -> np.ndarray:
    """Measured values where measured, completion elsewhere (new array or ``arr``)."""
    if mask is None and measured is None:
        return arr
    if measured is None:
        raise ValueError("mask was given without measured: pass the measured values too")
    meas = np.asarray(measured, dtype=np.float64)
    if meas.shape != arr.shape:
        raise ValueError(f"measured has shape {meas.shape}, expected the cube's {arr.shape}")
    if mask is None:
        m = np.isfinite(meas)
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
        if m.shape != arr.shape:
            raise ValueError(f"mask has shape {m.shape}, expected the cube's {arr.shape}")
        if not np.all(np.isfinite(meas[m])):
            raise ValueError("measured contains NaN/Inf at entries where mask is True")
    return np.where(m, meas, arr)


def _as_spectra(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_E, n_clusters), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/Inf values")
    return arr


def match_spectra(reference: Any, candidate: Any) -> np.ndarray:
    """Column permutation of ``candidate`` that best matches ``reference``.

    Solves the assignment problem on squared Euclidean distances between
    columns (Hungarian algorithm), which minimises
    ``||reference - candidate[:, perm]||_F``.

    Parameters
    ----------
    reference : array_like, shape (n_E, n_a)
        Reference spectra (one per column).
    candidate : array_like, shape (n_E, n_b), n_b >= n_a
        Spectra to reorder.

    Returns
    -------
    perm : ndarray of int, shape (n_a,)
        ``candidate[:, perm]`` is column-wise matched to ``reference``
        (a permutation when ``n_b == n_a``).
    """
    ref = _as_spectra(reference, "reference")
    cand = _as_spectra(candidate, "candidate")
    if ref.shape[0] != cand.shape[0]:
        raise ValueError(
            f"reference and candidate must have the same number of energies, "
            f"got {ref.shape[0]} and {cand.shape[0]}"
        )
    if cand.shape[1] < ref.shape[1]:
        raise ValueError(
            f"candidate has {cand.shape[1]} columns, fewer than the reference's {ref.shape[1]}"
        )
    cost = (
        np.sum(ref**2, axis=0)[:, None]
        + np.sum(cand**2, axis=0)[None, :]
        - 2.0 * ref.T @ cand
    )
    rows, cols = linear_sum_assignment(np.maximum(cost, 0.0))
    perm = np.empty(ref.shape[1], dtype=np.intp)
    perm[rows] = cols
    return perm


def _relative(diff_norm: float, ref_norm: float) -> float:
    if ref_norm == 0.0:
        return 0.0 if diff_norm == 0.0 else float("inf")
    return float(diff_norm / ref_norm)


def completion_variation(previous: Any, current: Any) -> float:
    """Relative change between two completions, ``||cur - prev||_F / ||cur||_F``.

    Parameters
    ----------
    previous, current : array_like, same shape (e.g. (n_E, n_y, n_x))
        Successive completed stacks.

    Returns
    -------
    float
        0 for identical inputs; ``inf`` if ``current`` is zero and differs.
    """
    return _relative_difference(previous, current, "completion_variation", ("previous", "current"))


def _prepare_spectra(
    spectra: np.ndarray, normalize_post_edge: Any, drop_background: bool, name: str
) -> np.ndarray:
    s = spectra
    if drop_background:
        if s.shape[1] < 2:
            raise ValueError(f"drop_background needs at least 2 clusters in {name}")
        s = np.delete(s, int(np.argmin(s.mean(axis=0))), axis=1)
    if normalize_post_edge is not None:
        sel = s[normalize_post_edge]
        if sel.ndim != 2 or sel.shape[0] == 0:
            raise ValueError("normalize_post_edge selects no energies")
        means = sel.mean(axis=0)
        if np.any(means == 0):
            raise ValueError(
                f"a spectrum of {name} has zero mean over the post-edge energies; "
                "cannot normalise"
            )
        s = s / means
    return s


def spectral_variation(
    previous_spectra: Any,
    current_spectra: Any,
    *,
    normalize_post_edge: Any = None,
    drop_background: bool = False,
) -> float:
    """Relative change of cluster spectra after Hungarian matching.

    ``||S_cur - S_prev[:, perm]||_F / ||S_cur||_F`` with ``perm`` from
    :func:`match_spectra` (invariant to reordering of either set's columns).

    Parameters
    ----------
    previous_spectra, current_spectra : array_like, shape (n_E, n_clusters)
        Cluster spectra of two successive iterations.
    normalize_post_edge : slice or array_like of bool/int, optional
        Energy indices over which each spectrum is divided by its mean before
        comparing (the authors' variant).
    drop_background : bool, default False
        Remove the cluster with the smallest mean spectrum from each set first
        (before any normalisation; the authors' variant).

    Returns
    -------
    float
        Relative spectral variation (0 for identical inputs).
    """
    prev = _as_spectra(previous_spectra, "previous_spectra")
    cur = _as_spectra(current_spectra, "current_spectra")
    if prev.shape != cur.shape:
        raise ValueError(
            f"previous_spectra {prev.shape} and current_spectra {cur.shape} differ in shape"
        )
    if normalize_post_edge is not None and not isinstance(normalize_post_edge, slice):
        idx = np.asarray(normalize_post_edge)
        if idx.dtype == np.bool_ and idx.shape != (cur.shape[0],):
            raise ValueError(
                f"normalize_post_edge mask must have shape ({cur.shape[0]},), got {idx.shape}"
            )
        normalize_post_edge = idx
    prev = _prepare_spectra(prev, normalize_post_edge, drop_background, "previous_spectra")
    cur = _prepare_spectra(cur, normalize_post_edge, drop_background, "current_spectra")
    perm = match_spectra(cur, prev)
    return _relative(float(np.linalg.norm(cur - prev[:, perm])), float(np.linalg.norm(cur)))


def spectra_error(reference: Any, candidate: Any) -> float:
    """Relative cluster-spectra error after matching (design §8).

    ``||R - C[:, perm]||_F / ||R||_F`` with ``perm = match_spectra(R, C)``.

    Parameters
    ----------
    reference : array_like, shape (n_E, n_clusters)
        Reference spectra (e.g. from the fully measured stack or the truth).
    candidate : array_like, shape (n_E, n_clusters)
        Spectra to evaluate.
    """
    ref = _as_spectra(reference, "reference")
    cand = _as_spectra(candidate, "candidate")
    if ref.shape != cand.shape:
        raise ValueError(f"reference {ref.shape} and candidate {cand.shape} differ in shape")
    perm = match_spectra(ref, cand)
    return _relative(float(np.linalg.norm(ref - cand[:, perm])), float(np.linalg.norm(ref)))


def _as_matrix(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be a cube (n_E, n_y, n_x) or a matrix (n_E, n_pix)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/Inf values")
    return arr


def signal_error(completed: Any, full: Any, *, k: int = 3) -> float:
    """Signal error ``||D_hat - D_k||_F / ||D_k||_F`` (design §8).

    Parameters
    ----------
    completed : array_like, shape (n_E, n_y, n_x) or (n_E, n_pix)
        Completed stack ``D_hat``.
    full : array_like, same shape
        Fully measured stack; ``D_k`` is its best rank-``k`` approximation.
    k : int, default 3
        Truncation rank, in ``[1, min(n_E, n_pix)]``.
    """
    dhat = _as_matrix(completed, "completed")
    d = _as_matrix(full, "full")
    if dhat.shape != d.shape:
        raise ValueError(f"completed {np.shape(completed)} and full {np.shape(full)} differ")
    k = _check_int(k, "k", 1, min(d.shape))
    u, s, vt = np.linalg.svd(d, full_matrices=False)
    dk = (u[:, :k] * s[:k]) @ vt[:k]
    return _relative(float(np.linalg.norm(dhat - dk)), float(np.linalg.norm(dk)))


def raw_error(completed: Any, full: Any) -> float:
    """Raw error ``||D_hat - D||_F / ||D||_F`` against the full measurement.

    Parameters
    ----------
    completed, full : array_like, same shape
        Completed and fully measured stacks (any matching shape).
    """
    return _relative_difference(completed, full, "raw_error", ("completed", "full"))


def _relative_difference(x: Any, reference: Any, what: str, names: tuple[str, str]) -> float:
    """||x − reference||_F / ||reference||_F with shape and finiteness checks."""
    a = np.asarray(x, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if a.shape != ref.shape:
        raise ValueError(f"{names[0]} {a.shape} and {names[1]} {ref.shape} differ in shape")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(ref))):
        raise ValueError(f"{what} inputs contain NaN/Inf")
    return _relative(float(np.linalg.norm(ref - a)), float(np.linalg.norm(ref)))


def adjusted_rand(labels_a: Any, labels_b: Any) -> float:
    """Adjusted Rand index of two label maps (any matching shape, e.g. (n_y, n_x)).

    Thin wrapper of :func:`sklearn.metrics.adjusted_rand_score` that accepts
    label images; 1.0 means identical partitions up to relabelling.
    """
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    return float(_sk_adjusted_rand_score(a.ravel(), b.ravel()))
