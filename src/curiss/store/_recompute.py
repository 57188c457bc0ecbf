"""Recompute a run's completion from its ``primary`` stream alone."""

from __future__ import annotations

import numpy as np

from ..planners import make_planner
from ..replay import Acquisition, replay
from ._load import RunData

__all__ = ["recompute"]


def recompute(data: RunData, *, check: bool = True, rtol: float = 1e-6) -> Acquisition:
    """Rebuild the run's planner from its start document and replay it on the measured rows.

    The planner is deterministic given its seed and the data it ingests, so replaying it on the
    optical density of ``primary`` reproduces every decision and the completion, without the
    ``planner`` or ``analysis`` streams.

    Parameters
    ----------
    data : RunData
        A finished run (``curiss.store.load_run``).
    check : bool
        Compare with what the run recorded: the requested rows must be exactly the measured ones
        and, when the run has an ``analysis`` stream, the completion must agree to ``rtol``
        (relative Frobenius norm). A mismatch raises ``ValueError``.
    rtol : float
        Tolerance of that comparison.

    Returns
    -------
    curiss.replay.Acquisition
        The replayed acquisition (``.completed`` (n_E, n_y, n_x), ``.mask``, ``.history``).
    """
    start = data.start
    for key in ("method", "planner_kwargs"):
        if key not in start:
            raise ValueError(f"the start document has no {key!r}: this run cannot be recomputed "
                             "(it was not written by a curiss plan, or by an older version)")
    kwargs = dict(start["planner_kwargs"])
    if kwargs.get("seed") is None and start["method"] != "raster":
        raise ValueError("the run recorded no seed: its random decisions cannot be reproduced")
    planner = make_planner(start["method"], data.energies, data.shape, **kwargs)
    try:
        acq = replay(planner, data.od)
    except ValueError as exc:
        raise ValueError(f"run {data.uid}: replaying the planner on primary asked for a row the run "
                         f"did not measure ({exc})") from exc
    if check:
        if not np.array_equal(acq.mask, data.mask):
            n = int((acq.mask != data.mask).sum() // max(1, data.shape[1]))
            raise ValueError(f"run {data.uid}: the replayed planner measures {n} rows differently "
                             "from the run")
        if data.completed is not None:
            err = np.linalg.norm(acq.completed - data.completed) / max(np.linalg.norm(data.completed), 1e-300)
            if not err <= rtol:
                raise ValueError(f"run {data.uid}: recomputed completion differs from the stored one "
                                 f"by {err:.3g} (relative), more than rtol={rtol:g}")
    return acq
