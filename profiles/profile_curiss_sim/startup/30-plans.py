# curiss simulated-STXM profile, step 30: the plans, imported BY NAME.
#
# bluesky-queueserver only offers what is a name in this namespace (`import curiss.plans` would
# offer nothing). Every argument is JSON-friendly from the queue: devices by name, `energies` as a
# list of eV, `shape` as [n_y, n_x] (or `y_positions` as a list), `dictionary` as a list of rows
# (n_E lists of n_refs spectra values) or omitted.
#
# In IPython, for example:
#   uid, = RE(curiss_scan(detector, mono, stage, sample.energies, sampling_ratio=0.06,
#                         dictionary=sample.dictionary, y_positions=stxm.y_positions))
#   data = load_run(catalog[uid])
from bluesky.plan_stubs import mv  # noqa: F401
from bluesky.plans import count, list_scan  # noqa: F401

from curiss.plans import (  # noqa: F401
    acuriss_scan,
    curiss_scan,
    random_rows_scan,
    raster_scan,
    resume,
    riss_scan,
)


def _resolve_string_annotations(*plans) -> None:
    """Replace string annotations (PEP 563, ``from __future__ import annotations``) of ``plans``
    with the objects they name.

    bluesky-queueserver reads plan signatures with ``inspect.signature``: a string annotation
    such as ``'Readable'`` reaches its pydantic validator as an undefined forward reference and
    every queued item of the plan fails ("`Model` is not fully defined; you should define
    `Readable`"). With the resolved ``bluesky.protocols.Readable`` it knows the parameter takes
    a device by name. A no-op when the annotations are already objects.
    """
    import typing

    for plan in plans:
        ann = getattr(plan, "__annotations__", {})
        if any(isinstance(v, str) for v in ann.values()):
            hints = typing.get_type_hints(plan)
            plan.__annotations__ = {k: hints.get(k, v) for k, v in ann.items()}


_resolve_string_annotations(raster_scan, random_rows_scan, riss_scan, curiss_scan, acuriss_scan,
                            resume)
