"""Offline replay: drive a planner against a fully measured (or simulated) cube, no bluesky."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cost import Cost, _acquisition_cost, _raster_cost
from .linalg._checks import as_int, is_real_dtype
from .planners import Planner

__all__ = ["Acquisition", "replay"]


@dataclass(frozen=True)
class Acquisition:
    """Result of :func:`replay`.

    Attributes
    ----------
    completed : ndarray, shape (n_E, n_y, n_x), or None
        The planner's completed cube (OD). None only from :func:`curiss.store.recompute` of a
        run whose measured rows cannot be completed (interrupted before CUR had an image and a
        row at every energy, or failed rows that left an energy unmeasured; ``report`` and the
        last ``history`` entry say why).
    mask : ndarray of bool, shape (n_E, n_y, n_x)
        True where measured.
    sampling_ratio : float
        ``mask.mean()``.
    history : list of dict
        One entry per planner decision (the ``planner`` stream), the last one the stop record.
    order : ndarray of int, shape (n_rows, 2)
        Measured (energy_index, row_index) pairs in acquisition order.
    cost : curiss.cost.Cost
        Time and dose of this acquisition under the planner's cost model.
    raster_cost : curiss.cost.Cost
        Time and dose of the full conventional raster of the same stack. Where the cube was
        not measured everywhere (NaN: a recorded subsampled run), the dose is that of the completed
        stack (without a completion: of the measured rows alone, a lower bound).
    report : dict
        ``planner.report()`` at the end.
    """

    completed: np.ndarray | None
    mask: np.ndarray
    sampling_ratio: float
    history: list
    order: np.ndarray
    cost: Cost
    raster_cost: Cost
    report: dict = field(default_factory=dict)

    @property
    def saving(self) -> dict:
        """Ratios of this acquisition's time and dose to the full raster's (smaller is better)."""
        return self.cost.ratio_to(self.raster_cost)


def replay(planner: Planner, cube, *, max_requests: int = 100_000) -> Acquisition:
    """Run ``planner`` to completion against ``cube`` (every requested row is read from it).

    Parameters
    ----------
    planner : curiss.planners.Planner
        A fresh planner whose ``energies``/``shape`` match the cube.
    cube : array_like, shape (n_E, n_y, n_x)
        Optical density of the sample (a full measurement or a simulation's truth). Entries that
        are never requested may be NaN (e.g. a recorded subsampled run).
    max_requests : int
        Safety bound on the number of decisions.

    Returns
    -------
    Acquisition

    Raises
    ------
    TypeError
        ``planner`` is not a :class:`~curiss.planners.Planner`, or ``cube`` is not real numbers
        (complex, bool, text).
    ValueError
        ``planner`` is not fresh (it has decided or measured already: its completion would be
        another cube's), ``cube`` has another shape, or a requested row is NaN/Inf.
    RuntimeError
        The planner did not stop within ``max_requests`` decisions.
    """
    if not isinstance(planner, Planner):
        raise TypeError(f"planner must be a curiss planner (e.g. curiss.CURISSPlanner), got "
                        f"{type(planner).__name__}")
    if planner.history or len(planner.order) or planner.pending:
        raise ValueError(  # the old decisions and completion would come back with the new cube's cost
            f"replay needs a fresh planner; this {type(planner).__name__} has made "
            f"{len(planner.history)} decision(s) and holds {len(planner.order)} measured row(s): "
            f"build a new one, e.g. curiss.make_planner(p.method, p.energies, p.shape, "
            f"**p.get_params())")
    max_requests = as_int(max_requests, "max_requests", minimum=1)
    arr = np.asarray(cube)
    if not is_real_dtype(arr):
        raise TypeError(f"cube must be real optical densities, got dtype {arr.dtype}")
    cube = np.asarray(arr, dtype=float)
    expected = (planner.energies.size, *planner.shape)
    if cube.shape != expected:
        raise ValueError(f"cube has shape {cube.shape}; the planner expects (n_E, n_y, n_x) = {expected}")
    for _ in range(max_requests):
        request = planner.suggest()
        if request is None:
            break
        for e, y in request.pairs:
            row = cube[e, y]
            if not np.all(np.isfinite(row)):
                raise ValueError(f"the planner requested row (energy_index={e}, row_index={y}) but the cube "
                                 "has NaN/Inf there (not measured in the recorded data)")
            planner.ingest(e, y, row)
    else:
        raise RuntimeError(f"planner did not finish within {max_requests} requests")
    return _acquisition(planner, cube)


def _acquisition(planner: Planner, cube: np.ndarray, *, incomplete_ok: bool = False) -> Acquisition:
    """The :class:`Acquisition` of ``planner``'s state; ``cube`` (NaN = never measured) for the
    dose. ``incomplete_ok``: a planner that cannot complete gives ``completed=None``."""
    try:
        completed = planner.completed()
    except RuntimeError:  # "cannot complete": nothing to complete from
        if not incomplete_ok:
            raise
        completed = None
    # the dose reads the cube block by block, NaN (never measured) as OD 0: no copy of the cube
    order = planner.order
    cost = _acquisition_cost(order, planner.shape[1], model=planner.cost_model, od=cube,
                             nan_dose=True)
    # the full raster would measure every row: when the cube was not measured everywhere (a
    # recorded subsampled run, recompute) its dose is that of the completed stack (no copy),
    # not the measured rows' alone (NaN read as OD 0)
    measured_everywhere = bool(np.isfinite(cube).all())
    full = _raster_cost(planner.energies.size, planner.shape, model=planner.cost_model,
                        od=cube if measured_everywhere or completed is None else completed,
                        nan_dose=True)
    mask = planner.mask
    return Acquisition(
        completed=completed,
        mask=mask,
        sampling_ratio=float(mask.mean()),
        history=[d.as_dict() for d in planner.history],
        order=order,
        cost=cost,
        raster_cost=full,
        report=planner.report(),
    )
