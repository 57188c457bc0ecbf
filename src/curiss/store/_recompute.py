"""Recompute a run's completion from its measured rows alone (and replay it to resume it)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..linalg._checks import as_bool, as_float
from ..planners import PLANNERS, Planner, make_planner
from ..replay import Acquisition, _acquisition
from ._load import RunData

__all__ = ["recompute"]


def _planner_for(data: RunData) -> Planner:
    """A fresh planner built from the run's start document (method, keywords, seed)."""
    start = data.start
    for key in ("method", "planner_kwargs"):
        if key not in start:
            raise ValueError(f"run {data.uid}: the start document has no {key!r}: this run cannot "
                             "be replayed (it was not written by a curiss plan, or by an older version)")
    kwargs = dict(start["planner_kwargs"])
    if kwargs.get("seed") is None and start["method"] != "raster":
        raise ValueError(f"run {data.uid}: the run recorded no seed: its random decisions cannot be "
                         "reproduced")
    cls = PLANNERS.get(start["method"])
    for name, earlier in getattr(cls, "earlier_defaults", {}).items():
        kwargs.setdefault(name, earlier)  # a run written before the default changed
    return make_planner(start["method"], data.energies, data.shape, **kwargs)


def _replay_records(planner: Planner, data: RunData, *, max_requests: int = 100_000):
    """Feed ``planner`` the run's rows, measured and given up on, in the order they happened.

    The planner is deterministic given its seed and what it ingests, so this retraces every
    decision of the run. Returns None when the planner finished, else the pairs (k, 2) of its
    current request that the run never measured (the run was interrupted there).

    Raises
    ------
    ValueError
        The replayed planner asks for something the run does not hold in that order, or the run
        holds rows the planner never asked for (another version, or not this planner's run).
    """
    events: dict[tuple[int, int], list] = defaultdict(list)
    for (e, r), t in zip(data.order, data.times):
        events[int(e), int(r)].append((float(t), 0))
    for (e, r), t in zip(data.failed, data.failed_times):
        events[int(e), int(r)].append((float(t), 1))
    for q in events.values():  # NaN times (not recorded) keep their order of appearance
        q.sort(key=lambda x: (np.nan_to_num(x[0], nan=np.inf), x[1]))
    left = None
    for _ in range(max_requests):
        request = planner.suggest()
        if request is None:
            break
        todo = []
        for e, r in request.pairs:
            q = events.get((int(e), int(r)))
            if not q:
                todo.append((int(e), int(r)))
                continue
            _, failed = q.pop(0)
            if failed:
                planner.mark_failed(e, r, "gave up in the recorded run")
            else:
                planner.ingest(e, r, data.od[e, r])
        if todo:
            left = np.array(todo, dtype=np.int64).reshape(-1, 2)
            break
    else:
        raise RuntimeError(f"planner did not finish within {max_requests} requests")
    unused = sum(len(q) for q in events.values())
    if unused:
        example = next(k for k, q in events.items() if q)
        raise ValueError(f"run {data.uid}: replaying the recorded planner does not ask for {unused} "
                         f"of the run's rows (e.g. (energy_index, row_index) = {example}); the run "
                         "was not written by this planner and version")
    return left


def recompute(data: RunData, *, check: bool = True, rtol: float = 1e-6) -> Acquisition:
    """Rebuild the run's planner from its start document and replay it on the measured rows.

    The planner is deterministic given its seed and the data it ingests, so replaying it on the
    optical density of the measured rows (``primary``, plus the ``reused`` rows of a resumed run)
    and on the rows given up on (``faults`` events of kind ``"failed"``), in the order they
    happened, reproduces every decision and the completion, without the ``planner`` or
    ``analysis`` streams. A run that was interrupted gives the completion of what it measured.

    Parameters
    ----------
    data : RunData
        A run (``curiss.store.load_run``).
    check : bool
        Compare with what the run recorded: the requested rows must be exactly the measured ones
        and, when the run has an ``analysis`` stream, the completion must agree to ``rtol``
        (relative Frobenius norm). A mismatch raises ``ValueError``.
    rtol : float
        Tolerance of that comparison.

    Returns
    -------
    curiss.Acquisition
        The replayed acquisition (``.completed`` (n_E, n_y, n_x), ``.mask``, ``.history``).
        ``.completed`` is None when the measured rows cannot be completed: a run interrupted
        before CUR had an image and a row at every energy, or one whose failed rows left an
        energy unmeasured (its ``faults`` stream has a ``completion`` event); the decisions are
        still checked.
    """
    check = as_bool(check, "check")
    rtol = as_float(rtol, "rtol", minimum=0.0)  # checked before the (long) replay
    planner = _planner_for(data)
    _replay_records(planner, data)
    acq = _acquisition(planner, data.od, incomplete_ok=True)
    if check:
        if not np.array_equal(acq.mask, data.mask):
            n = int((acq.mask != data.mask).sum() // max(1, data.shape[1]))
            raise ValueError(f"run {data.uid}: the replayed planner measures {n} rows differently "
                             "from the run")
        if data.completed is not None and acq.completed is None:
            raise ValueError(f"run {data.uid}: the run stored a completion but the replayed "
                             "planner cannot complete")
        if data.completed is not None:
            err = np.linalg.norm(acq.completed - data.completed) / max(np.linalg.norm(data.completed), 1e-300)
            if not err <= rtol:
                raise ValueError(f"run {data.uid}: recomputed completion differs from the stored one "
                                 f"by {err:.3g} (relative), more than rtol={rtol:g}")
    return acq
