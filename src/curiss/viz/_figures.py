"""Static matplotlib figures of an acquisition and its analysis.

Every function takes plain arrays (so it works from a :class:`curiss.store.RunData`, a
:class:`curiss.Acquisition` or a planner) and returns a :class:`matplotlib.figure.Figure` built with
the object-oriented API (no pyplot state: works headless with the Agg canvas).

Each main axes carries a label (``Axes.get_label()``) naming its role, e.g. ``"sampling"``,
``"ratio"``, ``"clusters"``; colorbar axes are labelled ``"<colorbar>"`` by matplotlib.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..analysis import match_spectra

__all__ = [
    "plot_sampling",
    "plot_energies",
    "plot_eigen",
    "plot_clusters",
    "plot_error_map",
    "match_references",
    "sampling_steps",
    "pixel_relative_error",
]


# ----------------------------------------------------------------------------- input checks
def _energies(energies: Any, name: str = "energies") -> np.ndarray:
    e = np.asarray(energies, dtype=float)
    if e.ndim != 1 or e.size < 1:
        raise ValueError(f"{name} must be a 1-D array of energies (eV); got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"{name} must be finite")
    return e


def _n_rows(shape_or_n: Any) -> int:
    if isinstance(shape_or_n, numbers.Integral) and not isinstance(shape_or_n, bool):
        n = int(shape_or_n)
    else:
        try:
            parts = [int(s) for s in shape_or_n]
        except (TypeError, ValueError):
            raise TypeError(f"shape_or_n must be n_y (int) or the raster shape (n_y, n_x); "
                            f"got {shape_or_n!r}") from None
        if len(parts) != 2:
            raise ValueError(f"shape_or_n must be n_y (int) or the raster shape (n_y, n_x); "
                             f"got {shape_or_n!r}")
        n = parts[0]
    if n < 1:
        raise ValueError(f"the number of spatial rows must be >= 1; got {shape_or_n!r}")
    return n


def _order(order: Any, n_e: int, n_y: int) -> np.ndarray:
    o = np.asarray(order)
    if o.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if o.ndim != 2 or o.shape[1] != 2:
        raise ValueError(f"order must be (energy_index, row_index) pairs, shape (n_rows, 2); "
                         f"got shape {o.shape}")
    if not np.issubdtype(o.dtype, np.integer):
        if not (np.all(np.isfinite(o)) and np.all(o == np.round(o))):
            raise TypeError("order must hold integer (energy_index, row_index) pairs")
    o = o.astype(np.int64)
    bad = (o[:, 0] < 0) | (o[:, 0] >= n_e) | (o[:, 1] < 0) | (o[:, 1] >= n_y)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"order[{i}] = {o[i].tolist()} is out of range for {n_e} energies and "
                         f"{n_y} spatial rows")
    return o


def _history_pairs(entry: dict, n_e: int, n_y: int) -> np.ndarray:
    """The (energy_index, row_index) pairs a history entry requested, shape (n, 2)."""
    req = entry.get("request")
    if req is not None:
        r = np.asarray(req)
        if r.shape != (n_e, n_y):
            raise ValueError(f"a history entry's 'request' must have shape (n_E, n_y) = "
                             f"({n_e}, {n_y}); got {r.shape}")
        return np.argwhere(r.astype(bool))
    pairs = entry.get("pairs")
    if pairs is None:
        raise ValueError("each history entry needs 'request' (n_E, n_y) bool or 'pairs' (n, 2)")
    return _order(pairs, n_e, n_y)


def sampling_steps(order: Any, shape_or_n: Any, n_energies: int, *,
                   history: Sequence[dict] | None = None) -> np.ndarray:
    """Step at which each spatial row was first measured.

    Parameters
    ----------
    order : array_like of int, shape (n_rows, 2)
        Measured ``(energy_index, row_index)`` pairs in acquisition order.
    shape_or_n : int or (int, int)
        ``n_y`` or the raster shape ``(n_y, n_x)``.
    n_energies : int
        Number of energies ``n_E``.
    history : list of dict, optional
        Planner decisions (``request`` (n_E, n_y) bool or ``pairs`` (n, 2), optional
        ``iteration``). When given, the step of a row is the ``iteration`` (default: the position
        in ``history``) of the first decision that requested it; otherwise it is the row's position
        in ``order``.

    Returns
    -------
    ndarray of float, shape (n_E, n_y)
        The step of each measured row; NaN where never measured.

    Raises
    ------
    ValueError
        Malformed inputs, or a measured row that no decision of ``history`` requested.
    """
    n_y = _n_rows(shape_or_n)
    n_e = int(n_energies)
    o = _order(order, n_e, n_y)
    steps = np.full((n_e, n_y), np.nan)
    if history is None:
        # first measurement of each row: assign in reverse so earlier indices win
        idx = np.arange(len(o), dtype=float)
        steps[o[::-1, 0], o[::-1, 1]] = idx[::-1]
        return steps
    decision = np.full((n_e, n_y), np.nan)
    for i, entry in enumerate(history):
        pairs = _history_pairs(entry, n_e, n_y)
        if len(pairs) == 0:
            continue
        it = entry.get("iteration", i)
        it = i if it is None or not np.isfinite(float(it)) else float(it)
        sub = decision[pairs[:, 0], pairs[:, 1]]
        decision[pairs[:, 0], pairs[:, 1]] = np.where(np.isnan(sub), it, sub)
    measured = np.zeros((n_e, n_y), dtype=bool)
    measured[o[:, 0], o[:, 1]] = True
    missing = measured & np.isnan(decision)
    if np.any(missing):
        e, y = np.argwhere(missing)[0]
        raise ValueError(f"row (energy_index={e}, row_index={y}) was measured but no decision of "
                         "history requested it: history and order do not belong together")
    steps[measured] = decision[measured]
    return steps


def _energy_formatter(energies: np.ndarray) -> FuncFormatter:
    def fmt(v, _pos):
        i = int(round(v))
        return f"{energies[i]:.1f}" if 0 <= i < energies.size and abs(v - i) < 1e-6 else ""
    return FuncFormatter(fmt)


# ----------------------------------------------------------------------------- sampling
def plot_sampling(order: Any, shape_or_n: Any, energies: Any, *,
                  history: Sequence[dict] | None = None) -> Figure:
    """The sampling pattern over time.

    Left: an (energy × spatial row) image whose value is the step at which each row was measured
    (blank where never measured). Right: the sampling ratio (fraction of the stack measured) after
    each step.

    Parameters
    ----------
    order : array_like of int, shape (n_rows, 2)
        Measured ``(energy_index, row_index)`` pairs in acquisition order.
    shape_or_n : int or (int, int)
        ``n_y`` or the raster shape ``(n_y, n_x)``.
    energies : array_like, shape (n_E,)
        Energies (eV), used to label the energy axis.
    history : list of dict, optional
        Planner decisions; when given a step is a decision (see :func:`sampling_steps`),
        otherwise it is one measured row.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"sampling"`` (image of shape (n_E, n_y): the steps, NaN where not measured),
        its colorbar and ``"ratio"`` (one point per step).
    """
    e = _energies(energies)
    n_y = _n_rows(shape_or_n)
    steps = sampling_steps(order, n_y, e.size, history=history)
    unit = "decision" if history is not None else "measured row"

    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    ax, axr = fig.subplots(1, 2, width_ratios=[1.3, 1.0])
    ax.set_label("sampling")
    axr.set_label("ratio")
    finite = steps[np.isfinite(steps)]
    vmax = float(finite.max()) if finite.size else 1.0
    im = ax.imshow(steps, origin="lower", aspect="auto", interpolation="nearest",
                   cmap="viridis", vmin=float(finite.min()) if finite.size else 0.0,
                   vmax=max(vmax, 1e-12))
    ax.set_xlabel("spatial row index y")
    ax.set_ylabel("energy (eV)")
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_formatter(_energy_formatter(e))
    ax.set_facecolor("0.92")
    ratio = finite.size / steps.size
    ax.set_title(f"measured rows coloured by {unit} ({finite.size} rows, ratio {ratio:.3f})")
    fig.colorbar(im, ax=ax, label=f"{unit} index")

    if finite.size:
        x = np.unique(finite)
        counts = np.searchsorted(np.sort(finite), x, side="right")
        axr.plot(x, counts / steps.size, marker="o" if x.size <= 60 else None, ms=3,
                 drawstyle="steps-post", label="measured so far")
    axr.set_xlabel(f"{unit} index")
    axr.set_ylabel("sampling ratio")
    axr.set_ylim(bottom=0.0)
    axr.grid(True, alpha=0.3)
    axr.set_title("sampling ratio vs step")
    return fig


# ----------------------------------------------------------------------------- energies
def plot_energies(energies: Any, mean_spectrum: Any, imaged_energy_indices: Any, *,
                  energy_weights: Any = None) -> Figure:
    """Energies chosen for full images against the mean spectrum.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        Energies (eV).
    mean_spectrum : array_like, shape (n_E,)
        Mean optical density over pixels (NaN allowed where unknown).
    imaged_energy_indices : array_like of int, shape (k,)
        Indices of the energies imaged in full.
    energy_weights : array_like, shape (n_E,), optional
        Sampling weights of the energies (e.g. dictionary leverage scores), drawn on a second
        y axis.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"spectrum"`` (lines ``"mean spectrum"`` and ``"imaged"``, the markers at the imaged
        energies) and, with weights, ``"weights"`` (a twin y axis; line ``"energy weights"``).
    """
    e = _energies(energies)
    s = np.asarray(mean_spectrum, dtype=float)
    if s.shape != e.shape:
        raise ValueError(f"mean_spectrum must have shape (n_E,) = {e.shape}; got {s.shape}")
    idx = np.asarray(imaged_energy_indices)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"imaged_energy_indices must be integer indices; got dtype {idx.dtype}")
    idx = idx.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= e.size):
        raise ValueError(f"imaged_energy_indices must be in [0, {e.size}); got "
                         f"{idx[(idx < 0) | (idx >= e.size)][:5].tolist()}")
    idx = np.unique(idx)
    w = None
    if energy_weights is not None:
        w = np.asarray(energy_weights, dtype=float)
        if w.shape != e.shape:
            raise ValueError(f"energy_weights must have shape (n_E,) = {e.shape}; got {w.shape}")

    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_label("spectrum")
    ax.plot(e, s, color="C0", label="mean spectrum")
    for i in idx:
        ax.axvline(e[i], color="C3", lw=0.6, alpha=0.35)
    ax.plot(e[idx], s[idx], ls="none", marker="v", color="C3", ms=6,
            label=f"imaged ({idx.size} energies)")
    ax.set_xlabel("energy (eV)")
    ax.set_ylabel("mean optical density")
    ax.set_title("energies imaged in full")
    handles, labels = ax.get_legend_handles_labels()
    if w is not None:
        axw = ax.twinx()
        axw.set_label("weights")
        axw.plot(e, w, color="C2", lw=1.0, alpha=0.8, drawstyle="steps-mid", label="energy weights")
        axw.set_ylabel("sampling weight")
        axw.set_ylim(bottom=0.0)
        h2, l2 = axw.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best", fontsize="small")
    return fig


# ----------------------------------------------------------------------------- eigen
def plot_eigen(eigenspectra: Any, eigenimages: Any, *, energies: Any = None,
               singular_values: Any = None) -> Figure:
    """Eigenimages (top row) and eigenspectra (bottom row) of an SVD of the stack.

    Parameters
    ----------
    eigenspectra : array_like, shape (n_E, k)
        Left singular vectors (one spectrum per column).
    eigenimages : array_like, shape (k, n_y, n_x)
        ``S_k V_k^T`` as images (OD).
    energies : array_like, shape (n_E,), optional
        Energies (eV) for the spectra's x axis (default: the energy index).
    singular_values : array_like, shape (k,), optional
        Shown in the titles.

    Returns
    -------
    matplotlib.figure.Figure
        For each component ``i``: axes ``"eigenimage i"`` (with a colorbar) and
        ``"eigenspectrum i"`` — ``3 k`` axes in all.
    """
    u = np.asarray(eigenspectra, dtype=float)
    if u.ndim != 2 or u.shape[1] < 1:
        raise ValueError(f"eigenspectra must have shape (n_E, k), k >= 1; got {u.shape}")
    img = np.asarray(eigenimages, dtype=float)
    if img.ndim != 3 or img.shape[0] != u.shape[1]:
        raise ValueError(f"eigenimages must have shape (k, n_y, n_x) with k = {u.shape[1]} "
                         f"(eigenspectra's columns); got {img.shape}")
    k = u.shape[1]
    x = np.arange(u.shape[0], dtype=float) if energies is None else _energies(energies)
    if x.shape != (u.shape[0],):
        raise ValueError(f"energies must have shape (n_E,) = ({u.shape[0]},); got {x.shape}")
    sv = None
    if singular_values is not None:
        sv = np.asarray(singular_values, dtype=float).ravel()
        if sv.shape != (k,):
            raise ValueError(f"singular_values must have shape ({k},); got {sv.shape}")

    fig = Figure(figsize=(3.2 * k + 0.6, 6.0), layout="constrained")
    axes = fig.subplots(2, k, squeeze=False, height_ratios=[1.2, 1.0])
    for i in range(k):
        ax, axs = axes[0, i], axes[1, i]
        ax.set_label(f"eigenimage {i}")
        axs.set_label(f"eigenspectrum {i}")
        lim = float(np.nanmax(np.abs(img[i]))) if np.any(np.isfinite(img[i])) else 1.0
        im = ax.imshow(img[i], cmap="RdBu_r", vmin=-lim or -1.0, vmax=lim or 1.0,
                       interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        title = f"component {i}"
        if sv is not None:
            title += f" (σ = {sv[i]:.3g})"
        ax.set_title(title, fontsize="medium")
        fig.colorbar(im, ax=ax, shrink=0.8)
        axs.plot(x, u[:, i], color=f"C{i % 10}")
        axs.axhline(0.0, color="0.6", lw=0.6)
        axs.set_xlabel("energy (eV)" if energies is not None else "energy index")
        if i == 0:
            axs.set_ylabel("eigenspectrum")
    return fig


# ----------------------------------------------------------------------------- clusters
def _cluster_cmap(n: int) -> ListedColormap:
    if n <= 10:
        colors = [to_rgba(f"C{i}") for i in range(n)]
    else:  # more clusters than the default cycle: spread over a continuous map
        colors = [matplotlib.colormaps["turbo"](i / (n - 1)) for i in range(n)]
    return ListedColormap(colors, name="curiss_clusters")


def _shape_columns(a: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm (their shape only: Pearson correlation)."""
    c = a - a.mean(axis=0)
    n = np.linalg.norm(c, axis=0)
    return c / np.where(n > 0, n, 1.0)


def _check_dpi(dpi: Any) -> float:
    """``dpi`` as a positive finite float (a bool or a string is refused, not coerced)."""
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 0 < float(dpi) < np.inf:
        raise ValueError(f"dpi must be a positive number of dots per inch, got {dpi!r}")
    return float(dpi)


def match_references(cluster_spectra: Any, references: Any) -> list[tuple[int, int, float, float]]:
    """Pair cluster spectra with reference spectra, each reference scaled by least squares.

    Matching is the Hungarian assignment (:func:`curiss.analysis.match_spectra`) on the spectra
    centred and scaled to unit norm, so that it compares shapes only (the squared distance is
    ``2 − 2ρ``, ρ the Pearson correlation): a thicker or thinner region of the same material, or
    a constant pre-edge offset, still matches its reference, and a flat background does not
    attract one. Each matched reference is then scaled to its cluster spectrum by least squares.

    Parameters
    ----------
    cluster_spectra : array_like, shape (n_E, n_clusters)
    references : array_like, shape (n_E, n_refs)

    Returns
    -------
    list of (cluster, reference, scale, relative_residual)
        One entry per matched pair (``min(n_clusters, n_refs)`` of them), sorted by cluster;
        ``relative_residual = ||s − scale·r|| / ||s||`` (NaN for a zero spectrum).

    Raises
    ------
    ValueError
        The two do not share n_E, or either contains NaN/Inf (the message names which).
    """
    s = np.asarray(cluster_spectra, dtype=float)
    r = np.asarray(references, dtype=float)
    if s.ndim != 2 or r.ndim != 2 or s.shape[0] != r.shape[0]:
        raise ValueError(f"cluster_spectra (n_E, n_clusters) and references (n_E, n_refs) must "
                         f"share n_E; got {s.shape} and {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("references contain NaN/Inf values")
    if not np.all(np.isfinite(s)):
        raise ValueError("cluster_spectra contain NaN/Inf values")
    sn, rn = _shape_columns(s), _shape_columns(r)
    if r.shape[1] >= s.shape[1]:
        perm = match_spectra(sn, rn)
        pairs = [(c, int(perm[c])) for c in range(s.shape[1])]
    else:
        perm = match_spectra(rn, sn)
        pairs = sorted((int(perm[j]), j) for j in range(r.shape[1]))
    out = []
    for c, j in pairs:
        rr = float(r[:, j] @ r[:, j])
        a = float(r[:, j] @ s[:, c]) / rr if rr > 0 else 0.0
        ns = float(np.linalg.norm(s[:, c]))
        res = float(np.linalg.norm(s[:, c] - a * r[:, j])) / ns if ns > 0 else float("nan")
        out.append((c, j, a, res))
    return out


def plot_clusters(labels: Any, cluster_spectra: Any, energies: Any, *, references: Any = None,
                  reference_names: Sequence[str] | None = None) -> Figure:
    """Cluster map and cluster spectra, optionally with their best-matching references.

    Parameters
    ----------
    labels : array_like of int, shape (n_y, n_x)
        Cluster of each pixel, in ``[0, n_clusters)``.
    cluster_spectra : array_like, shape (n_E, n_clusters)
        Spectrum (OD) of each cluster.
    energies : array_like, shape (n_E,)
        Energies (eV).
    references : array_like, shape (n_E, n_refs), optional
        Reference spectra on the same energies; each cluster is paired with one reference by
        Hungarian matching and the reference, scaled by least squares, is drawn dashed
        (see :func:`match_references`).
    reference_names : sequence of str, optional
        One name per reference (default ``"reference j"``).

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"clusters"`` (the label map image) and ``"spectra"`` (line ``gid``
        ``"cluster c"`` per cluster, ``"reference c"`` for the reference matched to cluster c).
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be an (n_y, n_x) map; got shape {lab.shape}")
    if lab.size and not np.issubdtype(lab.dtype, np.integer):
        if not (np.all(np.isfinite(lab)) and np.all(lab == np.round(lab))):
            raise TypeError(f"labels must be integers; got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    e = _energies(energies)
    s = np.asarray(cluster_spectra, dtype=float)
    if s.ndim != 2 or s.shape[0] != e.size:
        raise ValueError(f"cluster_spectra must have shape (n_E={e.size}, n_clusters); "
                         f"got {s.shape}")
    n_c = s.shape[1]
    if lab.size and (lab.min() < 0 or lab.max() >= n_c):
        raise ValueError(f"labels must be in [0, {n_c}) (one column of cluster_spectra each); "
                         f"got values in [{lab.min()}, {lab.max()}]")
    matches: list[tuple[int, int, float, float]] = []
    names: list[str] = []
    if references is not None:
        ref = np.asarray(references, dtype=float)
        if ref.ndim == 1:
            ref = ref[:, None]
        if ref.ndim != 2 or ref.shape[0] != e.size:
            raise ValueError(f"references must have shape (n_E={e.size}, n_refs) on the stack's "
                             f"energies; got {np.shape(references)}")
        names = ([f"reference {j}" for j in range(ref.shape[1])] if reference_names is None
                 else [str(n) for n in reference_names])
        if len(names) != ref.shape[1]:
            raise ValueError(f"reference_names must have one name per reference ({ref.shape[1]}); "
                             f"got {len(names)}")
        matches = match_references(s, ref)
    elif reference_names is not None:
        raise ValueError("reference_names given without references")

    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    ax, axs = fig.subplots(1, 2, width_ratios=[1.0, 1.3])
    ax.set_label("clusters")
    axs.set_label("spectra")
    cmap = _cluster_cmap(n_c)
    ax.imshow(lab, cmap=cmap, vmin=-0.5, vmax=n_c - 0.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"cluster map ({n_c} clusters)")
    sizes = np.bincount(lab.ravel(), minlength=n_c)
    for c in range(n_c):
        (line,) = axs.plot(e, s[:, c], color=cmap(c), lw=1.6,
                           label=f"cluster {c} ({sizes[c]} px)")
        line.set_gid(f"cluster {c}")
    for c, j, a, res in matches:
        (line,) = axs.plot(e, a * ref[:, j], color=cmap(c), lw=1.0, ls="--",
                           label=f"{names[j]} ×{a:.3g} (resid {res:.0%})")
        line.set_gid(f"reference {c}")
    axs.set_xlabel("energy (eV)")
    axs.set_ylabel("optical density")
    axs.set_title("cluster spectra" + (" and matched references" if matches else ""))
    axs.legend(fontsize="small", loc="best")
    return fig


# ----------------------------------------------------------------------------- error
_NORMALIZE = ("rms", "pixel")


def pixel_relative_error(completed: Any, truth: Any, *, normalize: str = "rms") -> np.ndarray:
    """Error of each pixel's spectrum relative to the truth.

    Parameters
    ----------
    completed, truth : array_like, shape (n_E, n_y, n_x)
        Completed and true stacks (OD), finite.
    normalize : {"rms", "pixel"}
        ``"rms"`` (default): ``‖d̂_p − d_p‖ / sqrt(mean_q ‖d_q‖²)``, the error relative to the
        root-mean-square pixel spectrum, defined everywhere (also on an empty background), and
        the root-mean-square of the map is the global error ``‖D̂ − D‖_F / ‖D‖_F``.
        ``"pixel"``: ``‖d̂_p − d_p‖ / ‖d_p‖``, NaN where the true spectrum is zero.

    Returns
    -------
    ndarray, shape (n_y, n_x)
    """
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}; got {normalize!r}")
    c = np.asarray(completed, dtype=float)
    t = np.asarray(truth, dtype=float)
    if c.ndim != 3:
        raise ValueError(f"completed must have shape (n_E, n_y, n_x); got {c.shape}")
    if t.shape != c.shape:
        raise ValueError(f"truth must have the completed cube's shape {c.shape}; got {t.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(t))):
        raise ValueError("completed and truth must be finite (a completed cube, a known truth)")
    num = np.linalg.norm(c - t, axis=0)
    if normalize == "rms":
        rms = float(np.sqrt(np.mean(np.sum(t * t, axis=0))))
        return num / rms if rms > 0 else np.full(num.shape, np.nan)
    den = np.linalg.norm(t, axis=0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def plot_error_map(completed: Any, truth: Any, *, normalize: str = "rms") -> Figure:
    """Per-pixel relative error of a completion against a known truth, and its histogram.

    Parameters
    ----------
    completed, truth : array_like, shape (n_E, n_y, n_x)
        Completed and true (noise-free or fully measured) stacks, OD.
    normalize : {"rms", "pixel"}
        Denominator of the per-pixel error, see :func:`pixel_relative_error`.

    Returns
    -------
    matplotlib.figure.Figure
        Axes ``"error map"`` (image (n_y, n_x) of :func:`pixel_relative_error`; colour scale
        clipped at its 99th percentile), its colorbar and ``"histogram"``. The title gives the
        global error ``‖D̂ − D‖_F / ‖D‖_F``.
    """
    err = pixel_relative_error(completed, truth, normalize=normalize)
    c = np.asarray(completed, dtype=float)
    t = np.asarray(truth, dtype=float)
    tn = float(np.linalg.norm(t))
    glob = float(np.linalg.norm(c - t)) / tn if tn > 0 else float("nan")
    finite = err[np.isfinite(err)]
    label = "‖d̂ₚ − dₚ‖ / rms‖d‖" if normalize == "rms" else "‖d̂ₚ − dₚ‖ / ‖dₚ‖"

    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    ax, axh = fig.subplots(1, 2, width_ratios=[1.2, 1.0])
    ax.set_label("error map")
    axh.set_label("histogram")
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    im = ax.imshow(err, cmap="magma", vmin=0.0, vmax=vmax if vmax > 0 else 1.0,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"per-pixel error (global ‖D̂ − D‖/‖D‖ = {glob:.3g})")
    fig.colorbar(im, ax=ax, label=label, extend="max")
    if finite.size:
        axh.hist(finite, bins=min(60, max(10, finite.size // 20)), color="C1", alpha=0.85)
        med = float(np.median(finite))
        axh.axvline(med, color="k", lw=1.0, ls="--", label=f"median {med:.3g}")
        axh.legend(fontsize="small")
    n_nan = int(err.size - finite.size)
    axh.set_xlabel(label)
    axh.set_ylabel("pixels")
    axh.set_title("distribution" + (f" ({n_nan} zero-truth pixels left out)" if n_nan else ""))
    return fig
