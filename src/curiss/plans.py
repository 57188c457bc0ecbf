"""Bluesky plans: the planner in the loop of a monochromator, a raster stage and a line detector.

One generic lockstep plan, :func:`subsampled_scan`, asks a planner for a request, orders the rows to
move the monochromator once per energy (and the stage in a serpentine), measures each spatial row,
feeds its optical density to the planner, records the planner's decision in the ``planner`` stream
and repeats until the planner is done; then it records the ``analysis`` stream. The convenience
plans build the planner from the planners' keywords.

Documents (the document model, ``schema_version`` 1):

- start: ``plan_name``, ``plan_args``, ``method``, ``planner``, ``planner_kwargs``, ``energies``,
  ``shape``, ``y_positions``, ``seed``, ``sampling_ratio``, ``dictionary_name`` (None unless
  given in ``md``, e.g. ``md={"dictionary_name": "Fe(II), Fe(III) references"}``; the
  dictionary itself is in ``planner_kwargs``), ``cost_model``, ``line_key``, ``i0_key``,
  ``curiss_version``, ``schema_version``, ``hints``. ``md`` may add any other key but not
  overwrite those that rebuild the run (a ``ValueError`` names them). ``curiss``: a copy of
  those keys, which readers prefer: bluesky's per-call metadata (``RE(plan, method="STXM")``)
  overwrites a plan's keys of the same name, beyond the plan's reach.
- ``primary``: one event per spatial row: the detector's line, I0 and dwell, the monochromator
  readback, the stage y readback, ``energy_index`` and ``row_index``.
- ``planner``: one event per decision (see :func:`decision_record`).
- ``analysis``: one event: completed cube, mask, labels, cluster spectra, eigenspectra.
"""


import inspect
import numbers
import time as _time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.protocols import Movable, Readable, Stageable, Triggerable
from bluesky.run_engine import WaitForTimeoutError
from bluesky.utils import FailedStatus

from . import __version__
from .analysis import _check_int, spectral_analysis
from .cost import _acquisition_cost, acquisition_cost
from .store._load import line_od
from .planners import (
    ACURISSPlanner,
    CURISSPlanner,
    Planner,
    RandomRowsPlanner,
    RasterPlanner,
    RISSPlanner,
)
from .planners._strategies import BUDGET_RULE, ENERGY_SAMPLING, PREVIOUS_BUDGET_RULE
from .planners._base import validate_shape
from .linalg._checks import as_bool

__all__ = [
    "subsampled_scan",
    "raster_scan",
    "random_rows_scan",
    "riss_scan",
    "curiss_scan",
    "acuriss_scan",
    "resume",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 1


class _Record:
    """A minimal bluesky ``Readable`` that emits a dict of values as one event of a stream.

    Used for the ``planner`` and ``analysis`` streams, whose values are computed by curiss rather
    than read from hardware. Its ``hints`` name ``plot`` (default none): without hints,
    BestEffortCallback plots every field of a stream (the planner stream got a 20-axes figure,
    strings and arrays included, redrawn at every decision).
    """

    parent = None

    def __init__(self, name: str, describe: dict[str, dict], plot: tuple[str, ...] = ()):
        self.name = name
        self._describe = describe
        self._values: dict[str, Any] = {}
        self.hints = {"fields": list(plot)}

    def set(self, values: dict[str, Any]) -> None:
        missing = set(self._describe) - set(values)
        if missing:
            raise KeyError(f"record {self.name!r} is missing {sorted(missing)}")
        self._values = values

    def read(self):
        t = _time.time()
        return {k: {"value": self._values[k], "timestamp": t} for k in self._describe}

    def describe(self):
        return {k: dict(v) for k, v in self._describe.items()}

    def read_configuration(self):
        return {}

    def describe_configuration(self):
        return {}


def _key(dtype: str, shape=(), numpy_dtype: str | None = None) -> dict:
    d = {"source": "curiss", "dtype": dtype, "shape": list(shape)}
    if numpy_dtype is not None:
        d["dtype_numpy"] = np.dtype(numpy_dtype).str
    return d


def _planner_describe(n_e: int, n_y: int) -> dict[str, dict]:
    return {
        "iteration": _key("integer", (), "int64"),
        "kind": _key("string"),
        "request": _key("array", (n_e, n_y), "uint8"),
        "energy_weights": _key("array", (n_e,), "float64"),
        "row_weights": _key("array", (n_y,), "float64"),
        "rank": _key("integer", (), "int64"),
        "condition": _key("number", (), "float64"),
        "completion_variation": _key("number", (), "float64"),
        "spectral_variation": _key("number", (), "float64"),
        "sampling_ratio": _key("number", (), "float64"),
        "time": _key("number", (), "float64"),
        "dose": _key("number", (), "float64"),
        "dose_absorbed": _key("number", (), "float64"),
        "stop_reason": _key("string"),
        "fallback": _key("string"),
        "prediction_error": _key("number", (), "float64"),
        "prediction_mse": _key("number", (), "float64"),
        "noise_variance": _key("number", (), "float64"),
        "coverage_gap": _key("number", (), "float64"),
    }


def decision_record(planner: Planner, decision, *, order=None) -> dict[str, Any]:
    """The ``planner`` stream event of one decision, fixed shapes (uint8 request mask, NaN fill).

    ``time``, ``dose`` and ``dose_absorbed`` are the cost model's acquisition time (s), incident
    dose (dwell × pixels, arbitrary units) and absorbed dose (dwell × (1 − exp(−OD)) summed over
    the measured pixels, OD clipped at 0, the measure :func:`curiss.cost.acquisition_cost` and
    ``recompute(...).cost.dose_total`` report) of everything measured up to this decision: the
    rows the planner ingested, not the readings retried or given up on (the ``faults`` stream),
    so lower bounds when there were faults.
    """
    n_e, (n_y, n_x) = planner.energies.size, planner.shape
    req = np.zeros((n_e, n_y), np.uint8)
    if len(decision.pairs):
        req[decision.pairs[:, 0], decision.pairs[:, 1]] = 1
    order = planner.order if order is None else order
    cost = acquisition_cost(order, n_x, model=planner.cost_model)
    # absorbed: read from the planner's measured OD in place (NaN, never measured, is not read)
    absorbed = _acquisition_cost(order, n_x, model=planner.cost_model, od=planner._od,
                                 nan_dose=True)
    ew = decision.energy_weights
    rw = decision.row_weights
    return {
        "iteration": int(decision.iteration),
        "kind": str(decision.kind),
        "request": req,
        "energy_weights": np.full(n_e, np.nan) if ew is None else np.asarray(ew, float),
        "row_weights": np.full(n_y, np.nan) if rw is None else np.asarray(rw, float),
        "rank": int(decision.rank),
        "condition": float(decision.condition),
        "completion_variation": float(decision.completion_variation),
        "spectral_variation": float(decision.spectral_variation),
        "sampling_ratio": float(decision.sampling_ratio),
        "time": float(cost.time),
        "dose": float(cost.dose_total),
        "dose_absorbed": float(absorbed.dose_total),
        "stop_reason": str(decision.stop_reason or ""),
        # numerical safety: what the planner did when the core was ill-conditioned, the rank was
        # capped, or LoopedASD failed ("" when nothing happened)
        "fallback": "; ".join(str(decision.extra[k]) for k in ("fallback", "analysis_fallback")
                              if decision.extra.get(k)),
        # ACURISS's noise-aware stop rule: the previous completion's error on the newest rows
        # above the noise (relative), its mean squared error, the noise variance (OD^2) and the
        # row coverage gap (dimensionless; NaN without row_coverage)
        **{k: float(decision.extra.get(k, np.nan))
           for k in ("prediction_error", "prediction_mse", "noise_variance", "coverage_gap")},
    }


def _analysis_describe(n_e, n_y, n_x, n_clusters, n_components):
    return {
        "completed": _key("array", (n_e, n_y, n_x), "float64"),
        "mask": _key("array", (n_e, n_y, n_x), "uint8"),
        "labels": _key("array", (n_y, n_x), "int64"),
        "cluster_spectra": _key("array", (n_e, n_clusters), "float64"),
        "eigenspectra": _key("array", (n_e, n_components), "float64"),
    }


def _row_od(reading, line_key, i0_key, n_x):
    """(OD row, None) for a valid reading, else (None, (fault kind, message))."""
    if reading.get(line_key) is None or reading.get(i0_key) is None:
        return None, ("missing", f"the reading has no {line_key!r} or {i0_key!r}")
    line = np.asarray(reading[line_key]["value"], dtype=float).ravel()
    i0 = float(np.asarray(reading[i0_key]["value"], dtype=float))
    if line.shape != (n_x,):
        return None, ("short", f"line has {line.size} pixels, expected {n_x}")
    if not np.all(np.isfinite(line)):
        return None, ("nan", f"{int((~np.isfinite(line)).sum())} non-finite counts")
    if not (np.isfinite(i0) and i0 > 0):
        return None, ("i0", f"incident intensity I0 = {i0} (beam lost?)")
    if np.all(line <= 0):
        return None, ("zeros", "zero counts on the whole line (shutter or detector?)")
    if np.any(line > 10 * i0):
        return None, ("counts", f"counts exceed 10 x I0 ({line.max():.3g} > {i0:.3g})")
    return line_od(line, i0), None  # an isolated zero-count pixel: OD of half a count


def _ordered_pairs(pairs: np.ndarray) -> list[tuple[int, list[int]]]:
    """Group pairs by energy (ascending: one monochromator move each) with rows in a serpentine."""
    out = []
    for i, e in enumerate(np.unique(pairs[:, 0])):
        rows = np.sort(pairs[pairs[:, 0] == e, 1])
        out.append((int(e), (rows if i % 2 == 0 else rows[::-1]).tolist()))
    return out


def _one_axis(value):
    """A one-axis ophyd PseudoPositioner's value (a one-field namedtuple such as
    ``PseudoPosition(energy=...)``) as its one field; any other value as it is."""
    try:
        return value[0] if len(value) == 1 else value
    except TypeError:  # no len(), or not indexable
        return value


def _limits(obj) -> tuple[float, float] | None:
    lim = getattr(obj, "limits", None)
    if lim is None:
        return None
    try:
        lo, hi = (float(v) for v in _one_axis(lim))  # PseudoPosition(energy=(lo, hi)) too
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        return None  # (0, 0) or (lo >= hi) means "no limits" in ophyd
    return lo, hi


def _describe(detector) -> dict | None:
    try:
        desc = detector.describe()
    except Exception:  # a remote device that cannot answer now: its keys are not checked
        return None
    if inspect.isawaitable(desc):  # an ophyd-async device: cannot be asked before the run
        if hasattr(desc, "close"):
            desc.close()  # never awaited: closed, so no "coroutine never awaited" warning
        return None
    return desc if isinstance(desc, Mapping) else None


def _line_length(desc: dict | None, line_key: str) -> int | None:
    """The line's pixel count from a detector's ``describe()`` (None if it does not say)."""
    shape = (desc or {}).get(line_key, {}).get("shape")
    return int(shape[0]) if shape else None


def _validate(planner: Planner, detector, mono, stage, y_positions, line_key, i0_key) -> np.ndarray:
    """Refuse bad arguments before anything moves. Returns y_positions as an array (n_y,)."""
    if not isinstance(planner, Planner):
        raise TypeError(f"planner must be a curiss planner; got {type(planner).__name__}")
    if planner.history:
        raise ValueError("the planner has already been used; give the plan a fresh planner "
                         "(to continue an interrupted run, use curiss.plans.resume)")
    if not isinstance(planner.seed, numbers.Integral):  # None or a Generator: not reproducible
        raise TypeError(f"the planner's seed must be an int (it is {planner.seed!r}): the start "
                        "document records it, and without it the run could be neither resumed "
                        "nor recomputed; build the planner with seed=<int>")
    _check_recordable_seed(planner.seed, "the planner's seed")
    return _validate_devices(planner, detector, mono, stage, y_positions, line_key, i0_key)


def _validate_retries(max_retries, trigger_timeout) -> None:
    if (isinstance(max_retries, bool) or not isinstance(max_retries, numbers.Integral)
            or max_retries < 0):
        raise ValueError(f"max_retries must be a non-negative integer; got {max_retries!r}")
    if trigger_timeout is not None and (
            isinstance(trigger_timeout, bool) or not isinstance(trigger_timeout, numbers.Real)
            or not (np.isfinite(trigger_timeout) and trigger_timeout > 0)):
        raise ValueError(f"trigger_timeout must be a positive number of seconds or None; got {trigger_timeout!r}")


def _validate_analysis(planner: Planner, analysis, n_components, n_clusters):
    """The settings of the final analysis, checked before the run (not after every row).

    Returns ``(analysis, n_components, n_clusters)`` as Python bool and ints (a numpy integer
    fails the start document's JSON schema, which used to fail the run after every row).
    """
    if as_bool(analysis, "analysis"):
        n_pix = int(np.prod(planner.shape))
        return (True, _check_int(n_components, "n_components", 1, min(planner.energies.size, n_pix)),
                _check_int(n_clusters, "n_clusters", 1, n_pix))
    return False, n_components, n_clusters


#: start-document keys that rebuild and recompute a run: ``md`` may not overwrite them
_RESERVED_MD = ("method", "planner", "planner_kwargs", "energies", "shape", "y_positions", "seed",
                "sampling_ratio", "cost_model", "line_key", "i0_key", "analysis", "curiss_version",
                "schema_version", "resumes", "resumed_rows", "resumed_plan_name", "curiss")


def _with_own_copy(md: dict[str, Any]) -> dict[str, Any]:
    """``md`` plus ``md["curiss"]``: a copy of the keys that rebuild the run. bluesky's per-call
    metadata (``RE(plan, method="STXM")``) takes precedence over a plan's own start-document keys,
    out of the plan's reach; the readers (``curiss.store.load_run``, the live view) take these
    keys from the copy."""
    return {**md, "curiss": {k: md[k] for k in _RESERVED_MD if k in md and k != "curiss"}}


def _merge_md(base: dict[str, Any], md) -> dict[str, Any]:
    """``base`` updated with the user's ``md`` (checked: a mapping, no reserved key)."""
    if md is None:
        return base
    if not isinstance(md, Mapping):
        raise TypeError(f"md must be a dict of extra start-document metadata; got {type(md).__name__}")
    clash = sorted(set(md) & set(_RESERVED_MD))
    if clash:
        raise ValueError(f"md must not set {clash}: curiss records these to rebuild and recompute "
                         f"the run (reserved: {list(_RESERVED_MD)})")
    for key, value in md.items():
        if not isinstance(key, str) or not _utf8(key):
            raise TypeError(f"md keys must be str (valid UTF-8); got {key!r}")
        problem = _unstorable(value)
        if problem:
            raise TypeError(f"md[{key!r}] {problem}: the start document must be stored as JSON "
                            "(give a str, int, float, bool, None, or a list or dict of those)")
    if "uid" in md or "time" in md:
        raise ValueError(f"md must not set {sorted({'uid', 'time'} & set(md))}: the RunEngine "
                         "sets them")
    if "scan_id" in md and (isinstance(md["scan_id"], bool)
                            or not isinstance(md["scan_id"], numbers.Integral)):
        raise TypeError(f"md['scan_id'] must be an int (bluesky's schema); got {md['scan_id']!r}")
    out = {**base, **md}
    if isinstance(base.get("hints"), Mapping) and isinstance(md.get("hints"), Mapping):
        out["hints"] = {**base["hints"], **md["hints"]}  # as bluesky's scans merge them
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from os.fsdecode of a bad file name
        return False
    return True


#: the integers JSON numbers hold exactly; the catalog writer (bluesky-tiled-plugins'
#: ``truncate_json_overflow``) clamps any whole number outside them, ints and floats alike
_JSON_INT_MIN, _JSON_INT_MAX = 1 - 2**53, 2**53 - 1
_NOT_JSON_EXACT = ("is {value!r}, a whole number outside [-(2**53 - 1), 2**53 - 1], which the "
                   "catalog would store clamped to that range")


def _json_exact(value) -> bool:
    """True unless ``value`` is a whole number that the catalog writer would clamp."""
    return bool(value % 1) or _JSON_INT_MIN <= value <= _JSON_INT_MAX


def _unstorable(value, depth: int = 0) -> str | None:
    """Why ``value`` cannot go into a start document (JSON, also the journal), else None."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        return None if _utf8(value) else f"is {value!r}, a str that is not valid UTF-8"
    if isinstance(value, np.floating) and value.dtype.itemsize > 8:  # neither JSON nor msgpack
        return f"is {value!r}, a {value.dtype.name}; give a float"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return f"is {value!r}, not a finite number"
        return None if _json_exact(value) else _NOT_JSON_EXACT.format(value=value)
    if isinstance(value, numbers.Integral):
        return None if _json_exact(int(value)) else _NOT_JSON_EXACT.format(value=value)
    if depth < 32:  # containers, to a sane depth
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            if value.ndim == 0:  # the catalog writer cannot iterate it (the run went to the
                # journal only); the journal read it back as a 1-element array
                return f"is a 0-d array ({value!r}); give value.item()"
            if value.dtype.itemsize > 8 and value.dtype.kind == "f":
                return f"is an array of {value.dtype.name}; give it as float64"
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                return "has NaN/Inf"
            bad = [v for v in value.ravel().tolist() if not _json_exact(v)]
            return _NOT_JSON_EXACT.format(value=bad[0]) if bad else None
        if isinstance(value, (list, tuple)):
            return next((why for v in value if (why := _unstorable(v, depth + 1))), None)
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) and _utf8(k) for k in value):
                return "has a key that is not a str (or not valid UTF-8)"
            return next((why for v in value.values() if (why := _unstorable(v, depth + 1))), None)
    return f"is a {type(value).__name__}"


def _check_protocols(detector, mono) -> None:
    if not (isinstance(detector, Readable) and isinstance(detector, Triggerable)):
        raise TypeError("detector must be a triggerable, readable device (bluesky.protocols "
                        f"Readable and Triggerable); got {detector!r}")
    if not (isinstance(mono, Movable) and isinstance(mono, Readable)):
        raise TypeError(f"mono must be a movable, readable energy positioner (bluesky.protocols "
                        f"Movable and Readable: each row records its energy); got {mono!r}")


def _validate_devices(planner: Planner, detector, mono, stage, y_positions, line_key,
                      i0_key) -> np.ndarray:
    """Check the devices against the planner (after ``_check_protocols``); y_positions (n_y,)."""
    n_y, n_x = planner.shape
    y = np.arange(n_y, dtype=float) if y_positions is None else np.asarray(y_positions, dtype=float)
    if y.shape != (n_y,):
        raise ValueError(f"y_positions must have one position per spatial row, shape ({n_y},); got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y_positions must be finite")
    if np.unique(y).size != y.size:
        _, first, counts = np.unique(y, return_index=True, return_counts=True)
        raise ValueError(f"y_positions must be distinct (one stage y per spatial row); "
                         f"{y[first[counts > 1]][:5].tolist()} repeat")
    lim = _limits(mono)
    if lim is not None:
        e = planner.energies
        bad = e[(e < lim[0]) | (e > lim[1])]
        if bad.size:
            raise ValueError(f"energies {bad[:5].tolist()} eV are outside the monochromator limits "
                             f"[{lim[0]}, {lim[1]}] eV")
    ymotor = getattr(stage, "y", None)
    if not (isinstance(ymotor, Movable) and isinstance(ymotor, Readable)):
        raise TypeError("stage must have a movable, readable 'y' positioner (the raster's slow "
                        f"axis: each row records its position); got {stage!r}")
    lim = _limits(ymotor)
    if lim is not None:
        bad = y[(y < lim[0]) | (y > lim[1])]
        if bad.size:
            raise ValueError(f"y_positions {bad[:5].tolist()} are outside the stage y limits "
                             f"[{lim[0]}, {lim[1]}]")
    desc = _describe(detector)
    if desc is not None:  # (a detector that cannot describe() synchronously is not checked)
        missing = [k for k in (line_key, i0_key) if k not in desc]
        if missing:
            raise ValueError(f"{', '.join(map(repr, missing))} not among the reading keys of the "
                             f"detector {detector.name!r}: {sorted(desc)} (set line_key= and i0_key=)")
        n_line = _line_length(desc, line_key)
        if n_line is not None and n_line != n_x:
            raise ValueError(f"the detector's line has {n_line} pixels but shape[1] (n_x) is {n_x}")
        line_shape = list(desc[line_key].get("shape") or [])
        i0_shape = list(desc[i0_key].get("shape") or [])
        if len(line_shape) != 1:
            raise ValueError(f"line_key {line_key!r} must be the detector's 1-D line (shape [n_x]); "
                             f"its describe() shape is {line_shape} (swapped with i0_key?)")
        if i0_shape not in ([], [1]):
            raise ValueError(f"i0_key {i0_key!r} must be a scalar reading (the incident intensity); "
                             f"its describe() shape is {i0_shape} (swapped with line_key?)")
    return y


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def subsampled_scan(planner: Planner, detector: Readable, mono: Movable, stage, *,
                    y_positions=None, line_key: str | None = None, i0_key: str | None = None,
                    analysis: bool = True, n_components: int = 3, n_clusters: int = 4,
                    max_retries: int = 2, trigger_timeout: float | None = 10.0,
                    md: dict | None = None):
    """Acquire a stack with ``planner`` in the loop (generic lockstep plan).

    Parameters
    ----------
    planner : curiss.planners.Planner
        A fresh planner; its ``energies`` (eV) and ``shape`` (n_y, n_x) define the raster.
    detector : bluesky.protocols.Readable (and Triggerable)
        Line detector: each trigger measures one spatial row; its reading has the line counts
        (n_x,) under ``line_key`` and the incident counts (one scalar per row) under ``i0_key``. (An
        asynchronous one, as in ophyd-async, is driven through the RunEngine, but its reading
        keys and line length cannot be checked before the run.)
    mono : bluesky.protocols.Movable (and Readable)
        Monochromator energy positioner (eV); read into every row's event.
    stage : device with a ``y`` Movable (and Readable)
        Raster stage; ``stage.y`` is moved to ``y_positions[row_index]`` and read into every
        row's event. The detector, the mono and the stage (``stage.y``'s root device) are
        staged for the run when they are ``Stageable``, like the detectors and motors of
        bluesky's scans.
    y_positions : array_like, shape (n_y,), optional
        Stage y of each spatial row (default ``0, 1, …, n_y − 1``).
    line_key, i0_key : str, optional
        Reading keys of the line counts and the incident counts (default ``"<detector>_line"``
        and ``"<detector>_i0"``).
    analysis : bool
        Record the ``analysis`` stream (completion, labels, spectra) at the end. When the
        analysis itself fails on the completed data (e.g. k-means finds fewer distinct spectra
        than ``n_clusters``), a ``faults`` event of kind ``"analysis"`` says why, the stream is
        left out and the run still ends with ``exit_status="success"``. Likewise, when failed
        rows left the planner nothing to complete from (e.g. an energy that no selected spatial
        row could be measured at; the planner's stop record says which), a ``faults`` event of
        kind ``"completion"`` says why.
    n_components, n_clusters : int
        Settings of that analysis.
    max_retries : int
        Attempts after the first for a row whose reading is invalid (NaN, wrong length, zero
        counts, I0 ≤ 0), whose trigger times out, or whose move fails. Each fault is an event of
        the ``faults`` stream; a bad reading is dropped (never in ``primary``, never given to the
        planner); a row that fails every attempt is marked failed and the planner works around it
        (measures it again later, or replaces it; see the planners' fault handling).
        After ``MAX_FAILED_ROWS_IN_A_ROW`` (5) such rows in a row the run stops with a
        ``RuntimeError`` (a dead detector, a closed shutter), its rows kept: :func:`resume`
        continues it. Likewise when the monochromator could not reach
        ``MAX_FAILED_ENERGIES_IN_A_ROW`` (5) distinct energies in a row: it is then asked for
        another energy, one it reached before and not where it sits, and the error says
        whether it got there (those energies look out of its reach: a grating or harmonic
        change, limits wider than it can go) or not (it is down). No planner can complete an
        energy at which no row was measured, so the run stops either way, resumable. One
        unreachable energy (fewer than five in a row) loses its rows; an image energy is
        replaced, but one that needs rows ends the run without a completion (a
        ``completion`` fault names it).
    trigger_timeout : float or None
        Seconds to wait for one detector trigger (None: wait forever).
    md : dict, optional
        Extra metadata for the start document.

    Returns
    -------
    str
        The run uid (bluesky convention). The planner, updated in place, holds the state: every
        row saved to ``primary``, also after a deferred pause followed by ``RE.stop()`` or
        ``RE.abort()``. An immediate pause (Ctrl-C twice) that lands between a row's save and the
        plan's next step, then ``RE.stop()`` or ``RE.abort()``, leaves that last row out of the
        planner (the run holds it: :func:`resume` and ``curiss.store.load_run`` read the run).

    Notes
    -----
    The plan is adaptive: what it measures next depends on what it has read. bluesky's
    ``summarize_plan`` and ``check_limits`` feed it no readings, so every row is a fault and
    the plan stops after five rows (``RuntimeError``: "5 rows in a row gave no valid
    reading"). To see its messages without hardware, use
    ``bluesky.simulators.RunEngineSimulator`` with a ``read`` handler that returns a line
    (tests/test_plans.py::test_message_sequence_without_hardware does), or run it against
    ``sim_devices``. The limits are checked before the run opens.
    """
    _check_protocols(detector, mono)
    line_key = line_key or f"{detector.name}_line"
    i0_key = i0_key or f"{detector.name}_i0"
    y = _validate(planner, detector, mono, stage, y_positions, line_key, i0_key)
    _validate_retries(max_retries, trigger_timeout)
    analysis, n_components, n_clusters = _validate_analysis(planner, analysis, n_components,
                                                            n_clusters)
    _md = _with_own_copy(_merge_md(_start_metadata(planner, detector, mono, stage, y, line_key,
                                                   i0_key, analysis, n_components, n_clusters), md))
    return (yield from _lockstep(planner, detector, mono, stage, y, line_key=line_key, i0_key=i0_key,
                                 analysis=analysis, n_components=n_components,
                                 n_clusters=n_clusters, max_retries=max_retries,
                                 trigger_timeout=trigger_timeout, md=_md))


def _hinted_fields(obj) -> list[str]:
    """The read keys ``obj`` hints (bluesky's convention for plot axes); its name otherwise."""
    hints = getattr(obj, "hints", None)
    fields = hints.get("fields") if isinstance(hints, Mapping) else None
    if fields:
        return [str(f) for f in fields]
    # no hints: its name when that is a read key, else its first read key (an ophyd
    # positioner's readback, e.g. 'mono_energy'): a plot axis not in the events is dropped
    keys = _describe(obj)
    if keys and obj.name not in keys:
        return [str(next(iter(keys)))]
    return [obj.name]


def _start_metadata(planner, detector, mono, stage, y, line_key, i0_key, analysis, n_components,
                    n_clusters) -> dict[str, Any]:
    n_y, n_x = planner.shape
    return {
        "detectors": [detector.name],
        "motors": [mono.name, stage.y.name],
        "method": planner.method,
        "planner": type(planner).__name__,
        "energies": planner.energies.tolist(),
        "shape": [n_y, n_x],
        "y_positions": y.tolist(),
        "seed": planner.seed,  # an int: _validate and resume's _planner_for refuse any other
        "sampling_ratio": planner.sampling_ratio,
        "dictionary_name": None,  # the name of the reference spectra: set it with md={...}
        "planner_kwargs": planner_metadata(planner),
        "cost_model": asdict(planner.cost_model),
        "line_key": line_key,
        "i0_key": i0_key,
        "analysis": {"n_components": n_components, "n_clusters": n_clusters} if analysis else None,
        "curiss_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "plan_name": "subsampled_scan",
        "plan_args": {"planner": repr(planner), "detector": repr(detector), "mono": repr(mono),
                      "stage": repr(stage)},
        # the x axis of live plots: the monochromator's hinted read key (e.g. "mono_energy")
        "hints": {"dimensions": [(_hinted_fields(mono), "primary")]},
        # rows to measure, when known before the run (progress bars): the raster's
        **({"num_points": int(planner.energies.size * n_y)} if planner.method == "raster" else {}),
    }


#: consecutive rows given up on (each after ``1 + max_retries`` attempts) that stop a run
MAX_FAILED_ROWS_IN_A_ROW = 5
#: distinct energies the monochromator failed to reach in a row (no move succeeded in between)
#: that stop a run; it is then asked for an energy it reached before, to tell a dead
#: monochromator from energies out of its reach. One unreachable energy, asked for again and
#: again, does not count more than once.
MAX_FAILED_ENERGIES_IN_A_ROW = 5


def _probe_energy(reached: list[int], unreached: list[int], n_e: int,
                  current: int | None = None) -> int | None:
    """Energy index to ask a monochromator for after it failed ``unreached`` in a row.

    Not the energy it sits at (``current``, else the last it reached): a move to where a stuck
    monochromator is succeeds. The latest other energy it reached in this run, else the one
    farthest from those it failed and from where it sits (None: there is no other energy).
    """
    here = [i for i in (current, reached[-1] if reached else None) if i is not None]
    for i in reversed(reached):
        if i not in here:
            return i
    others = [i for i in range(n_e) if i not in unreached and i not in here]
    if not others:
        return None
    return max(others, key=lambda i: (min(abs(i - u) for u in [*unreached, *here]), -i))


def _energy_index_of(mono, energies: np.ndarray) -> int | None:
    """Index of the grid energy the monochromator sits at (None: unknown, or off the grid by
    more than one step)."""
    try:
        pos = float(_one_axis(getattr(mono, "position")))
    except Exception:  # no position, or a device that cannot answer now: not used
        return None
    if not np.isfinite(pos):
        return None
    i = int(np.argmin(np.abs(energies - pos)))
    step = float(np.max(np.diff(energies))) if energies.size > 1 else 0.0
    return i if abs(energies[i] - pos) <= step else None


def _ev(energies: np.ndarray, indices: list[int]) -> str:
    return ", ".join(f"{energies[i]:g}" for i in indices) + " eV"


def _once(plan):
    """Run ``plan`` (messages that save an event) with rewinding off.

    An immediate pause rewinds a plan to its last checkpoint and replays the messages since:
    after a ``save`` that would save the event twice, and between a ``read`` and its ``save``
    it would save a new reading in place of the one the planner was given. Inside this
    wrapper nothing is replayed: a pause resumes where it stopped (a read it interrupted
    returns None, which the row's validation turns into a fault and a retry). The moves and the
    trigger before it stay rewindable, so a pause there moves and triggers again.
    """
    return (yield from bpp.rewindable_wrapper(plan, False))


def _lockstep(planner, detector, mono, stage, y, *, line_key, i0_key, analysis, n_components,
              n_clusters, max_retries, trigger_timeout, md, pending=None, reused=None):
    """The lockstep loop of :func:`subsampled_scan` (and of :func:`resume`).

    ``pending`` (k, 2): rows of the planner's current request still to measure (a resumed
    planner); ``reused``: values of the ``reused`` stream's one event (rows of earlier runs).
    """
    n_e, (n_y, n_x) = planner.energies.size, planner.shape
    rec = _Record("planner", _planner_describe(n_e, n_y), plot=("sampling_ratio",))
    idx = _Record("curiss", {"energy_index": _key("integer", (), "int64"),
                             "row_index": _key("integer", (), "int64")})
    ana_rec = _Record("analysis", _analysis_describe(n_e, n_y, n_x, n_clusters, n_components))
    fault_rec = _Record("fault", {"energy_index": _key("integer", (), "int64"),
                                  "row_index": _key("integer", (), "int64"),
                                  "kind": _key("string"), "attempt": _key("integer", (), "int64"),
                                  "message": _key("string")})

    def emit_decision(decision):
        rec.set(decision_record(planner, decision))
        yield from bps.checkpoint()
        yield from _once(bps.trigger_and_read([rec], name="planner"))
        yield from bps.checkpoint()

    def record_fault(e, r, kind, attempt, message):
        fault_rec.set({"energy_index": int(e), "row_index": int(r), "kind": kind,
                       "attempt": int(attempt), "message": str(message)[:500]})
        yield from _once(bps.trigger_and_read([fault_rec], name="faults"))

    def give_up(e, r, reason, attempts):
        """The planner gives up on (e, r); a 'failed' event records it (replays need it)."""
        planner.mark_failed(e, r, reason)
        yield from record_fault(e, r, "failed", attempts, reason)

    def reach(e):
        """Move to energy e, retried; each failure is a 'mono' fault. True when there."""
        for attempt in range(1 + max_retries):
            try:
                yield from bps.mv(mono, float(planner.energies[e]))
                return True
            except FailedStatus as exc:
                yield from record_fault(e, -1, "mono", attempt, exc)
        return False

    def move_mono(e, rows):
        """Move to energy e; when it cannot get there, give up on these rows. True when there."""
        if (yield from reach(e)):
            return True
        for r in rows:
            yield from give_up(e, r, "monochromator did not reach the energy", 1 + max_retries)
        return False

    def save_row():
        """Read the triggered row; save it to 'primary' when valid, else drop it."""
        yield from bps.create("primary")
        reading = {}
        for obj in (detector, mono, stage.y, idx):
            ret = yield from bps.read(obj)
            reading.update(ret or {})  # None: a pause interrupted this read (a fault, retried)
        od, problem = _row_od(reading, line_key, i0_key, n_x)
        if problem is None:
            yield from bps.save()
        else:
            yield from bps.drop()  # a bad reading never reaches 'primary' nor the planner
        return od, problem

    def measure_row(e, r):
        """One spatial row, validated before it is saved to 'primary'; retried on faults.

        Returns the row's optical density (n_x,) or None when every attempt failed.
        """
        for attempt in range(1 + max_retries):
            yield from bps.checkpoint()
            try:
                yield from bps.mv(stage.y, float(y[r]))
            except FailedStatus as exc:
                yield from record_fault(e, r, "stage", attempt, exc)
                continue
            idx.set({"energy_index": e, "row_index": r})
            group = f"curiss-trigger-{e}-{r}-{attempt}"
            yield from bps.trigger(detector, group=group)
            try:
                yield from bps.wait(group=group, timeout=trigger_timeout)
            except (WaitForTimeoutError, FailedStatus) as exc:
                kind = "timeout" if isinstance(exc, WaitForTimeoutError) else "detector"
                yield from record_fault(e, r, kind, attempt, exc or f"no answer in {trigger_timeout} s")
                continue
            od, problem = yield from _once(save_row())
            if problem is None:
                # given to the planner before any other message: a pause (then stop or abort)
                # at the next checkpoint finds the planner holding every row 'primary' holds
                planner.ingest(e, r, od)
            yield from bps.checkpoint()
            if problem is None:
                return od
            yield from record_fault(e, r, problem[0], attempt, problem[1])
        yield from give_up(e, r, f"no valid reading in {1 + max_retries} attempts", 1 + max_retries)
        return None

    # staged like bluesky's own scans stage their detectors and motors (stage_sigs applied);
    # a positioner that is not Stageable (a bare Movable) is left alone
    @bpp.stage_decorator([detector] + [m for m in (mono, stage.y) if isinstance(m, Stageable)])
    @bpp.run_decorator(md=md)
    def inner():
        # 'primary' described now, while the devices are in the state the checks above saw:
        # bluesky describes a stream at its first read, also one whose bundle is then dropped, so
        # a first row with a short line gave the whole run a descriptor of that length
        # (not rewound: a pause right after it would declare it again on resume; made inside a
        # plain generator, so a run aborted before it does not leave bluesky's "never iterated")
        def declare_primary():
            return (yield from bps.declare_stream(detector, mono, stage.y, idx, name="primary"))

        yield from _once(declare_primary())
        if reused is not None:
            for name, values in reused.items():
                rrec = _Record(name, _reused_describe(values))
                rrec.set(values)
                yield from _once(bps.trigger_and_read([rrec], name=name))
        given_up = []  # rows given up on since the last valid one
        unreached = []  # energies the monochromator failed to reach since its last good move
        reached = []  # energies it reached in this run, in order
        first = pending
        if first is not None and len(first):  # the decision whose rows are still to measure
            yield from emit_decision(planner.history[-1])
        while True:
            if first is not None:  # a resumed planner: finish its current request first
                pairs, first = first, None
            else:
                request = planner.suggest()
                yield from emit_decision(planner.history[-1])
                if request is None:
                    break
                pairs = request.pairs
            for e, rows in _ordered_pairs(pairs):
                yield from bps.checkpoint()
                if not (yield from move_mono(e, rows)):
                    if int(e) not in unreached:
                        unreached.append(int(e))
                    if len(unreached) >= MAX_FAILED_ENERGIES_IN_A_ROW:
                        # a dead monochromator, or a part of the grid it cannot reach (sorted
                        # requests put neighbouring energies in a row): no planner can complete
                        # an energy without rows, so the run stops either way (resumable); an
                        # energy it reached before tells which it is
                        target = _probe_energy(reached, unreached, planner.energies.size,
                                               _energy_index_of(mono, planner.energies))
                        what = (f"the monochromator failed to reach {len(unreached)} energies "
                                f"in a row ({1 + max_retries} attempts each; energy indices "
                                f"{unreached}, {_ev(planner.energies, unreached)}; the 'faults' "
                                f"stream says why)")
                        if target is not None and (yield from reach(target)):
                            raise RuntimeError(
                                f"{what}, but it reached energy index {target} "
                                f"({planner.energies[target]:g} eV) when asked for it: those "
                                "energies look out of its reach (a grating or harmonic change, "
                                "limits wider than it can go). No completion can do without "
                                "them, so the acquisition stops here. The rows measured so far "
                                "are in the run; continue it with curiss.plans.resume once "
                                "fixed, or measure again without those energies.")
                        raise RuntimeError(
                            f"{what}" + ("" if target is None else
                                         f", nor energy index {target} when asked for it")
                            + ": it is down, so the acquisition stops here. The rows "
                            "measured so far are in the run; continue it with "
                            "curiss.plans.resume once fixed.")
                    continue
                unreached = []
                if not reached or reached[-1] != int(e):
                    reached.append(int(e))
                for r in rows:
                    od = yield from measure_row(e, r)  # (given to the planner when valid)
                    if od is not None:
                        given_up = []
                        continue
                    given_up.append((e, r))
                    if len(given_up) >= MAX_FAILED_ROWS_IN_A_ROW:
                        raise RuntimeError(
                            f"{len(given_up)} rows in a row gave no valid reading in "
                            f"{1 + max_retries} attempts each ((energy_index, row_index) "
                            f"{given_up}; the 'faults' stream says why): the detector or the beam "
                            "is down, so the acquisition stops here. The rows measured so far are "
                            "in the run; continue it with curiss.plans.resume once fixed.")
        if analysis:
            try:
                cube = planner.completed()
            except RuntimeError as exc:  # failed rows left nothing to complete from (the stop
                # record says why); every measured row is in the run, which can be resumed
                yield from record_fault(-1, -1, "completion", 0, f"no completion: {exc}")
                return
            try:
                ana = spectral_analysis(cube, n_components=n_components, n_clusters=n_clusters,
                                        seed=0, mask=planner.mask, measured=planner.measured)
            except ValueError as exc:  # e.g. fewer distinct spectra than clusters: the data are
                # intact and the run is complete; the analysis can be run again offline
                yield from record_fault(-1, -1, "analysis", 0, f"analysis skipped: {exc}")
                return
            ana_rec.set({
                "completed": cube,
                "mask": planner.mask.astype(np.uint8),
                "labels": ana.labels.astype(np.int64),
                "cluster_spectra": ana.cluster_spectra,
                "eigenspectra": ana.eigenspectra,
            })
            yield from _once(bps.trigger_and_read([ana_rec], name="analysis"))

    return (yield from inner())


def _reused_describe(values: dict[str, Any]) -> dict[str, dict]:
    return {k: _key("array", np.shape(v), np.asarray(v).dtype.str) for k, v in values.items()}


def resume(run, detector: Readable, mono: Movable, stage, *, catalog=None, max_retries: int = 2,
           trigger_timeout: float | None = 10.0, md: dict | None = None):
    """Continue an interrupted acquisition into a new run linked to the old one.

    The run's planner is rebuilt from its start document (method, keywords, seed) and replayed
    on the rows the run measured and gave up on, in their order: it is then exactly where the
    run stopped, with the same random state. The new run first records those rows (stream
    ``reused``, one event; ``reused_failed`` for rows given up on), then measures what is left
    of the current request and goes on as the original plan would have, into ``primary``.
    Its start document repeats the old run's settings and adds ``resumes`` (the old uid) and
    ``resumed_rows``, so the new run alone can be loaded (:func:`curiss.store.load_run` merges
    the reused rows) and recomputed (:func:`curiss.store.recompute`). A resumed run can be
    resumed again.

    Parameters
    ----------
    run : curiss.store.RunData or catalog entry or str
        The interrupted run (``exit_status`` "abort" or "fail"; "success" from ``RE.stop()``
        before its planner finished; a run whose process was killed once
        :func:`curiss.store.recover` has put it back, with ``exit_status`` "abort"): its data,
        its catalog entry, or its uid (then give ``catalog``). A run without a stop document is
        refused: it is still being written, or its process died and its journal, which may hold
        rows the catalog lacks, has not been recovered yet.
    detector, mono, stage
        The devices, as for :func:`subsampled_scan`; the stage positions and reading keys of
        the old run are used (``y_positions``, ``line_key`` and ``i0_key`` from its start
        document).
    catalog : tiled client or str or os.PathLike, optional
        Where to look the uid up.
    max_retries, trigger_timeout
        As for :func:`subsampled_scan`.
    md : dict, optional
        Extra metadata for the start document.

    Returns
    -------
    str
        The new run's uid.

    Raises
    ------
    ValueError
        Before anything moves: the run's planner finished, it has no stop document (not
        recovered yet, or still being written), the run is not a curiss run,
        recorded no seed, or its rows cannot be retraced by its planner (another curiss
        version).
    """
    from .store import RunData, load_run
    from .store._recompute import _planner_for, _replay_records

    data = run if isinstance(run, RunData) else load_run(run, catalog)
    if data.stop is None:
        raise ValueError(
            f"run {data.uid} has no stop document: it is still being written (by this or another "
            "process), or its process died and the catalog may lack its last rows. If no process "
            "is writing it, run curiss.store.recover(catalog) first (it puts the journaled rows "
            "back and closes the run), then resume it")
    planner = _planner_for(data)
    pending = _replay_records(planner, data)
    if data.exit_status == "success" and pending is None:
        # (RE.stop() ends a run with "success" too, but its planner is not finished: resumable)
        raise ValueError(f"run {data.uid} finished successfully; there is nothing to resume")
    start = data.start
    y = np.asarray(start.get("y_positions", np.arange(data.shape[0])), dtype=float)
    _check_protocols(detector, mono)
    line_key = start.get("line_key") or f"{detector.name}_line"  # the keys the run was measured with
    i0_key = start.get("i0_key") or f"{detector.name}_i0"
    y = _validate_devices(planner, detector, mono, stage, y, line_key, i0_key)
    _validate_retries(max_retries, trigger_timeout)
    ana = start.get("analysis")
    analysis = ana is not None
    n_components = int((ana or {}).get("n_components", 3))
    n_clusters = int((ana or {}).get("n_clusters", 4))
    _md = _start_metadata(planner, detector, mono, stage, y, line_key, i0_key, analysis,
                          n_components, n_clusters)
    _md["planner_kwargs"] = start["planner_kwargs"]  # exactly as recorded (rebuilds the planner)
    _md.update({
        "plan_name": "resume",
        "plan_args": {"run": data.uid, "detector": repr(detector), "mono": repr(mono),
                      "stage": repr(stage), "max_retries": max_retries,
                      "trigger_timeout": trigger_timeout},
        "resumes": data.uid,
        "resumed_rows": int(len(data.order)),
        "resumed_plan_name": start.get("plan_name"),
    })
    for k in ("dictionary_name", "sample", "proposal"):
        if start.get(k) is not None and _md.get(k) is None:
            _md[k] = start[k]
    _md = _with_own_copy(_merge_md(_md, md))
    reused = {}
    if len(data.order):  # (a run interrupted before its first row has nothing to reuse)
        reused["reused"] = {
            "energy_index": data.order[:, 0].astype(np.int64),
            "row_index": data.order[:, 1].astype(np.int64),
            "line": data.counts[data.order[:, 0], data.order[:, 1]].reshape(-1, data.shape[1]),
            "i0": np.asarray(data.i0, dtype=float),
            "measured_at": np.asarray(data.times, dtype=float),
        }
    if len(data.failed):
        reused["reused_failed"] = {
            "energy_index": data.failed[:, 0].astype(np.int64),
            "row_index": data.failed[:, 1].astype(np.int64),
            "failed_at": np.asarray(data.failed_times, dtype=float),
        }
    if pending is None:
        pending = np.zeros((0, 2), np.int64)
    return (yield from _lockstep(planner, detector, mono, stage, y, line_key=line_key, i0_key=i0_key,
                                 analysis=analysis, n_components=n_components,
                                 n_clusters=n_clusters, max_retries=max_retries,
                                 trigger_timeout=trigger_timeout, md=_md, pending=pending,
                                 reused=reused or None))


def _resolve_seed(seed):
    """Plans record a concrete seed so that every run can be reproduced."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**32))
    if isinstance(seed, np.random.Generator):
        raise TypeError("seed must be an int or None in a plan: a numpy Generator cannot be recorded "
                        "in the start document, so the run could be neither resumed nor recomputed")
    _check_recordable_seed(seed, "seed")
    return seed


def _check_recordable_seed(seed, name: str) -> None:
    """A seed the start document records exactly (a larger one is stored clamped, and the run
    could be neither resumed nor recomputed); other types are left to ``validate_seed``."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) \
            and int(seed) > _JSON_INT_MAX:
        raise ValueError(f"{name} must be at most 2**53 - 1 = {_JSON_INT_MAX} in a plan; got {seed}: "
                         "the catalog stores it as a JSON number, and would store a larger one "
                         "clamped, so the run could be neither resumed nor recomputed")


def _shape_for(detector, y_positions, shape, line_key):
    if shape is not None:
        return validate_shape(shape)  # refuses (6.7, 5) rather than truncating it
    if y_positions is None:
        raise ValueError("give either shape=(n_y, n_x) or y_positions (one stage y per spatial row)")
    n_x = _line_length(_describe(detector), line_key or f"{detector.name}_line")
    if n_x is None:
        raise ValueError("cannot read the detector's line length; give shape=(n_y, n_x)")
    return (len(y_positions), n_x)


def planner_metadata(planner: Planner) -> dict[str, Any]:
    """JSON-friendly constructor keywords of ``planner`` for the start document.

    ``curiss.make_planner(start["method"], start["energies"], start["shape"],
    **start["planner_kwargs"])`` rebuilds it (the cost model as a dict is accepted back).
    """
    out = {}
    for k, v in planner.get_params().items():
        if k == "cost_model" and v is not None:
            v = asdict(planner.cost_model)  # given as a CostModel or as a dict (the queue's JSON)
        if k == "seed" and isinstance(v, np.random.Generator):
            v = None  # a Generator cannot be recorded; plans always pass an int
        out[k] = _jsonable(np.asarray(v, float) if k == "dictionary" and v is not None else v)
    return out


def _strategy_plan(cls, plan_name, detector, mono, stage, energies, *, shape, y_positions, seed,
                   planner_kwargs, plan_kwargs, md):
    _check_protocols(detector, mono)
    shape = _shape_for(detector, y_positions, shape, plan_kwargs.get("line_key"))
    seed = _resolve_seed(seed)
    planner = cls(energies, shape, seed=seed, **planner_kwargs)
    # the plan's own arguments, so that plan_name(**plan_args) (devices put back) runs it again
    args = {k: (asdict(planner.cost_model) if k == "cost_model" and v is not None else
                np.asarray(v, float).tolist() if k == "dictionary" and v is not None else
                _jsonable(v)) for k, v in planner_kwargs.items()}
    if cls is not RasterPlanner:
        args["seed"] = seed  # as drawn when None was given
    _md = _merge_md({
        "plan_name": plan_name,
        "plan_args": {"detector": repr(detector), "mono": repr(mono), "stage": repr(stage),
                      "energies": _jsonable(np.asarray(energies, float)), "shape": list(shape),
                      **args, **{k: _jsonable(v) for k, v in plan_kwargs.items()},
                      **({} if y_positions is None else {"y_positions": _jsonable(np.asarray(y_positions, float))})},
    }, md)
    return (yield from subsampled_scan(planner, detector, mono, stage, y_positions=y_positions,
                                       md=_md, **plan_kwargs))


#: parameter entries shared by the five strategy plans' docstrings (``%(name)s`` in them)
_PLAN_DOC = {
    "devices": """detector, mono, stage
        The line detector (Readable, Triggerable), the monochromator (Movable, eV) and the
        raster stage (``stage.y`` Movable), as in :func:`subsampled_scan`.
    energies : array_like, shape (n_E,)
        Energies of the stack, eV, strictly increasing.""",
    "raster": """shape, y_positions
        The raster: ``shape`` (n_y, n_x), or ``y_positions`` (n_y,) stage y of each spatial row
        with n_x from the detector's line; one of them is needed.""",
    "analysis": """analysis, n_components, n_clusters, max_retries, trigger_timeout
        As in :func:`subsampled_scan`.""",
    "analysis_acuriss": """analysis, max_retries, trigger_timeout
        As in :func:`subsampled_scan`.""",
    "md_returns": """md : dict, optional
        Extra metadata for the start document.

    Returns
    -------
    str
        The run uid.""",
}


def _plan_doc(func):
    """Fill the shared parameter entries (:data:`_PLAN_DOC`) into a strategy plan's docstring."""
    func.__doc__ = func.__doc__ % _PLAN_DOC
    return func


@_plan_doc
def raster_scan(detector: Readable, mono: Movable, stage, energies, *, shape=None, y_positions=None,
                cost_model=None, analysis: bool = True, n_components: int = 3,
                n_clusters: int = 4, max_retries: int = 2, trigger_timeout: float | None = 10.0,
                md: dict | None = None):
    """Conventional full stack: every spatial row at every energy (``RasterPlanner``).

    See :func:`subsampled_scan` for the devices, the documents and the fault handling.

    Parameters
    ----------
    %(devices)s
    cost_model : curiss.cost.CostModel, optional
        Cost model of the time and dose the run reports.
    %(raster)s
    %(analysis)s
    %(md_returns)s
    """
    return (yield from _strategy_plan(
        RasterPlanner, "raster_scan", detector, mono, stage, energies, shape=shape,
        y_positions=y_positions, seed=0, planner_kwargs={"cost_model": cost_model},
        plan_kwargs={"analysis": analysis, "n_components": n_components, "n_clusters": n_clusters,
                     "max_retries": max_retries, "trigger_timeout": trigger_timeout},
        md=md))


@_plan_doc
def random_rows_scan(detector: Readable, mono: Movable, stage, energies, *, sampling_ratio: float,
                     shape=None, y_positions=None, seed=None, cost_model=None,
                     max_rank: int | None = None, analysis: bool = True, n_components: int = 3,
                     n_clusters: int = 4, max_retries: int = 2, trigger_timeout: float | None = 10.0,
                     md: dict | None = None):
    """Random spatial rows at every energy + LoopedASD (baseline; ``RandomRowsPlanner``).

    Parameters
    ----------
    %(devices)s
    sampling_ratio, seed, cost_model, max_rank
        Passed to :class:`curiss.planners.RandomRowsPlanner` (``seed=None``: one is drawn and
        recorded). Its other keywords (``asd_tol``, ``row_budget``, ``retry_failed``) are not
        plan options: build the planner and run :func:`subsampled_scan`.
    %(raster)s
    %(analysis)s
    %(md_returns)s
    """
    return (yield from _strategy_plan(
        RandomRowsPlanner, "random_rows_scan", detector, mono, stage, energies, shape=shape,
        y_positions=y_positions, seed=seed,
        planner_kwargs={"sampling_ratio": sampling_ratio, "cost_model": cost_model,
                        "max_rank": max_rank},
        plan_kwargs={"analysis": analysis, "n_components": n_components, "n_clusters": n_clusters,
                     "max_retries": max_retries, "trigger_timeout": trigger_timeout},
        md=md))


@_plan_doc
def riss_scan(detector: Readable, mono: Movable, stage, energies, *, sampling_ratio: float,
              dictionary=None, shape=None, y_positions=None, seed=None, cost_model=None,
              max_rank: int | None = None, energy_sampling: str = ENERGY_SAMPLING,
              budget_rule: str = PREVIOUS_BUDGET_RULE, analysis: bool = True,
              n_components: int = 3, n_clusters: int = 4, max_retries: int = 2,
              trigger_timeout: float | None = 10.0, md: dict | None = None):
    """RISS: images at energies chosen from the dictionary, fresh ARP rows per remaining energy,
    LoopedASD (``RISSPlanner``; ``energy_sampling="leverage", budget_rule="authors"``: the
    authors' choices).

    Parameters
    ----------
    %(devices)s
    sampling_ratio, dictionary, seed, cost_model, max_rank, energy_sampling, budget_rule
        Passed to :class:`curiss.planners.RISSPlanner` (``seed=None``: one is drawn and
        recorded). Its other keywords (``asd_tol``) are not plan options: build the planner and
        run :func:`subsampled_scan`.
    %(raster)s
    %(analysis)s
    %(md_returns)s
    """
    return (yield from _strategy_plan(
        RISSPlanner, "riss_scan", detector, mono, stage, energies, shape=shape,
        y_positions=y_positions, seed=seed,
        planner_kwargs={"sampling_ratio": sampling_ratio, "dictionary": dictionary,
                        "cost_model": cost_model, "max_rank": max_rank,
                        "energy_sampling": energy_sampling, "budget_rule": budget_rule},
        plan_kwargs={"analysis": analysis, "n_components": n_components, "n_clusters": n_clusters,
                     "max_retries": max_retries, "trigger_timeout": trigger_timeout},
        md=md))


@_plan_doc
def curiss_scan(detector: Readable, mono: Movable, stage, energies, *, sampling_ratio: float,
                dictionary=None, shape=None, y_positions=None, seed=None, cost_model=None,
                core_rank: int | None = None, noise_level: float | None = None,
                energy_sampling: str = ENERGY_SAMPLING, budget_rule: str = BUDGET_RULE,
                analysis: bool = True, n_components: int = 3, n_clusters: int = 4,
                max_retries: int = 2, trigger_timeout: float | None = 10.0,
                md: dict | None = None):
    """CURISS: images at energies chosen from the dictionary, the same ARP rows at every other
    energy, CUR completion (``CURISSPlanner``; ``energy_sampling="leverage",
    budget_rule="authors"``: the authors' choices).

    Parameters
    ----------
    %(devices)s
    sampling_ratio, dictionary, seed, cost_model, core_rank, noise_level
        Planner keywords: see :class:`curiss.planners.CURISSPlanner`.
    energy_sampling, budget_rule
        Passed to :class:`curiss.planners.CURISSPlanner` (``seed=None``: one is drawn and
        recorded). Its other keywords (``core_rtol``, ``write_back``, ``row_sampling``) are not
        plan options: build the planner and run :func:`subsampled_scan`.
    %(raster)s
    %(analysis)s
    %(md_returns)s
    """
    return (yield from _strategy_plan(
        CURISSPlanner, "curiss_scan", detector, mono, stage, energies, shape=shape,
        y_positions=y_positions, seed=seed,
        planner_kwargs={"sampling_ratio": sampling_ratio, "dictionary": dictionary,
                        "cost_model": cost_model, "core_rank": core_rank,
                        "noise_level": noise_level, "energy_sampling": energy_sampling,
                        "budget_rule": budget_rule},
        plan_kwargs={"analysis": analysis, "n_components": n_components, "n_clusters": n_clusters,
                     "max_retries": max_retries, "trigger_timeout": trigger_timeout},
        md=md))


@_plan_doc
def acuriss_scan(detector: Readable, mono: Movable, stage, energies, *, sampling_ratio: float = 0.10,
                 initial_ratio: float = 0.02, dictionary=None, shape=None, y_positions=None,
                 seed=None, cost_model=None, max_iterations: int = 50,
                 stop_rule: str = "prediction", tol_prediction: float | None = None,
                 n_consecutive: int | None = None, min_images: int = 3, min_rows: int | None = None,
                 images_per_row: int | None = None, energy_refinement: str | None = None,
                 row_refinement: str | None = None, row_coverage: bool | None = None,
                 tol_completion: float = 1e-2,
                 tol_spectral: float = 1e-2, n_components: int = 3, n_clusters: int = 4,
                 mode: str = "alternate", max_time: float | None = None,
                 core_rank: int | None = None, noise_level: float | None = None,
                 energy_sampling: str = ENERGY_SAMPLING, budget_rule: str = BUDGET_RULE,
                 analysis: bool = True, max_retries: int = 2, trigger_timeout: float | None = 10.0,
                 md: dict | None = None):
    """ACURISS: CURISS at ``initial_ratio``, then images and row scans until the completion predicts
    what is measured next.

    ``sampling_ratio`` caps the budget. The default ``stop_rule="prediction"`` stops when the
    completion predicts newly measured rows to within ``tol_prediction`` above the noise;
    ``stop_rule="variation"`` is the earlier rule (``tol_completion``, ``tol_spectral``). Each
    refinement image is the energy whose measured spatial rows the images explain least
    (``energy_refinement="residual"``; ``"dictionary"``: drawn from the dictionary, as earlier
    versions did), and each refinement row the one the images explain least
    (``row_refinement="pivoted"``; ``"arp"``: drawn by ARP, as earlier versions did). The rule
    does not stop while the images show a component that the measured rows miss
    (``row_coverage``, default on with the prediction rule: a row scan comes next instead). See
    :class:`curiss.ACURISSPlanner` for the keywords; the authors' behaviour is
    ``mode="energies", stop_rule="variation", energy_sampling="leverage", budget_rule="authors"``.

    Parameters
    ----------
    %(devices)s
    sampling_ratio, initial_ratio, dictionary, seed, cost_model, max_iterations
        Planner keywords: see :class:`curiss.planners.ACURISSPlanner`.
    stop_rule, tol_prediction, n_consecutive, min_images, min_rows, images_per_row
        Planner keywords: see :class:`curiss.planners.ACURISSPlanner`.
    energy_refinement, row_refinement, row_coverage, tol_completion, tol_spectral, mode
        Planner keywords: see :class:`curiss.planners.ACURISSPlanner`.
    max_time, core_rank, noise_level, energy_sampling, budget_rule
        Passed to :class:`curiss.planners.ACURISSPlanner` (``seed=None``: one is drawn and
        recorded). Its other keywords (``core_rtol``, ``write_back``, ``kmeans_warm_start``) are
        not plan options: build the planner and run :func:`subsampled_scan`.
    n_components, n_clusters : int
        Settings of the spectral analysis, used by the planner's stop rule and by the
        ``analysis`` stream.
    %(raster)s
    %(analysis_acuriss)s
    %(md_returns)s
    """
    return (yield from _strategy_plan(
        ACURISSPlanner, "acuriss_scan", detector, mono, stage, energies, shape=shape,
        y_positions=y_positions, seed=seed,
        planner_kwargs={"sampling_ratio": sampling_ratio, "initial_ratio": initial_ratio,
                        "dictionary": dictionary, "cost_model": cost_model,
                        "max_iterations": max_iterations, "stop_rule": stop_rule,
                        "tol_prediction": tol_prediction, "n_consecutive": n_consecutive,
                        "min_images": min_images, "min_rows": min_rows,
                        "images_per_row": images_per_row,
                        "energy_refinement": energy_refinement,
                        "row_refinement": row_refinement, "row_coverage": row_coverage,
                        "tol_completion": tol_completion,
                        "tol_spectral": tol_spectral, "n_components": n_components,
                        "n_clusters": n_clusters, "mode": mode, "max_time": max_time,
                        "core_rank": core_rank, "noise_level": noise_level,
                        "energy_sampling": energy_sampling, "budget_rule": budget_rule},
        plan_kwargs={"analysis": analysis, "n_components": n_components, "n_clusters": n_clusters,
                     "max_retries": max_retries, "trigger_timeout": trigger_timeout},
        md=md))
