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

Each variant works in a container of its own (it lists an empty container and creates into it), so
the three do the same requests on the same content; each operation is first called a few times
untimed (the first requests of a process, and of a variant, are slower), then timed call by call:
the medians of ``--repeats`` calls (array writes: half as many) are printed, wall and CPU
(``time.process_time``, all threads of the process). The catalog lives in a temporary folder
removed at exit.

Run from the repository root::

    .venv/bin/python benchmarks/tiled_requests.py            # ~1 min
    .venv/bin/python benchmarks/tiled_requests.py --repeats 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

WARMUP = 3  # untimed calls of each operation in each variant, before the timed ones


class _FalsyDict(dict):
    """The overrides as before, but FastAPI's ``if dependency_overrides:`` sees none."""

    def __bool__(self):
        return False


def _medians(call, n):
    """Median wall and CPU seconds of ``call(i)``, i = 0 .. n - 1, each call timed alone."""
    wall, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time()
        call(i)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _time(catalog, tag, repeats):
    """{operation: (median wall s, median CPU s)} in the container ``tag`` of its own."""
    root = catalog.create_container(key=tag)  # listed while still empty
    warm = catalog.create_container(key=f"{tag}-warm-up")
    warm_arrays = warm.create_container(key="arrays")
    for i in range(WARMUP):  # every measured operation, untimed, with this variant's app setting
        list(root)
        warm.create_container(key=f"c{i}")
        warm_arrays.write_array(np.zeros(1000), key=f"a{i}")
    out = {"list": _medians(lambda i: list(root), repeats),
           "create container": _medians(lambda i: root.create_container(key=f"c{i}"), repeats)}
    node = root.create_container(key="arrays")
    out["write array"] = _medians(lambda i: node.write_array(np.zeros(1000), key=f"a{i}"),
                                  max(repeats // 2, 1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    from curiss.store import open_catalog

    with tempfile.TemporaryDirectory(prefix="curiss-bench-tiled-") as tmp:
        catalog = open_catalog(os.path.join(tmp, "catalog"))
        list(catalog)  # warm up
        app = catalog.context.http_client.app
        real = app.dependency_overrides
        print(f"load average {os.getloadavg()[0]:.2f}; dependency overrides: {len(real)}; medians of "
              f"{args.repeats} calls ({max(args.repeats // 2, 1)} array writes) after {WARMUP} untimed")
        runs = {"as shipped": _time(catalog, "a", args.repeats)}
        app.dependency_overrides = _FalsyDict(real)
        runs["overrides hidden from FastAPI"] = _time(catalog, "b", args.repeats)
        app.dependency_overrides = real
        runs["as shipped (again)"] = _time(catalog, "c", args.repeats)
    print(f"{'':44s}" + "".join(f"{k:>26s}" for k in runs["as shipped"]))
    for label, res in runs.items():
        print(f"{label:44s}" + "".join(f"{w * 1e3:9.1f} ms (cpu {c * 1e3:5.1f})" for w, c in res.values()))
    base, alt, again = runs.values()
    print("ratio hidden / as shipped (wall): "
          + ", ".join(f"{k} {alt[k][0] / base[k][0]:.2f}" for k in base))
    print("ratio as shipped (again) / as shipped (wall): "
          + ", ".join(f"{k} {again[k][0] / base[k][0]:.2f}" for k in base))
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
