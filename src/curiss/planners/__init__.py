"""Acquisition strategies (stateful planners, no bluesky import).

Every planner follows the lockstep protocol: ``suggest() -> Request | None``,
``ingest(energy_index, row_index, values)``, ``completed()``, ``report()``, ``done``,
``stop_reason``.
"""

from ._base import Decision, Planner, Request
from ._strategies import (
    ACURISSPlanner,
    CURISSPlanner,
    RandomRowsPlanner,
    RasterPlanner,
    RISSPlanner,
)

#: method name (as in the start document's ``method``) -> planner class
PLANNERS = {
    cls.method: cls
    for cls in (RasterPlanner, RandomRowsPlanner, RISSPlanner, CURISSPlanner, ACURISSPlanner)
}


def make_planner(method: str, energies, shape, **kwargs) -> Planner:
    """Build a planner from its method name (``"raster"``, ``"random_rows"``, ``"riss"``,
    ``"curiss"``, ``"acuriss"``) and its constructor keywords."""
    try:
        cls = PLANNERS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(PLANNERS)}") from None
    return cls(energies, shape, **kwargs)


__all__ = [
    "Planner",
    "Request",
    "Decision",
    "RasterPlanner",
    "RandomRowsPlanner",
    "RISSPlanner",
    "CURISSPlanner",
    "ACURISSPlanner",
    "PLANNERS",
    "make_planner",
]
