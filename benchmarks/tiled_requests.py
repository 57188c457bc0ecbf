"""Cost of one request to the embedded catalog, and how much of it is FastAPI re-resolving
dependencies (measurement only; ``src/`` is unchanged).

The embedded catalog (``curiss.store.open_catalog(DIR)``) is a Tiled app called in-process. Tiled
registers one dependency override (``get_settings``); FastAPI, whenever an app has *any*
override, rebuilds the dependency tree of every sub-dependency on every request
(``fastapi.dependencies.utils.solve_dependencies`` → ``get_dependant``, signature introspection).
This script times three kinds of request (a listing, a container create, an array write):

- ``as shipped``: the app as ``open_catalog`` builds it;
- ``overrides hidden from FastAPI``: a prototype, monkeypatched here only: the overrides dict made
  falsy for FastAPI's ``if dependency_overrides:`` check (tiled still reads it by key), so FastAPI
  no longer rebuilds the trees. The requests succeed with the same results; it is not applied in
  ``src/`` (it would patch Tiled's app through FastAPI internals) -- a matter for Tiled/FastAPI;
- ``as shipped (again)``: the real dict put back, to show the order of the runs does not matter.

Run from the repository root::

    .venv/bin/python benchmarks/tiled_requests.py            # ~1 min
    .venv/bin/python benchmarks/tiled_requests.py --repeats 40
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


class _FalsyDict(dict):
    """The overrides as before, but FastAPI's ``if dependency_overrides:`` sees none."""

    def __bool__(self):
        return False


def _time(catalog, tag, repeats):
    out = {}
    for name, call in (("list", lambda i: list(catalog)),
                       ("create container", lambda i: catalog.create_container(key=f"{tag}-{i}"))):
        t, c = time.perf_counter(), time.process_time()
        for i in range(repeats):
            call(i)
        out[name] = ((time.perf_counter() - t) / repeats, (time.process_time() - c) / repeats)
    node = catalog.create_container(key=f"{tag}-arrays")
    n = max(repeats // 2, 1)
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        node.write_array(np.zeros(1000), key=f"a{i}")
    out["write array"] = ((time.perf_counter() - t) / n, (time.process_time() - c) / n)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    from curiss.store import open_catalog

    catalog = open_catalog(os.path.join(tempfile.mkdtemp(), "catalog"))
    list(catalog)  # warm up
    app = catalog.context.http_client.app
    real = app.dependency_overrides
    print(f"load average {os.getloadavg()[0]:.2f}; dependency overrides: {len(real)}")
    runs = {"as shipped": _time(catalog, "a", args.repeats)}
    app.dependency_overrides = _FalsyDict(real)
    runs["overrides hidden from FastAPI"] = _time(catalog, "b", args.repeats)
    app.dependency_overrides = real
    runs["as shipped (again)"] = _time(catalog, "c", args.repeats)
    print(f"{'':44s}" + "".join(f"{k:>26s}" for k in runs["as shipped"]))
    for label, res in runs.items():
        print(f"{label:44s}" + "".join(f"{w * 1e3:9.1f} ms (cpu {c * 1e3:5.1f})" for w, c in res.values()))
    base = runs["as shipped"]
    alt = list(runs.values())[1]
    print("ratio hidden / as shipped (wall): "
          + ", ".join(f"{k} {alt[k][0] / base[k][0]:.2f}" for k in base))
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
