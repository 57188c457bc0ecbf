"""Replay every strategy on one stack and summarise the quality measures of docs/methods.md (Quality measures).

Used by ``curiss compare`` and by the benchmarks; no bluesky import.
"""

from __future__ import annotations

import numbers
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score

from .analysis import signal_error, raw_error, spectra_error, spectral_analysis
from .linalg import RatioTooSmallError, minimum_ratio
from .linalg._checks import as_int
from .planners import make_planner
from .planners._base import validate_ratio
from .replay import replay

__all__ = ["STRATEGIES", "Trial", "run_trials", "summarise", "format_table", "strategy_kwargs"]

#: strategies compared by default, in table order; ``*_authors`` are the authors' choices
#: (leverage-score energy draws, their budget split), kept one flag away for comparisons
STRATEGIES = ("raster", "random_rows", "riss", "curiss_authors", "curiss", "acuriss_authors",
              "acuriss")

#: planner keywords that reproduce the authors' MATLAB code
AUTHORS = {"energy_sampling": "leverage", "budget_rule": "authors"}

#: strategies :func:`strategy_kwargs` knows besides ``STRATEGIES`` (earlier defaults, ablations)
_OTHER_STRATEGIES = ("curiss_images", "acuriss_energies", "acuriss_variation")


@dataclass(frozen=True)
class Trial:
    """Measures of one replay (one strategy, one seed).

    Attributes
    ----------
    strategy : str
        Name in :data:`STRATEGIES` (or :func:`strategy_kwargs`'s others).
    seed : int
        The planner's seed.
    sampling_ratio : float
        Fraction of the (energy, spatial row) pairs measured.
    signal_error, raw_error, ari, spectra_error : float
        The quality measures (docs/methods.md, "Quality measures"): against the rank-``k``
        truncation of the reference, against the measured cube, and the ARI and cluster-spectra
        error against the reference's clustering (the reference is ``truth`` when given, else
        the cube).
    time_saving, dose_saving, peak_dose_saving : float
        Acquisition time, total dose and peak dose per pixel as ratios to the full raster's
        under the cost model (smaller is better: 0.2 is a fifth of the raster's).
    seconds : float
        Wall time of the replay, s.
    stop_reason : str
        The planner's stop reason.
    """

    strategy: str
    seed: int
    sampling_ratio: float
    signal_error: float
    raw_error: float
    ari: float
    spectra_error: float
    time_saving: float
    dose_saving: float
    peak_dose_saving: float
    seconds: float
    stop_reason: str


def strategy_kwargs(strategy: str, ratio: float, n_energies: int, shape) -> tuple[str, dict]:
    """Method name and planner keywords used by the comparison for ``strategy`` at ``ratio``.

    ACURISS starts at half the ratio (or the minimum ratio) and may refine up to twice it.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`, or ``"curiss_images"``, ``"acuriss_energies"``,
        ``"acuriss_variation"``.
    ratio : float
        Target sampling ratio, in (0, 1].
    n_energies : int
        n_E of the stack.
    shape : tuple of int
        ``(n_y, n_x)`` of the stack.

    Returns
    -------
    method : str
        The :func:`curiss.make_planner` method.
    kwargs : dict
        Its keywords (without ``dictionary`` and ``seed``).

    Raises
    ------
    ValueError
        An unknown ``strategy``.
    """
    if strategy == "raster":
        return "raster", {}
    if strategy in ("random_rows", "riss", "curiss"):
        return strategy, {"sampling_ratio": ratio}
    if strategy == "curiss_authors":
        return "curiss", {"sampling_ratio": ratio, **AUTHORS}
    if strategy == "curiss_images":  # the budget split of earlier versions (always one row)
        return "curiss", {"sampling_ratio": ratio, "budget_rule": "images"}
    if strategy in ("acuriss", "acuriss_energies", "acuriss_authors", "acuriss_variation"):
        low = minimum_ratio(n_energies, shape)
        p0 = max(ratio / 2, low * 1.0001)
        if p0 > min(1.0, 2 * ratio):  # its first step would not fit under its cap
            raise RatioTooSmallError(
                f"ratio too small for {strategy}: its initial step needs at least the stack's "
                f"minimum ratio {low:.4g}, above its cap 2 x ratio = {2 * ratio:.4g}")
        kw = {"sampling_ratio": min(1.0, 2 * ratio), "initial_ratio": p0}
        if strategy == "acuriss_energies":
            kw["mode"] = "energies"
        if strategy == "acuriss_variation":  # the stop rule of earlier versions
            kw["stop_rule"] = "variation"
        if strategy == "acuriss_authors":
            kw.update(mode="energies", stop_rule="variation", **AUTHORS)
        return "acuriss", kw
    raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES} (or "
                     f"{', '.join(_OTHER_STRATEGIES)})")


def run_trials(energies, cube, *, ratio: float, seeds, dictionary=None, truth=None,
               strategies=STRATEGIES, n_components: int = 3, n_clusters: int = 4, k: int = 3,
               progress=None, skipped: dict[str, str] | None = None) -> list[Trial]:
    """Replay each strategy for each seed on ``cube`` and measure it.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        eV.
    cube : array_like, shape (n_E, n_y, n_x)
        The fully measured stack (OD); the planners read their rows from it.
    ratio : float
        Target sampling ratio.
    seeds : iterable of int
        The planners' seeds, distinct (e.g. ``range(10)``); each strategy runs every seed (the
        raster, which draws nothing, the first only).
    dictionary : array_like, shape (n_E, n_refs), optional
        Reference spectra (OD) for the planners that use one (RISS, CURISS, ACURISS).
    truth : array_like, shape (n_E, n_y, n_x), optional
        Noise-free cube when known (synthetic samples): the signal error is then measured
        against its rank-``k`` truncation and the ARI and spectra error against its clustering
        (otherwise against ``cube``'s); the raw error is always against ``cube``.
    strategies : sequence of str
        Which strategies, in table order (default :data:`STRATEGIES`); see
        :func:`strategy_kwargs` for the others it knows.
    n_components, n_clusters : int
        Components and k-means clusters of the spectral analysis (of the reference and of each
        completion), as in :func:`curiss.spectral_analysis`. A completion's cluster spectra are
        the cluster means of the completion alone; a run's ``analysis`` stream takes the
        measured values where measured (``mask=``, ``measured=``).
    k : int
        Rank of the truncation used by the signal error.
    progress : callable, optional
        Called with each :class:`Trial` as soon as it is measured.
    skipped : dict, optional
        If given, a strategy whose planner refuses ``ratio`` for this stack (below its minimum
        ratio, e.g. the authors' budget rule at 0.02) is left out and recorded here as
        ``{strategy: reason}``; without it the planner's ``ValueError`` is raised.

    Returns
    -------
    list of Trial
        One per strategy and seed, in the order run.

    Raises
    ------
    TypeError, ValueError
        Checked before any replay: ``cube`` or ``truth`` with NaN/Inf values,
        ``seeds`` not an iterable of distinct non-negative ints,
        ``strategies`` a string, empty or naming an unknown strategy, ``ratio`` outside (0, 1],
        ``truth`` of another shape than ``cube``, ``k`` not an int in [1, min(n_E, n_pix)],
        ``progress`` not callable, ``skipped`` not a dict. A planner's refusal of ``ratio`` is
        raised when that strategy is reached, unless ``skipped`` is given.
    """
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be an iterable of ints (e.g. range(10)), got {seeds!r}")
    # a list: a one-shot iterable serves every strategy, not only the first; ints: 0.7 or "1"
    # used to run as seed 0 or 1
    seeds = [as_int(s, "each seed", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    twice = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if twice:  # one seed would count twice in the medians
        raise ValueError(f"seeds must be distinct; {twice} given more than once")
    if isinstance(strategies, (str, bytes)):  # "curiss" was read as 'c', 'u', ...
        raise TypeError(f"strategies must be a list of names, e.g. [{strategies!r}]; got the "
                        f"string {strategies!r}")
    strategies = list(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES + _OTHER_STRATEGIES]
    if unknown or not strategies:  # before the strategies ahead of it have run
        what = f"unknown strategies {unknown}" if unknown else "strategies is empty"
        raise ValueError(f"{what}; choose from {STRATEGIES} (or {', '.join(_OTHER_STRATEGIES)})")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable (called with each Trial) or None, got "
                        f"{type(progress).__name__}")
    if skipped is not None and not isinstance(skipped, dict):
        raise TypeError(f"skipped must be a dict (filled with {{strategy: reason}}) or None, got "
                        f"{type(skipped).__name__}")
    ratio = validate_ratio("ratio", ratio)
    cube = np.asarray(cube, dtype=float)
    if not np.isfinite(cube).all():  # spectral_analysis's message asked for a completed cube
        bad = int(cube.size - np.count_nonzero(np.isfinite(cube)))
        raise ValueError(f"cube has {bad} NaN/Inf value(s); the comparison replays a fully "
                         f"measured stack: crop or fill dead pixels first")
    ref = cube if truth is None else np.asarray(truth, dtype=float)
    if ref.shape != cube.shape:
        raise ValueError(f"truth has shape {ref.shape}; it must be the cube's {cube.shape}")
    if truth is not None and not np.isfinite(ref).all():
        raise ValueError(f"truth has {int(ref.size - np.count_nonzero(np.isfinite(ref)))} "
                         f"NaN/Inf value(s); it must be the noise-free cube, finite everywhere")
    if cube.ndim == 3:  # (the planners refuse other cubes, naming them)
        k_max = min(cube.shape[0], cube.shape[1] * cube.shape[2])
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) \
                or not 1 <= k <= k_max:  # it was found only after the first replay
            raise ValueError(f"k must be an int in [1, {k_max}] for this cube; got {k!r}")
    full = spectral_analysis(ref, n_components=n_components, n_clusters=n_clusters, seed=0)
    shape = cube.shape[1:]
    out = []
    for strategy in strategies:
        for seed in (seeds if strategy != "raster" else seeds[:1]):
            try:
                method, kw = strategy_kwargs(strategy, ratio, len(energies), shape)
                if method in ("riss", "curiss", "acuriss"):
                    kw["dictionary"] = dictionary
                if method == "acuriss":
                    kw.update(n_components=n_components, n_clusters=n_clusters)
                planner = make_planner(method, energies, shape, seed=int(seed), **kw)
            except RatioTooSmallError as exc:
                if skipped is None:
                    raise
                skipped[strategy] = str(exc)
                break
            t0 = time.perf_counter()
            acq = replay(planner, cube)
            dt = time.perf_counter() - t0
            ana = spectral_analysis(acq.completed, n_components=n_components, n_clusters=n_clusters,
                                    seed=0)
            sav = acq.saving
            out.append(Trial(
                strategy=strategy, seed=int(seed), sampling_ratio=acq.sampling_ratio,
                signal_error=signal_error(acq.completed, ref, k=k),
                raw_error=raw_error(acq.completed, cube),
                ari=float(adjusted_rand_score(full.labels.ravel(), ana.labels.ravel())),
                spectra_error=spectra_error(full.cluster_spectra, ana.cluster_spectra),
                time_saving=sav["time"], dose_saving=sav["dose_total"],
                peak_dose_saving=sav["dose_peak"], seconds=dt,
                stop_reason=str(acq.report.get("stop_reason")),
            ))
            if progress is not None:
                progress(out[-1])
    return out


_MEASURES = (
    # name, attribute, worst is max (True) or min (False)
    ("ratio", "sampling_ratio", True),
    ("signal err", "signal_error", True),
    ("raw err", "raw_error", True),
    ("ARI", "ari", False),
    ("spectra err", "spectra_error", True),
    ("time/raster", "time_saving", True),
    ("dose/raster", "dose_saving", True),
    ("peak dose/raster", "peak_dose_saving", True),
    ("seconds", "seconds", True),
)


def summarise(trials) -> dict[str, dict[str, tuple[float, float]]]:
    """``{strategy: {measure: (median, worst)}}`` over seeds.

    Parameters
    ----------
    trials : iterable of Trial
        As returned by :func:`run_trials`.

    Returns
    -------
    dict
        ``{strategy: {attribute: (median, worst)}}``, strategies in first-seen order; the
        attributes are the :class:`Trial` measures (``sampling_ratio``, ``signal_error``, ...,
        ``seconds``); worst is the largest, or the smallest for ``ari``.

    Raises
    ------
    TypeError
        An item of ``trials`` is not a :class:`Trial` (e.g. a string or a file name).
    """
    if isinstance(trials, (str, bytes)):
        raise TypeError(f"trials must be the Trial objects that run_trials returns, got {trials!r}")
    trials = list(trials)
    for t in trials:
        if not isinstance(t, Trial):
            raise TypeError(f"trials must contain Trial objects (from run_trials); got "
                            f"{type(t).__name__} {t!r:.60}")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for strategy in dict.fromkeys(t.strategy for t in trials):
        ts = [t for t in trials if t.strategy == strategy]
        row = {}
        for _, attr, worst_is_max in _MEASURES:
            v = np.array([getattr(t, attr) for t in ts], dtype=float)
            row[attr] = (float(np.median(v)), float(v.max() if worst_is_max else v.min()))
        out[strategy] = row
    return out


def format_table(summary) -> str:
    """A plain-text table, ``median / worst`` per cell.

    Parameters
    ----------
    summary : dict
        As returned by :func:`summarise`.

    Returns
    -------
    str
        One header line and one line per strategy, columns aligned.
    """
    head = ["strategy"] + [name for name, _, _ in _MEASURES]
    rows = [head]
    for strategy, row in summary.items():
        cells = [strategy]
        for _, attr, _ in _MEASURES:
            med, worst = row[attr]
            cells.append(f"{med:.3g} / {worst:.3g}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
