"""Every applicable figure of one run, written as PNG files."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._figures import _check_dpi, plot_clusters, plot_eigen, plot_energies, plot_error_map, plot_sampling

__all__ = ["figures_for_run", "FIGURE_NAMES"]

log = logging.getLogger("curiss.viz")

#: File stem of each figure :func:`figures_for_run` may write, in order.
FIGURE_NAMES = ("sampling", "energies", "eigen", "clusters", "error")


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` otherwise; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _energy_weights(history: Sequence[dict] | None, n_e: int) -> tuple[np.ndarray | None, int]:
    """The first decision's energy sampling weights that are a distribution, and its index."""
    for i, entry in enumerate(history or ()):
        w = entry.get("energy_weights")
        if w is None:
            continue
        w = np.asarray(w, dtype=float)
        if w.shape == (n_e,) and np.all(np.isfinite(w)) and w.sum() > 0:
            return w, i
    return None, -1


def _mean_spectrum(completed: np.ndarray | None, od: np.ndarray | None) -> tuple[np.ndarray, str]:
    if completed is not None:
        return completed.reshape(completed.shape[0], -1).mean(axis=1), "completed"
    flat = od.reshape(od.shape[0], -1)
    ok = np.isfinite(flat)
    n = ok.sum(axis=1)
    total = np.where(ok, flat, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan), "measured"


def figures_for_run(data: Any, outdir: str | os.PathLike, *, truth: Any = None,
                    references: Any = None, reference_names: Sequence[str] | None = None,
                    prefix: str = "", dpi: float = 100,
                    notes: list[str] | None = None) -> list[Path]:
    """Write every figure that applies to a run as PNG files.

    Parameters
    ----------
    data : RunData-like
        An object with ``energies`` (n_E,), ``shape`` (n_y, n_x), ``order`` (n_rows, 2),
        ``history`` (list of dict), ``mask`` (n_E, n_y, n_x) bool, ``od`` (n_E, n_y, n_x) with NaN
        where not measured, ``completed`` (n_E, n_y, n_x) or None and ``analysis`` (dict with
        ``labels`` (n_y, n_x), ``cluster_spectra`` (n_E, n_c), ``eigenspectra`` (n_E, k)) or None —
        e.g. :class:`curiss.store.RunData`. Missing attributes count as None. A resumed run's
        ``reused`` first rows of ``order`` (asked for by the decisions of the run it resumes)
        show in ``sampling.png`` as one step before its first decision.
    outdir : path
        Directory for the files (created if needed).
    truth : array_like, shape (n_E, n_y, n_x), optional
        Known true stack; enables ``error.png``.
    references, reference_names : optional
        Reference spectra (n_E, n_refs) on the run's energies and their names, drawn against the
        cluster spectra (see :func:`plot_clusters`).
    prefix : str
        Prepended to each file name (e.g. a run uid and ``"-"``).
    dpi : float
        Resolution of the PNG files, dots per inch (> 0).
    notes : list of str, optional
        If given, one line per skipped figure is appended (also logged on the ``curiss.viz``
        logger at INFO level).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of :data:`FIGURE_NAMES` (``sampling``, ``energies``,
        ``eigen``, ``clusters``, ``error``), skipped figures left out.

    Raises
    ------
    ValueError
        ``data`` has no energies, ``truth``/``references`` do not fit the run, or ``dpi`` is not
        a positive number.
    """
    energies = _field(data, "energies")
    if energies is None:
        raise ValueError("data has no 'energies': give a RunData-like object (energies, shape, "
                         "order, history, mask, od, completed, analysis)")
    energies = np.asarray(energies, dtype=float)
    n_e = energies.size
    mask = _field(data, "mask")
    od = _field(data, "od")
    if mask is None and od is not None:
        mask = np.isfinite(np.asarray(od, dtype=float))
    shape = _field(data, "shape")
    if shape is None:
        src = mask if mask is not None else od
        if src is None:
            raise ValueError("data has neither 'shape' nor 'mask'/'od' to take the raster "
                             "shape from")
        shape = np.shape(src)[1:]
    n_y, n_x = (int(s) for s in shape)
    order = _field(data, "order")
    history = _field(data, "history") or None
    analysis = _field(data, "analysis")
    completed = _field(data, "completed")
    if completed is None:
        completed = _field(analysis, "completed")
    if completed is not None:
        completed = np.asarray(completed, dtype=float)
        if completed.shape != (n_e, n_y, n_x):
            raise ValueError(f"data.completed has shape {completed.shape}; expected "
                             f"(n_E, n_y, n_x) = {(n_e, n_y, n_x)}")
    if truth is not None:
        truth = np.asarray(truth, dtype=float)
        if truth.shape != (n_e, n_y, n_x):
            raise ValueError(f"truth must have the run's shape (n_E, n_y, n_x) = "
                             f"{(n_e, n_y, n_x)}; got {truth.shape}")

    dpi = _check_dpi(dpi)
    if not isinstance(prefix, str) or "/" in prefix or "\\" in prefix or prefix in (".", ".."):
        raise ValueError(f"prefix must be a file-name prefix (no path separator: the figures go "
                         f"into outdir); got {prefix!r}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def note(msg: str) -> None:
        log.info(msg)
        if notes is not None:
            notes.append(msg)

    def skip(name: str, why: str) -> None:
        msg = f"{prefix}{name}.png skipped: {why}"
        log.info(msg)
        if notes is not None:
            notes.append(msg)

    def save(name: str, fig) -> None:
        path = out / f"{prefix}{name}.png"
        fig.savefig(path, dpi=dpi)
        written.append(path)

    # sampling
    if order is None or len(order) == 0:
        skip("sampling", "no measured rows (empty primary stream)")
    else:
        reused = int(_field(data, "reused") or 0)
        if history is not None and reused > 0:
            # a resumed run: its first rows were measured by an earlier run's decisions, which
            # this run does not hold; they show as one step before its first decision
            its = [float(h.get("iteration")) for h in history
                   if h.get("iteration") is not None and np.isfinite(float(h.get("iteration")))]
            first = min(its) if its else 0.0
            history = [{"pairs": np.asarray(order)[:reused], "iteration": first - 1}, *history]
            note(f"{prefix}sampling.png: the {reused} rows reused from the run(s) this one "
                 f"resumes show as step {first - 1:g}, before this run's first decision")
        try:
            fig = plot_sampling(order, (n_y, n_x), energies, history=history)
        except ValueError as exc:
            if history is None:
                raise
            note(f"{prefix}sampling.png: the planner history does not fit the rows ({exc}); "
                 "rows coloured by acquisition order instead of by decision")
            fig = plot_sampling(order, (n_y, n_x), energies)
        save("sampling", fig)

    # energies
    if completed is None and od is None:
        skip("energies", "neither a completed cube nor measured OD")
    elif completed is None and not np.isfinite(np.asarray(od, dtype=float)).any():
        skip("energies", "no measured OD (every row is NaN) and no completed cube")
    else:
        spectrum, _ = _mean_spectrum(completed, None if od is None else np.asarray(od, float))
        if mask is not None:
            imaged = np.flatnonzero(np.asarray(mask, bool).reshape(n_e, -1).all(axis=1))
        else:
            imaged = np.zeros(0, dtype=np.int64)
        weights, _ = _energy_weights(history, n_e)
        save("energies", plot_energies(energies, spectrum, imaged, energy_weights=weights))

    # eigen and clusters (analysis stream)
    if analysis is None:
        skip("eigen", "the run has no analysis stream")
        skip("clusters", "the run has no analysis stream")
    else:
        eig = _field(analysis, "eigenspectra")
        if eig is None or completed is None:
            skip("eigen", "the analysis has no eigenspectra or no completed cube")
        else:
            u = np.asarray(eig, dtype=float)
            images = _field(analysis, "eigenimages")
            if images is None:  # S_k V_k^T = U_k^T D for orthonormal U_k
                images = (u.T @ completed.reshape(n_e, -1)).reshape(u.shape[1], n_y, n_x)
            images = np.asarray(images, dtype=float)
            sv = np.linalg.norm(images.reshape(images.shape[0], -1), axis=1)
            save("eigen", plot_eigen(u, images, energies=energies, singular_values=sv))
        labels = _field(analysis, "labels")
        spectra = _field(analysis, "cluster_spectra")
        if labels is None or spectra is None:
            skip("clusters", "the analysis has no labels or cluster spectra")
        else:
            save("clusters", plot_clusters(labels, spectra, energies, references=references,
                                           reference_names=reference_names))

    # error against a known truth
    if truth is None:
        skip("error", "no truth given (only for simulated samples or a full measurement)")
    elif completed is None:
        skip("error", "the run has no completed cube (no analysis stream)")
    else:
        save("error", plot_error_map(completed, truth))
    return written
