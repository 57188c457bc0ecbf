"""Spectral analysis of a (completed) spectromicroscopy stack.

Lerotic et al. (2004) style: a truncated SVD of the stack ``D`` (n_E, n_pix)
gives eigenspectra and eigenimages; k-means on the per-pixel features
``S_k V_k^T`` gives a label map; cluster spectra are the mean spectra of each
cluster's pixels (measured values where measured, the completion elsewhere).

Also the measures used to compare runs and to stop adaptive acquisitions:
permutation matching of cluster spectra (Hungarian algorithm), the relative
completion and spectral variations, and the quality measures of docs/methods.md (Quality measures).

Only numpy, scipy and scikit-learn are imported here (layering rule).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score as _sk_adjusted_rand_score
from sklearn.utils.extmath import randomized_svd

from .linalg._checks import as_rng, is_real_dtype

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
    cluster_centers : ndarray, shape (n_clusters, n_components), or None
        k-means centres in feature coordinates (``S_k V_k^T`` of a pixel), in the order of
        the clusters (row c is cluster c's centre); what ``warm_start`` reuses.
    """

    eigenspectra: np.ndarray
    eigenimages: np.ndarray
    singular_values: np.ndarray
    labels: np.ndarray
    cluster_spectra: np.ndarray
    n_components: int
    n_clusters: int
    cluster_centers: np.ndarray | None = None

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


def _as_float_cube(cube: Any, name: str) -> np.ndarray:
    arr = np.asarray(cube)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3-D array (n_E, n_y, n_x), got shape {arr.shape}")
    if not is_real_dtype(arr):
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


def _uses_randomized_svd(m: int, n: int) -> bool:
    """Whether :func:`_truncated_svd` of an (m, n) matrix takes the randomized branch."""
    return not (m * n <= _SMALL_SIZE or (n <= _GRAM_MAX_ROWS and n < m)) and m > _GRAM_MAX_ROWS


def _factors_of(obj: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(left, right)`` of a factored completion (``left @ right`` is the matrix), else None.

    A factored completion is any object with ``left`` (m, r) and ``right`` (r, n) arrays, e.g. a
    :class:`curiss.linalg.CURResult`; one with ``write_back=True`` is not (its matrix differs from
    the product on the measured entries), nor is a plain array.
    """
    if isinstance(obj, np.ndarray) or getattr(obj, "write_back", False):
        return None
    left, right = getattr(obj, "left", None), getattr(obj, "right", None)
    if left is None or right is None:
        return None
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[0]:
        raise ValueError(
            f"a factored completion needs left (m, r) and right (r, n); got {left.shape} and "
            f"{right.shape}"
        )
    if not (np.all(np.isfinite(left)) and np.all(np.isfinite(right))):
        raise ValueError("the factors of the completion contain NaN/Inf values")
    return left, right


def _unfolded_to_cube(matrix: Any, image_shape: tuple[int, int]) -> np.ndarray:
    """``matrix`` (n_E, n_y*n_x) as (n_E, n_y, n_x); a clear error if the sizes disagree."""
    m = np.asarray(matrix)
    n_y, n_x = (int(v) for v in image_shape)
    if m.ndim != 2 or m.shape[1] != n_y * n_x:
        raise ValueError(f"the completion's matrix has shape {m.shape}; image_shape {(n_y, n_x)} "
                         f"needs (n_E, {n_y * n_x})")
    return m.reshape(m.shape[0], n_y, n_x)


def _dense_of(obj: Any) -> Any:
    """The dense matrix of ``obj`` (a factored completion's ``matrix``/product, or ``obj``)."""
    if isinstance(obj, np.ndarray) or not hasattr(obj, "left"):
        return obj
    if hasattr(obj, "matrix"):
        return obj.matrix
    return np.asarray(obj.left, dtype=np.float64) @ np.asarray(obj.right, dtype=np.float64)


def _factored_svd(
    left: np.ndarray, right: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading ``k`` singular triplets of ``left @ right`` without forming it.

    QR of ``left`` (m, r) and of ``right.T`` (n, r), then the SVD of the small core
    ``R_L R_M^T``: U (m, k), s (k,), Vt (k, n), signs fixed as in :func:`_truncated_svd`.
    Components beyond the rank r get singular value 0, a zero ``Vt`` row and an eigenspectrum
    orthonormal to the others.
    """
    m, r = left.shape
    n = right.shape[1]
    if r == 0:
        q_full = np.eye(m)
        u, s, vt = q_full[:, :k], np.zeros(k), np.zeros((k, n))
        return _sign_fix(u, vt)
    ql, rl = np.linalg.qr(left)  # (m, r1), (r1, r)
    qm, rm = np.linalg.qr(right.T)  # (n, r2), (r2, r)
    uc, sc, vct = np.linalg.svd(rl @ rm.T, full_matrices=False)
    kk = min(k, sc.size)
    u = ql @ uc[:, :kk]
    vt = vct[:kk] @ qm.T
    s = sc[:kk]
    if kk < k:  # the completion has rank < k: pad with orthonormal eigenspectra, zero features
        q_all = np.linalg.qr(np.hstack([u, np.eye(m)]), mode="complete")[0]
        u = np.hstack([u, q_all[:, kk:k]])
        s = np.concatenate([s, np.zeros(k - kk)])
        vt = np.vstack([vt, np.zeros((k - kk, n))])
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
    image_shape: tuple[int, int] | None = None,
    warm_start: SpectralAnalysis | None = None,
) -> SpectralAnalysis:
    """SVD + k-means analysis of a completed stack (Lerotic et al. 2004 style).

    Parameters
    ----------
    cube : array_like, shape (n_E, n_y, n_x), or a factored completion
        Completed stack, optical density; must be finite. A factored completion is an object
        with ``left`` (n_E, r) and ``right`` (r, n_y*n_x) arrays whose product is the completion
        (e.g. a :class:`curiss.linalg.CURResult` without write-back; with write-back its
        ``matrix`` is used). It is analysed without forming the dense stack, in
        O(n_y n_x r^2) time plus one pass over the measured entries, with the same result as
        the dense stack up to rounding. Needs ``image_shape``.
    n_components : int, default 3
        Number of leading SVD components (features per pixel), in
        ``[1, min(n_E, n_y*n_x)]``.
    n_clusters : int, default 4
        Number of k-means clusters, in ``[1, n_y*n_x]``.
    seed : None, int or numpy.random.Generator
        Randomness of the (randomized) SVD and of k-means. With an int the
        result is reproducible.
    mask : array_like of bool, shape (n_E, n_y, n_x) or (n_E, n_y), optional
        True where ``measured`` holds measured values; a 2-D mask marks whole spatial rows
        (``mask[e, y]``: row y measured at energy e). Requires ``measured``.
    measured : array_like, shape (n_E, n_y, n_x), optional
        Measured OD. Cluster spectra average ``measured`` where ``mask`` is True
        and ``cube`` (the completion) elsewhere. If ``mask`` is omitted it is
        taken as ``isfinite(measured)`` (NaN marks unmeasured entries).
    image_shape : (int, int), optional
        ``(n_y, n_x)``; required for a factored ``cube``, checked against an array one.
    warm_start : SpectralAnalysis, optional
        A previous analysis of a similar stack with the same ``n_clusters`` and
        ``n_components``: k-means starts once from its cluster centres (moved into this
        analysis' feature basis) instead of ``n_init`` random restarts. Faster, deterministic,
        but biased towards the previous partition. Ignored when the settings differ.

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
    factors = _factors_of(cube)
    if factors is None:
        dense = _dense_of(cube)
        if dense is not cube:  # a write-back completion: its matrix is (n_E, n_y*n_x)
            if image_shape is None:
                raise ValueError("a factored cube needs image_shape=(n_y, n_x)")
            dense = _unfolded_to_cube(dense, image_shape)
        arr = _as_float_cube(dense, "cube")
        n_e, n_y, n_x = arr.shape
        if image_shape is not None and tuple(image_shape) != (n_y, n_x):
            raise ValueError(f"image_shape {tuple(image_shape)} disagrees with the cube's {(n_y, n_x)}")
    else:
        if image_shape is None:
            raise ValueError("a factored cube needs image_shape=(n_y, n_x)")
        n_y, n_x = (int(v) for v in image_shape)
        n_e = factors[0].shape[0]
        if n_y * n_x != factors[1].shape[1] or n_e < 1 or n_y < 1 or n_x < 1:
            raise ValueError(
                f"image_shape {(n_y, n_x)} does not match the factors' {factors[1].shape[1]} pixels"
            )
    n_pix = n_y * n_x
    k = _check_int(n_components, "n_components", 1, min(n_e, n_pix))
    n_cl = _check_int(n_clusters, "n_clusters", 1, n_pix)
    rng = as_rng(seed, "seed")

    if factors is None:
        values = _mixed_values(arr, mask, measured)
        d = arr.reshape(n_e, n_pix)
        u, s, vt = _truncated_svd(d, k, rng)
    else:
        meas, m = _check_mixed(mask, measured, (n_e, n_y, n_x))
        if _uses_randomized_svd(n_e, n_pix):
            rng.integers(0, 2**31 - 1)  # the draw the dense path's randomized SVD makes
        u, s, vt = _factored_svd(*factors, k)
    features = (s[:, None] * vt).T  # (n_pix, k)

    init = None
    if (warm_start is not None and warm_start.cluster_centers is not None
            and warm_start.cluster_centers.shape == (n_cl, k)
            and warm_start.eigenspectra.shape == (n_e, k)):
        # previous centres in spectral space, then in this analysis' feature basis
        init = (warm_start.cluster_centers @ warm_start.eigenspectra.T) @ u
    if n_cl == 1:
        raw_labels = np.zeros(n_pix, dtype=np.intp)
        centers = features.mean(axis=0, keepdims=True)
    else:
        # pixels whose features differ only by rounding (1e-9 of the largest) are one spectrum:
        # k-means would split them on noise (a uniform film into "clusters")
        scale = float(np.abs(features).max())
        grid = np.round(features / scale * 1e9) if scale > 0 and np.isfinite(scale) else features
        n_distinct = int(np.unique(grid, axis=0).shape[0])
        if n_distinct < n_cl:
            raise ValueError(
                f"the cube has {n_distinct} distinct pixel spectra (to 1e-9 of the largest) for "
                f"n_clusters={n_cl}: k-means cannot find that many clusters; lower n_clusters"
            )
        state = int(rng.integers(0, 2**31 - 1))
        if init is None:
            km = KMeans(n_clusters=n_cl, n_init=_N_INIT, random_state=state)
        else:
            km = KMeans(n_clusters=n_cl, init=init, n_init=1, random_state=state)
        # One OpenMP thread: k-means on a few features per pixel is memory-bound and
        # OpenMP threads spin badly on a loaded 2-core machine (about 20x slower).
        with warnings.catch_warnings(), _single_openmp_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            raw_labels = km.fit_predict(features).astype(np.intp)
        centers = km.cluster_centers_

    counts = np.bincount(raw_labels, minlength=n_cl)
    if np.any(counts == 0):
        raise ValueError(
            f"k-means found only {int(np.count_nonzero(counts))} distinct clusters for "
            f"n_clusters={n_cl}: the cube has too few distinct pixels; lower n_clusters"
        )

    if factors is None:
        v = values.reshape(n_e, n_pix)
        onehot = np.zeros((n_pix, n_cl))
        onehot[np.arange(n_pix), raw_labels] = 1.0
        sums = v @ onehot
    else:
        sums = _factored_cluster_sums(*factors, raw_labels, n_cl, (n_y, n_x), meas, m)
    spectra = sums / counts

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
        cluster_centers=_readonly(np.asarray(centers, dtype=np.float64)[order]),
    )


def _check_mixed(mask: Any, measured: Any, shape: tuple[int, int, int]):
    """Validated ``(measured, mask)`` for the mixed cluster spectra; mask may be 2-D (rows)."""
    if mask is None and measured is None:
        return None, None
    if measured is None:
        raise ValueError("mask was given without measured: pass the measured values too")
    meas = np.asarray(measured, dtype=np.float64)
    if meas.shape != shape:
        raise ValueError(f"measured has shape {meas.shape}, expected the cube's {shape}")
    if mask is None:
        return meas, None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    if m.shape not in (shape, shape[:2]):
        raise ValueError(
            f"mask has shape {m.shape}, expected the cube's {shape} or its rows' {shape[:2]}"
        )
    return meas, m


def _factored_cluster_sums(
    left: np.ndarray,
    right: np.ndarray,
    raw_labels: np.ndarray,
    n_cl: int,
    image_shape: tuple[int, int],
    meas: np.ndarray | None,
    mask: np.ndarray | None,
) -> np.ndarray:
    """Per-cluster sums (n_E, n_cl) of the mixed values of ``left @ right`` (never formed).

    ``left (right onehot)``, plus, energy by energy, the sum per cluster of
    ``measured - completion`` over the measured entries only.
    """
    n_e, r = left.shape
    n_y, n_x = image_shape
    if r:
        mo = np.stack([np.bincount(raw_labels, weights=right[j], minlength=n_cl)
                       for j in range(r)])  # (r, n_cl) = right @ onehot
        sums = left @ mo
    else:
        sums = np.zeros((n_e, n_cl))
    if meas is None:
        return sums
    right3 = right.reshape(r, n_y, n_x)
    lab2 = raw_labels.reshape(n_y, n_x)
    for e in range(n_e):
        if mask is not None and mask.ndim == 2:  # whole spatial rows
            rows = np.flatnonzero(mask[e])
            if rows.size == 0:
                continue
            if rows.size == n_y:
                vals, comp, lab = meas[e].ravel(), left[e] @ right, raw_labels
            else:
                vals = meas[e, rows].ravel()
                comp = (left[e] @ right3[:, rows, :].reshape(r, -1)) if r else np.zeros(vals.size)
                lab = lab2[rows].ravel()
        else:
            me = np.isfinite(meas[e]) if mask is None else mask[e]
            pix = np.flatnonzero(me.ravel())
            if pix.size == 0:
                continue
            vals = meas[e].ravel()[pix]
            comp = (left[e] @ right[:, pix]) if r else np.zeros(pix.size)
            lab = raw_labels[pix]
        if not np.all(np.isfinite(vals)):
            raise ValueError("measured contains NaN/Inf at entries where mask is True")
        sums[e] += np.bincount(lab, weights=vals - comp, minlength=n_cl)
    return sums


def _mixed_values(arr: np.ndarray, mask: Any, measured: Any) -> np.ndarray:
    """Measured values where measured, completion elsewhere (new array or ``arr``)."""
    meas, m = _check_mixed(mask, measured, arr.shape)
    if meas is None:
        return arr
    if m is None:
        m = np.isfinite(meas)
    else:
        if m.ndim == 2:
            m = np.broadcast_to(m[:, :, None], arr.shape)
        if not np.all(np.isfinite(meas[m])):
            raise ValueError("measured contains NaN/Inf at entries where mask is True")
    return np.where(m, meas, arr)


def _real_float(a: Any, name: str) -> np.ndarray:
    """``a`` as float64; complex, bool, text or object arrays are refused (numpy would drop an
    imaginary part with only a warning, read True as 1 or parse text)."""
    arr = np.asarray(a)
    if not is_real_dtype(arr):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _as_spectra(a: Any, name: str) -> np.ndarray:
    arr = _real_float(a, name)
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
    # differences, not |r|^2 + |c|^2 - 2 r.c, which cancels on spectra far from 0
    cost = cdist(ref.T, cand.T, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
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
    previous, current : array_like, same shape (e.g. (n_E, n_y, n_x)), or factored completions
        Successive completed stacks. When both are factored completions (objects with ``left``
        (m, r) and ``right`` (r, n) whose product is the completion, e.g. a
        :class:`curiss.linalg.CURResult` without write-back) the variation is computed from
        the factors, without forming either matrix: a QR of the stacked ``right`` factors
        (n, r_prev + r_cur) reduces both norms to small matrices (no cancellation, so the
        result agrees with the dense one to rounding).

    Returns
    -------
    float
        0 for identical inputs; ``inf`` if ``current`` is zero and differs.
    """
    fp, fc = _factors_of(previous), _factors_of(current)
    if fp is not None and fc is not None:
        return _factored_variation(fp, fc)
    prev, cur = _dense_of(previous), _dense_of(current)
    if (fp is None) != (fc is None):  # one factored (m, n), one dense: compare as matrices
        prev, cur = np.asarray(prev, dtype=np.float64), np.asarray(cur, dtype=np.float64)
        if prev.size == cur.size and prev.ndim != cur.ndim:
            prev, cur = prev.reshape(prev.shape[0], -1), cur.reshape(cur.shape[0], -1)
    return _relative_difference(prev, cur, "completion_variation", ("previous", "current"))


def _factored_variation(previous: tuple, current: tuple) -> float:
    """``||L1 M1 - L0 M0||_F / ||L1 M1||_F`` from the factors (see completion_variation)."""
    (l0, m0), (l1, m1) = previous, current
    shape0, shape1 = (l0.shape[0], m0.shape[1]), (l1.shape[0], m1.shape[1])
    if shape0 != shape1:
        raise ValueError(f"previous {shape0} and current {shape1} differ in shape")
    if l0.shape == l1.shape and m0.shape == m1.shape and np.array_equal(l0, l1) \
            and np.array_equal(m0, m1):
        return 0.0
    r1 = l1.shape[1]
    if r1 + l0.shape[1] == 0:
        return 0.0
    # [M1; M0]^T = Q T  =>  L1 M1 - L0 M0 = (L1 T1^T - L0 T0^T) Q^T, with Q orthonormal
    t = np.linalg.qr(np.concatenate([m1, m0]).T, mode="r")
    cur = l1 @ t[:, :r1].T
    diff = cur - l0 @ t[:, r1:].T
    return _relative(float(np.linalg.norm(diff)), float(np.linalg.norm(cur)))


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

    Raises
    ------
    ValueError
        The two sets differ in shape, ``normalize_post_edge`` selects no energy or an index
        outside the grid, or a spectrum has zero mean over it.
    TypeError
        ``normalize_post_edge`` is neither a slice, a bool mask nor integer indices.
    """
    prev = _as_spectra(previous_spectra, "previous_spectra")
    cur = _as_spectra(current_spectra, "current_spectra")
    if prev.shape != cur.shape:
        raise ValueError(
            f"previous_spectra {prev.shape} and current_spectra {cur.shape} differ in shape"
        )
    if normalize_post_edge is not None and not isinstance(normalize_post_edge, slice):
        idx = np.asarray(normalize_post_edge)
        n_e = cur.shape[0]
        if idx.dtype == np.bool_:
            if idx.shape != (n_e,):
                raise ValueError(
                    f"normalize_post_edge mask must have shape ({n_e},), got {idx.shape}"
                )
        elif idx.ndim == 1 and idx.size == 0:
            raise ValueError("normalize_post_edge selects no energies")
        elif np.issubdtype(idx.dtype, np.integer) and idx.ndim == 1:
            if idx.min() < -n_e or idx.max() >= n_e:
                raise ValueError(f"normalize_post_edge indices must lie in [{-n_e}, {n_e}) for "
                                 f"{n_e} energies; got {idx.tolist()}")
        else:
            raise TypeError("normalize_post_edge must be a slice, a bool mask of shape "
                            f"({n_e},) or a 1-D sequence of integer indices; got {idx!r}")
        normalize_post_edge = idx
    prev = _prepare_spectra(prev, normalize_post_edge, drop_background, "previous_spectra")
    cur = _prepare_spectra(cur, normalize_post_edge, drop_background, "current_spectra")
    perm = match_spectra(cur, prev)
    return _relative(float(np.linalg.norm(cur - prev[:, perm])), float(np.linalg.norm(cur)))


def spectra_error(reference: Any, candidate: Any) -> float:
    """Relative cluster-spectra error after matching (docs/methods.md, Quality measures).

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
    arr = _real_float(a, name)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be a cube (n_E, n_y, n_x) or a matrix (n_E, n_pix)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/Inf values")
    return arr


def signal_error(completed: Any, full: Any, *, k: int = 3) -> float:
    """Signal error ``||D_hat - D_k||_F / ||D_k||_F`` (docs/methods.md, Quality measures).

    Parameters
    ----------
    completed : array_like, shape (n_E, n_y, n_x) or (n_E, n_pix)
        Completed stack ``D_hat``.
    full : array_like, same shape
        Fully measured stack; ``D_k`` is its best rank-``k`` approximation.
    k : int, default 3
        Truncation rank, in ``[1, min(n_E, n_pix)]``.
    """
    sa, sb = np.shape(completed), np.shape(full)
    # the same shape, or a cube and its own unfolded matrix (not two cubes whose images differ
    # in shape but not in size, e.g. transposed)
    if not (sa == sb or (len(sa) == 3 and sb == (sa[0], sa[1] * sa[2]))
            or (len(sb) == 3 and sa == (sb[0], sb[1] * sb[2]))):
        raise ValueError(f"completed {sa} and full {sb} differ in shape")
    dhat = _as_matrix(completed, "completed")
    d = _as_matrix(full, "full")
    if dhat.shape != d.shape:
        raise ValueError(f"completed {sa} and full {sb} differ in shape")
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
    a = _real_float(x, names[0])
    ref = _real_float(reference, names[1])
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
