"""Read a curiss run back from the catalog into plain numpy arrays (:class:`RunData`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RunData", "load_run", "line_od"]

# Data keys the event-model normaliser of bluesky-tiled-plugins renames ("time" -> "time_"),
# because they clash with the event columns of the stored table.
_RESERVED = ("time", "seq_num")

# dtypes of the curiss document model (design §5), applied on reading: a descriptor without
# ``dtype_numpy`` makes the writer store every array as float64.
_INT_KEYS = {"energy_index", "row_index", "rank", "iteration", "labels"}
_BOOL_KEYS = {"request", "mask"}


@dataclass(eq=False)
class RunData:
    """One curiss acquisition read back from the catalog.

    Attributes
    ----------
    uid : str
        The run's start uid.
    start : dict
        The start document (plain ``dict``/``list`` values), with the keys that rebuild the run
        taken from its ``curiss`` copy: bluesky's per-call metadata of the same name
        (``RE(plan, method="STXM")``) stays in the catalog's document, not here.
    stop : dict or None
        The stop document (``exit_status`` "success", "fail" or "abort"); None while running.
    energies : ndarray, shape (n_E,)
        Energies of the stack (eV), from the start document.
    shape : tuple of int
        ``(n_y, n_x)``: spatial rows × pixels per row.
    od : ndarray, shape (n_E, n_y, n_x)
        Measured optical density −ln(line / I0) of every measured spatial row; NaN elsewhere.
        For a resumed run (``curiss.plans.resume``) this includes the rows reused from the
        interrupted run(s). A row saved twice (bluesky replaying a row's messages after an
        immediate pause) keeps its first reading, the one the planner used; see ``repeats``.
    mask : ndarray of bool, shape (n_E, n_y, n_x)
        True where measured.
    counts : ndarray, shape (n_E, n_y, n_x)
        Raw line counts of the measured rows; NaN elsewhere.
    order : ndarray of int, shape (n_rows, 2)
        ``(energy_index, row_index)`` of each measured row, in acquisition order: first the
        ``reused`` rows of a resumed run, then this run's ``primary`` events (repeats dropped).
    primary : dict of str to ndarray
        Every data key of the ``primary`` stream, one entry (leading axis) per event, plus
        ``"time"``: the event times (s since the epoch).
    history : list of dict
        One dict per ``planner`` event (decision), in order: data key → value (arrays as
        ndarrays, ``request`` as bool (n_E, n_y), scalars as Python numbers/strings).
    completed : ndarray, shape (n_E, n_y, n_x), or None
        The completed cube from the ``analysis`` stream; None without one.
    analysis : dict of str to ndarray, or None
        The last ``analysis`` event (``completed``, ``mask`` (bool), ``labels`` (n_y, n_x) int,
        ``cluster_spectra`` (n_E, n_clusters), ``eigenspectra`` (n_E, k)); None without one.
    times : ndarray, shape (n_rows,)
        When each row of ``order`` was measured (s since the epoch).
    i0 : ndarray, shape (n_rows,)
        Incident counts per pixel of each row of ``order``.
    reused : int
        How many of the first rows of ``order`` come from the run(s) this one resumes.
    failed : ndarray of int, shape (n_failed, 2)
        ``(energy_index, row_index)`` of the rows given up on (every attempt failed), including
        those of resumed runs; ``failed_times`` (n_failed,) says when.
    faults : list of dict
        The ``faults`` stream of this run: one dict per fault (``energy_index``, ``row_index``,
        ``kind``, ``attempt``, ``message``); ``kind == "failed"`` marks a row given up on.
    repeats : ndarray of int, shape (n_repeats, 2)
        Pairs saved again in ``primary`` after their first reading (ignored, see ``od``).
    """

    uid: str
    start: dict
    stop: dict | None
    energies: np.ndarray
    shape: tuple[int, int]
    od: np.ndarray
    mask: np.ndarray
    counts: np.ndarray
    order: np.ndarray
    primary: dict[str, np.ndarray]
    history: list[dict[str, Any]]
    completed: np.ndarray | None
    analysis: dict[str, np.ndarray] | None
    times: np.ndarray = None  # type: ignore[assignment]
    i0: np.ndarray = None  # type: ignore[assignment]
    reused: int = 0
    failed: np.ndarray = None  # type: ignore[assignment]
    failed_times: np.ndarray = None  # type: ignore[assignment]
    faults: list[dict[str, Any]] = None  # type: ignore[assignment]
    repeats: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self):
        n = len(self.order)
        if self.times is None:
            self.times = np.full(n, np.nan)
        if self.i0 is None:
            self.i0 = np.full(n, np.nan)
        if self.failed is None:
            self.failed = np.zeros((0, 2), np.int64)
        if self.failed_times is None:
            self.failed_times = np.full(len(self.failed), np.nan)
        if self.faults is None:
            self.faults = []
        if self.repeats is None:
            self.repeats = np.zeros((0, 2), np.int64)

    @property
    def resumes(self) -> str | None:
        """uid of the interrupted run this one continues (``curiss.plans.resume``), else None."""
        return self.start.get("resumes")

    @property
    def sampling_ratio(self) -> float:
        """Fraction of the stack measured, ``mask.mean()``."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def exit_status(self) -> str | None:
        """The stop document's ``exit_status``; None while the run is going on."""
        return None if self.stop is None else self.stop.get("exit_status")

    def __repr__(self) -> str:
        n_e, (n_y, n_x) = self.energies.size, self.shape
        return (f"RunData(uid={self.uid!r}, method={self.start.get('method')!r}, "
                f"shape=({n_e}, {n_y}, {n_x}), rows={len(self.order)}, "
                f"sampling_ratio={self.sampling_ratio:.3g}, exit_status={self.exit_status!r})")


def _plain(obj):
    """Tiled's read-only DictView/ListView (recursively) to plain dict/list."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [_plain(v) for v in obj]
    return obj


def _children(node) -> dict[str, Any]:
    """Child clients of a Tiled container, listed in one request (paged), without the
    bluesky-tiled-plugins wrappers (``.base``) so that no child costs a request of its own."""
    base = getattr(node, "base", node)
    return dict(base.items())


def _stream_nodes(run) -> dict[str, Any]:
    """Stream name -> stream node, in either layout (``run[name]`` or ``run["streams"][name]``)."""
    children = _children(run)
    sub = children.get("streams")
    if sub is not None and "BlueskyEventStream" not in {s.name for s in getattr(sub, "specs", [])}:
        return _children(sub)
    return children


def _columns_direct(stream) -> dict[str, np.ndarray]:
    """Read every part of a stream: zarr arrays one request each, the event table once."""
    import pandas

    cols: dict[str, np.ndarray] = {}
    for part, client in _children(stream).items():
        value = client.read()
        if isinstance(value, pandas.DataFrame):
            for name in value.columns:
                col = value[name]
                if isinstance(col.dtype, pandas.StringDtype) or col.dtype == object:
                    arr = col.to_numpy()
                    try:
                        arr = np.stack([np.asarray(v) for v in arr]) if len(arr) else arr
                    except ValueError:
                        pass
                    if arr.dtype == object and all(isinstance(v, str) for v in arr):
                        arr = arr.astype(str)
                    cols[str(name)] = arr
                else:
                    cols[str(name)] = col.to_numpy()
        else:
            cols[str(part)] = np.asarray(value)
    return cols


def _columns_composite(stream) -> dict[str, np.ndarray]:
    """Fallback: the plugin's own reader (an xarray Dataset of the data keys)."""
    ds = stream.read()
    cols = {str(k): np.asarray(ds[k].values) for k in ds.data_vars}
    if "time" in ds.coords:
        cols["time"] = np.asarray(ds["time"].values)
    return cols


def _read_stream(stream) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Read a stream as (data key → array with one leading entry per event, event times)."""
    md = _plain(getattr(stream, "metadata", {}) or {})
    declared = set((md.get("data_keys") or {}).keys())
    try:
        cols = _columns_direct(stream)
    except Exception:
        cols = _columns_composite(stream)
    cols = {k: v for k, v in cols.items() if not k.startswith("ts_") and k != "seq_num"}
    times = cols.pop("time", None)
    if times is not None:
        times = np.asarray(times, dtype=float)
    # Undo the writer's renaming of reserved data keys ("time" -> "time_").
    for name in _RESERVED:
        alias = f"{name}_"
        if alias in cols and name not in declared and name not in cols:
            cols[name] = cols.pop(alias)
    # A stream being written may have its zarr arrays and its table at different lengths for a
    # moment: keep the events that are complete.
    lengths = [len(v) for v in cols.values()] + ([len(times)] if times is not None else [])
    if lengths:
        n = min(lengths)
        cols = {k: v[:n] for k, v in cols.items()}
        times = None if times is None else times[:n]
    for k in list(cols):
        if k in _BOOL_KEYS:
            cols[k] = cols[k].astype(bool)
        elif k in _INT_KEYS and cols[k].dtype.kind == "f" and np.all(np.isfinite(cols[k])):
            cols[k] = cols[k].astype(np.int64)
    return cols, times


def _scalar(v):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _events(streams: dict[str, Any], name: str) -> tuple[list[dict[str, Any]], np.ndarray | None]:
    """The events of stream ``name`` (empty without one) as dicts (data key → value: arrays as
    ndarrays, scalars as Python numbers/strings), and their times."""
    stream = streams.get(name)
    if stream is None:
        return [], None
    cols, times = _read_stream(stream)
    n = min((len(v) for v in cols.values()), default=0)
    return [{k: _scalar(v[i]) for k, v in cols.items()} for i in range(n)], times


def load_run(run, catalog=None) -> RunData:
    """Read a curiss run back into numpy arrays.

    Parameters
    ----------
    run : BlueskyRun client or str
        A catalog entry (``load_run(catalog[uid])``, the main form), or a uid (then give
        ``catalog``). A run still being written can be read: ``stop`` is None and only the rows
        written so far (see :func:`curiss.store.writer_for`) are there.
    catalog : tiled client or str or os.PathLike, optional
        Where to look ``run`` up when it is a uid (anything :func:`open_catalog` accepts).

    Returns
    -------
    RunData
        ``od``/``mask``/``counts`` (n_E, n_y, n_x), ``order`` (n_rows, 2), the ``primary``
        columns, the planner ``history`` and the ``analysis`` results.

    Raises
    ------
    TypeError
        A uid without ``catalog``, or ``run`` of another type.
    KeyError
        The uid is not in the catalog.
    ValueError
        The run is not a curiss run (no ``energies``/``shape`` in its start document) or its
        rows do not fit them (index out of range, line of the wrong length).
    """
    if isinstance(run, str):
        if catalog is None:
            raise TypeError("load_run(uid) needs catalog=...: the catalog (or its directory) to "
                            "look the uid up in; or pass the entry, load_run(catalog[uid])")
        if isinstance(catalog, (str, os.PathLike)):
            from ._catalog import open_catalog

            catalog = open_catalog(catalog)
        uid = run
        try:
            run = catalog[uid]
        except (KeyError, ValueError):  # ValueError: a partial uid too short to look up
            raise KeyError(f"no run {uid!r} in the catalog") from None
    if not hasattr(run, "metadata"):
        raise TypeError(f"run must be a catalog entry (Tiled BlueskyRun client) or a uid string; "
                        f"got {type(run).__name__}")
    md = _plain(run.metadata)
    start = md.get("start")
    if not isinstance(start, dict):
        raise ValueError("not a Bluesky run: its metadata has no start document")
    if isinstance(start.get("curiss"), Mapping):  # the plan's own keys over per-call metadata
        start = {**start, **start["curiss"]}
    stop = md.get("stop") or None
    missing = [k for k in ("energies", "shape") if k not in start]
    if missing:
        raise ValueError(f"run {start.get('uid')!r} is not a curiss run: its start document has no "
                         f"{missing} (plan {start.get('plan_name')!r})")
    energies = np.asarray(start["energies"], dtype=float)
    if energies.ndim != 1:
        raise ValueError(f"start['energies'] must be a list of energies (eV); got shape {energies.shape}")
    shape = tuple(int(s) for s in start["shape"])
    if len(shape) != 2:
        raise ValueError(f"start['shape'] must be [n_y, n_x]; got {start['shape']!r}")
    n_e, (n_y, n_x) = energies.size, shape

    streams = _stream_nodes(run)

    # primary: one event per measured spatial row
    stream = streams.get("primary")
    primary, times = _read_stream(stream) if stream is not None else ({}, None)
    if times is not None and "time" not in primary:
        primary["time"] = times
    line_key = start.get("line_key") or "detector_line"
    i0_key = start.get("i0_key") or "detector_i0"
    od = np.full((n_e, n_y, n_x), np.nan)
    counts = np.full((n_e, n_y, n_x), np.nan)
    mask = np.zeros((n_e, n_y, n_x), dtype=bool)
    n_rows = min((len(v) for v in primary.values()), default=0)
    need = [k for k in ("energy_index", "row_index", line_key, i0_key) if k not in primary]
    if n_rows and need:
        if stop is not None:
            raise ValueError(f"the primary stream lacks {need}; it has {sorted(primary)}")
        n_rows = 0  # a run being written: its first rows are not all stored yet
    parts = []  # (energy_index, row_index, line, i0, times) of the reused rows, then primary's
    failed_parts = []  # (pairs, times) of the rows given up on
    reused, _ = _events(streams, "reused")  # one event: the rows of the resumed run(s)
    if reused:
        parts.append(tuple(np.asarray(reused[0][k]) for k in
                           ("energy_index", "row_index", "line", "i0", "measured_at")))
    reused_failed, _ = _events(streams, "reused_failed")
    if reused_failed:
        ev = reused_failed[0]
        failed_parts.append((np.column_stack([np.asarray(ev["energy_index"]),
                                              np.asarray(ev["row_index"])]),
                             np.asarray(ev["failed_at"], dtype=float)))
    n_reused = len(parts[0][0]) if parts else 0
    if n_rows:
        ptimes = times[:n_rows] if times is not None else np.full(n_rows, np.nan)
        parts.append((primary["energy_index"], primary["row_index"],
                      np.asarray(primary[line_key], dtype=float).reshape(n_rows, -1),
                      np.asarray(primary[i0_key], dtype=float).reshape(n_rows, -1), ptimes))
    repeats = np.zeros((0, 2), np.int64)
    if parts:
        ei = np.concatenate([np.asarray(p[0]).astype(np.int64).ravel() for p in parts])
        ri = np.concatenate([np.asarray(p[1]).astype(np.int64).ravel() for p in parts])
        line = np.concatenate([np.asarray(p[2], dtype=float).reshape(len(p[0]), -1) for p in parts])
        i0 = np.concatenate([np.asarray(p[3], dtype=float).reshape(len(p[0]), -1) for p in parts])
        row_times = np.concatenate([np.asarray(p[4], dtype=float).ravel() for p in parts])
        if line.shape[1] != n_x:
            raise ValueError(f"{line_key!r} has {line.shape[1]} pixels per row but shape[1] (n_x) is {n_x}")
        if ei.min() < 0 or ei.max() >= n_e or ri.min() < 0 or ri.max() >= n_y:
            raise ValueError(f"energy_index/row_index out of range for {n_e} energies and {n_y} rows")
        # keep the first event of each pair: a second one is bluesky replaying a row after an
        # immediate pause (the planner never asks for a measured row again) and the planner
        # used the first
        _, first = np.unique(np.column_stack([ei, ri]), axis=0, return_index=True)
        keep = np.zeros(ei.size, bool)
        keep[first] = True
        repeats = np.column_stack([ei[~keep], ri[~keep]])
        ei, ri, line, i0, row_times = ei[keep], ri[keep], line[keep], i0[keep], row_times[keep]
        row_i0 = i0.mean(axis=1)
        counts[ei, ri] = line
        od[ei, ri] = line_od(line, i0)
        mask[ei, ri] = True
        order = np.column_stack([ei, ri])
    else:
        order = np.zeros((0, 2), dtype=np.int64)
        row_times = row_i0 = np.zeros(0)

    # faults: one event per fault; "failed" marks a row given up on
    faults, ftimes = _events(streams, "faults")
    for i, f in enumerate(faults):
        f["time"] = float(ftimes[i]) if ftimes is not None else float("nan")
    gave_up = [f for f in faults if f.get("kind") == "failed"]
    if gave_up:
        failed_parts.append((np.array([[f["energy_index"], f["row_index"]] for f in gave_up],
                                      np.int64), np.array([f["time"] for f in gave_up])))
    if failed_parts:
        failed = np.concatenate([p[0] for p in failed_parts]).astype(np.int64).reshape(-1, 2)
        failed_times = np.concatenate([p[1] for p in failed_parts])
    else:
        failed, failed_times = np.zeros((0, 2), np.int64), np.zeros(0)

    # planner: one event per decision
    history, _ = _events(streams, "planner")

    # analysis: one event at the end
    analysis = completed = None
    stream = streams.get("analysis")
    if stream is not None:
        cols, _ = _read_stream(stream)
        if cols and min(len(v) for v in cols.values()) > 0:
            analysis = {k: np.asarray(v[-1]) for k, v in cols.items()}
            if "completed" in analysis:
                completed = np.asarray(analysis["completed"], dtype=float)

    return RunData(uid=str(start.get("uid", "")), start=start, stop=stop, energies=energies,
                   shape=(n_y, n_x), od=od, mask=mask, counts=counts, order=order,
                   primary=primary, history=history, completed=completed, analysis=analysis,
                   times=row_times, i0=row_i0, reused=n_reused, failed=failed, failed_times=failed_times,
                   faults=faults, repeats=repeats)


def line_od(line: np.ndarray, i0: np.ndarray) -> np.ndarray:
    """Optical density −ln(line / I0) of spatial rows, as the plans compute it.

    Parameters
    ----------
    line : ndarray, shape (n_rows, n_x) or (n_x,)
        Detector counts.
    i0 : ndarray, broadcastable to ``line``
        Incident counts per pixel.

    Returns
    -------
    ndarray, same shape as ``line``
        A pixel with zero counts on a line with some counts gets the OD of half a count (as
        the plans give the planner); NaN/Inf where I0 is not positive.
    """
    line = np.asarray(line, dtype=float)
    some = np.any(line > 0, axis=-1, keepdims=True)
    line = np.where(some & (line <= 0), 0.5, line)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.log(line / np.asarray(i0, dtype=float))
