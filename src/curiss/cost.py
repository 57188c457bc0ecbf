"""Time and dose model of a line-by-line spectromicroscopy acquisition (summarised in docs/methods.md, Quality measures).

The hardware measures one spatial row (``n_x`` pixels) at one energy at a time.
An acquisition is the sequence of measured ``(energy_index, row_index)`` pairs in
the order they were measured. Its time is::

    n_energy_changes * t_energy + n_rows * (t_line + n_x * dwell) + n_skipped * t_skip

where ``n_energy_changes`` counts every change of energy along the sequence
(including the first energy), ``n_rows`` the measured rows and ``n_skipped`` the
rows passed over without measuring (see :func:`acquisition_cost`).

Dose per measured (pixel, energy) is ``dwell * i0 * (1 - exp(-OD))`` (absorbed)
when the optical density is known, else ``dwell * i0`` (incident).

The sequence is what was *used*: a reading retried or given up on (a plan's ``faults``
stream) also took time and exposed the sample, and is not counted. The ``time`` and
``dose`` of a run's ``planner`` stream are therefore lower bounds when it has faults.

Only numpy is imported here (layering rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .linalg._checks import is_real_dtype

__all__ = ["CostModel", "Cost", "acquisition_cost", "raster_cost"]


@dataclass(frozen=True)
class CostModel:
    """Timing parameters of the instrument (all in seconds, all >= 0).

    Parameters
    ----------
    t_energy : float, default 1.0
        Energy change + settle + refocus, paid each time the energy changes
        (and once for the first energy).
    t_line : float, default 0.02
        Overhead per measured spatial row.
    dwell : float, default 1e-3
        Dwell time per pixel.
    t_skip : float, default 0.0
        Cost of passing over one unmeasured row inside an energy visit.
    """

    t_energy: float = 1.0
    t_line: float = 0.02
    dwell: float = 1e-3
    t_skip: float = 0.0

    def __post_init__(self) -> None:
        for name in ("t_energy", "t_line", "dwell", "t_skip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"CostModel.{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(float(value)) or float(value) < 0.0:
                raise ValueError(
                    f"CostModel.{name} must be a finite number of seconds >= 0, got {value!r}"
                )
            object.__setattr__(self, name, float(value))

    def as_dict(self) -> dict[str, float]:
        """The parameters as a plain dict (for run metadata)."""
        return {
            "t_energy": self.t_energy,
            "t_line": self.t_line,
            "dwell": self.dwell,
            "t_skip": self.t_skip,
        }


@dataclass(frozen=True, eq=False)
class Cost:
    """Time and dose of one acquisition.

    Attributes
    ----------
    time : float
        Acquisition time, s.
    n_rows : int
        Number of measured spatial rows (repeats counted).
    n_energy_changes : int
        Number of energy changes along the order, including the first energy.
    n_skipped : int
        Rows passed over without measuring (costed at ``t_skip`` each).
    dose_total : float
        Sum of the dose map (photons absorbed, or incident without an OD).
    dose_mean : float
        Mean dose per pixel over all ``n_y * n_x`` pixels.
    dose_peak : float
        Largest dose of any pixel.
    dose_map : ndarray, shape (n_y, n_x)
        Dose per pixel, summed over the measured energies (read-only).
    """

    time: float
    n_rows: int
    n_energy_changes: int
    n_skipped: int
    dose_total: float
    dose_mean: float
    dose_peak: float
    dose_map: np.ndarray

    def ratio_to(self, other: "Cost") -> dict[str, float]:
        """Ratios of this cost to ``other`` (e.g. to a full raster).

        Returns
        -------
        dict
            ``{"time": ..., "dose_total": ..., "dose_peak": ...}``, each
            ``self.x / other.x`` (``inf`` for x/0 with x > 0, ``nan`` for 0/0).
        """
        if not isinstance(other, Cost):
            raise TypeError(f"other must be a Cost, got {type(other).__name__}")
        return {
            key: _ratio(getattr(self, key), getattr(other, key))
            for key in ("time", "dose_total", "dose_peak")
        }

    def as_dict(self) -> dict[str, float | int]:
        """Scalar fields as a plain dict (no dose map)."""
        return {
            "time": self.time,
            "n_rows": self.n_rows,
            "n_energy_changes": self.n_energy_changes,
            "n_skipped": self.n_skipped,
            "dose_total": self.dose_total,
            "dose_mean": self.dose_mean,
            "dose_peak": self.dose_peak,
        }


def _ratio(a: float, b: float) -> float:
    if b == 0.0:
        return float("nan") if a == 0.0 else float("inf")
    return float(a / b)


def _as_order(order: Any) -> np.ndarray:
    arr = np.asarray(order)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.intp)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"order must be a sequence of (energy_index, row_index) pairs, shape (n, 2); "
            f"got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(
            arr == np.round(arr)
        ):
            arr = arr.astype(np.intp)
        else:
            raise TypeError(f"order must hold integer indices, got dtype {arr.dtype}")
    if np.any(arr < 0):
        raise ValueError("order holds negative energy or row indices")
    return arr.astype(np.intp, copy=False)


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


#: entries of ``od`` gathered at once when summing the absorbed dose (bounds the temporaries)
_DOSE_CHUNK = 1 << 20


def acquisition_cost(
    order: Any,
    n_x: int,
    *,
    model: CostModel | None = None,
    od: Any = None,
    i0: float | Any = 1.0,
    n_y: int | None = None,
) -> Cost:
    """Time and dose of measuring ``order`` under ``model``.

    Parameters
    ----------
    order : array_like of int, shape (n, 2)
        Measured ``(energy_index, row_index)`` pairs in acquisition order.
    n_x : int
        Pixels per spatial row.
    model : CostModel, optional
        Timing parameters; default ``CostModel()``.
    od : array_like, shape (n_E, n_y, n_x), optional
        Optical density of the sample. With it the dose is the absorbed dose
        ``dwell * i0 * (1 - exp(-OD))`` (OD clipped at 0, so the absorbed fraction is in
        [0, 1]); without it the incident dose ``dwell * i0``.
    i0 : float or array_like, shape (n_E,), default 1.0
        Incident flux (photons / s / pixel), one value or one per energy; >= 0.
    n_y : int, optional
        Number of raster lines (for the dose map and ``dose_mean``). Taken
        from ``od`` when given (must agree); else defaults to the largest row
        index in ``order`` + 1.

    Returns
    -------
    Cost

    Notes
    -----
    An *energy visit* is a maximal run of consecutive pairs at the same energy.
    Rows inside the span [min row, max row] of a visit that the visit does not
    measure count as skipped (the stage passes over them), each costing
    ``model.t_skip``.

    The absorbed dose is summed in blocks of rows, so the memory it needs beyond ``od`` is a
    few MiB whatever the size of the stack (``od`` itself is not copied when it is float64).
    """
    return _acquisition_cost(order, n_x, model=model, od=od, i0=i0, n_y=n_y)


def _finite_chunks(od: np.ndarray) -> bool:
    """``np.all(np.isfinite(od))`` without a full-size temporary."""
    step = max(1, _DOSE_CHUNK // max(1, od[0].size)) if od.shape[0] else 1
    return all(np.all(np.isfinite(od[i:i + step])) for i in range(0, od.shape[0], step))


def _real_float(values, name: str) -> np.ndarray:
    """``values`` as float64; complex, bool, text or object values are refused ("100" was read
    as 100, True as 1, a complex OD lost its imaginary part with only numpy's warning)."""
    arr = np.asarray(values)
    if not is_real_dtype(arr):
        got = f"{values!r}, dtype {arr.dtype}" if arr.ndim == 0 else f"an array of dtype {arr.dtype}"
        raise TypeError(f"{name} must be real numbers; got {got}")
    return arr.astype(np.float64, copy=False)


def _acquisition_cost(order, n_x, *, model=None, od=None, i0=1.0, n_y=None, nan_dose=False):
    """:func:`acquisition_cost`; with ``nan_dose`` a non-finite ``od`` is allowed and read as
    ``np.nan_to_num(od, nan=0.0)`` (NaN absorbs nothing, +Inf everything), without a copy."""
    model = CostModel() if model is None else model
    if not isinstance(model, CostModel):
        raise TypeError(f"model must be a CostModel, got {type(model).__name__}")
    pairs = _as_order(order)
    n_x = _check_count(n_x, "n_x")

    od_arr = None
    if od is not None:
        od_arr = _real_float(od, "od")
        if od_arr.ndim != 3:
            raise ValueError(f"od must be a cube (n_E, n_y, n_x), got shape {od_arr.shape}")
        if od_arr.shape[2] != n_x:
            raise ValueError(f"od has {od_arr.shape[2]} pixels per row but n_x={n_x}")
        if not nan_dose and not _finite_chunks(od_arr):
            raise ValueError("od contains NaN/Inf values")
        if n_y is not None and _check_count(n_y, "n_y") != od_arr.shape[1]:
            raise ValueError(f"n_y={n_y} disagrees with od's {od_arr.shape[1]} rows")
        n_y = od_arr.shape[1]
    elif n_y is not None:
        n_y = _check_count(n_y, "n_y")
    else:
        n_y = int(pairs[:, 1].max()) + 1 if len(pairs) else 1

    e_idx, y_idx = pairs[:, 0], pairs[:, 1]
    if len(pairs) and int(y_idx.max()) >= n_y:
        raise ValueError(f"order has row index {int(y_idx.max())} but there are only {n_y} rows")
    if od_arr is not None and len(pairs) and int(e_idx.max()) >= od_arr.shape[0]:
        raise ValueError(
            f"order has energy index {int(e_idx.max())} but od has {od_arr.shape[0]} energies"
        )

    i0_arr = _real_float(i0, "i0")
    if i0_arr.ndim > 1:
        raise ValueError(f"i0 must be a scalar or 1-D (n_E,), got shape {i0_arr.shape}")
    if not np.all(np.isfinite(i0_arr)) or np.any(i0_arr < 0):
        raise ValueError("i0 must be finite and >= 0")
    if i0_arr.ndim == 1:
        if od_arr is not None and i0_arr.size != od_arr.shape[0]:
            raise ValueError(f"i0 has {i0_arr.size} values but od has {od_arr.shape[0]} energies")
        if len(pairs) and int(e_idx.max()) >= i0_arr.size:
            raise ValueError(
                f"order has energy index {int(e_idx.max())} but i0 has {i0_arr.size} values"
            )

    # Time.
    n_rows = int(len(pairs))
    if n_rows:
        starts = np.flatnonzero(np.r_[True, e_idx[1:] != e_idx[:-1]])
        n_changes = int(starts.size)
        # skipped rows: per visit, the span [min row, max row] minus the distinct rows measured
        span = np.maximum.reduceat(y_idx, starts) - np.minimum.reduceat(y_idx, starts) + 1
        visit = np.cumsum(np.r_[True, e_idx[1:] != e_idx[:-1]]) - 1
        n_distinct = np.unique(visit * n_y + y_idx).size
        n_skipped = int(span.sum()) - int(n_distinct)
    else:
        n_changes = 0
        n_skipped = 0
    time = (
        n_changes * model.t_energy
        + n_rows * (model.t_line + n_x * model.dwell)
        + n_skipped * model.t_skip
    )

    # Dose.
    if n_rows:
        flux = i0_arr if i0_arr.ndim == 0 else i0_arr[e_idx]
        per_row = np.broadcast_to(np.asarray(model.dwell * flux, dtype=np.float64), (n_rows,))
        if od_arr is None:
            # every pixel of a measured row gets the same incident dose
            row_dose = np.bincount(y_idx, weights=per_row, minlength=n_y)
            dose_map = np.repeat(row_dose[:, None], n_x, axis=1)
        else:
            # absorbed fraction 1 - exp(-max(OD, 0)), a block of rows at a time
            dose_flat = np.zeros(n_y * n_x)
            block = max(1, _DOSE_CHUNK // n_x)
            for b0 in range(0, n_rows, block):
                sl = slice(b0, b0 + block)
                absorbed = od_arr[e_idx[sl], y_idx[sl], :]  # (rows, n_x), a copy
                if nan_dose:
                    np.nan_to_num(absorbed, copy=False, nan=0.0)
                np.clip(absorbed, 0.0, None, out=absorbed)
                np.negative(absorbed, out=absorbed)
                np.expm1(absorbed, out=absorbed)
                np.negative(absorbed, out=absorbed)
                absorbed *= per_row[sl, None]
                pix = (y_idx[sl, None] * n_x + np.arange(n_x)).ravel()
                dose_flat += np.bincount(pix, weights=absorbed.ravel(), minlength=n_y * n_x)
            dose_map = dose_flat.reshape(n_y, n_x)
    else:
        dose_map = np.zeros((n_y, n_x))
    dose_map.setflags(write=False)
    return Cost(
        time=float(time),
        n_rows=n_rows,
        n_energy_changes=n_changes,
        n_skipped=n_skipped,
        dose_total=float(dose_map.sum()),
        dose_mean=float(dose_map.mean()),
        dose_peak=float(dose_map.max()),
        dose_map=dose_map,
    )


def raster_cost(
    n_energies: int,
    shape: tuple[int, int],
    *,
    model: CostModel | None = None,
    od: Any = None,
    i0: float | Any = 1.0,
) -> Cost:
    """Cost of the full conventional raster: every row at every energy, each energy once.

    Parameters
    ----------
    n_energies : int
        Number of energies ``n_E``.
    shape : (int, int)
        ``(n_y, n_x)``.
    model, od, i0
        As in :func:`acquisition_cost` (``od`` of shape (n_E, n_y, n_x)).

    Returns
    -------
    Cost
        With ``time = n_E * t_energy + n_E * n_y * (t_line + n_x * dwell)``.
    """
    return _raster_cost(n_energies, shape, model=model, od=od, i0=i0)


def _raster_cost(n_energies, shape, *, model=None, od=None, i0=1.0, nan_dose=False):
    """:func:`raster_cost`; ``nan_dose`` as in :func:`_acquisition_cost`."""
    n_e = _check_count(n_energies, "n_energies")
    if len(tuple(shape)) != 2:
        raise ValueError(f"shape must be (n_y, n_x), got {shape!r}")
    n_y = _check_count(shape[0], "shape[0] (n_y)")
    n_x = _check_count(shape[1], "shape[1] (n_x)")
    if od is not None and np.shape(od) != (n_e, n_y, n_x):
        raise ValueError(f"od has shape {np.shape(od)}, expected {(n_e, n_y, n_x)}")
    if np.ndim(i0) == 1 and np.size(i0) != n_e:  # (acquisition_cost knows no n_E without od)
        raise ValueError(f"i0 has {np.size(i0)} values but there are {n_e} energies")
    ee, yy = np.meshgrid(np.arange(n_e), np.arange(n_y), indexing="ij")
    order = np.stack([ee.ravel(), yy.ravel()], axis=1)
    return _acquisition_cost(order, n_x, model=model, od=od, i0=i0, n_y=n_y, nan_dose=nan_dose)
