"""Rows per second of a CURISS plan against a bare bluesky loop, both writing to the catalog.

Both run under one RunEngine with the simulated STXM (``sim_devices.make_stxm``, ``move_time=0``)
and write through ``curiss.store.writer_for`` into one embedded catalog
(``curiss.store.open_catalog(tmpdir)``):

- **curiss**: ``curiss.plans.curiss_scan`` (planner decisions, per-row validation and optical
  density, the ``planner`` stream and, by default, the end-of-run ``analysis`` stream);
- **bare**: the same rows in the same order (the pairs the CURISS planner measured, read back from
  the planner) with plain ``bps.mv`` + ``bps.trigger_and_read([detector, mono, stage.y])`` inside
  one run, no planner.

For each writer batch size the two are run alternately ``--repeats`` times; the ratio
``time(curiss) / time(bare)`` is taken per pair and its median reported (goal ≤ 1.3). The writer's
own share of each run (time spent inside the writer callback) is measured too, and how far a live
reader can lag (``batch_size − 1`` rows of each stream).

Run from the repository root::

    .venv/bin/python benchmarks/plans.py                       # batch sizes 1, 10, 50 (~2-3 min)
    .venv/bin/python benchmarks/plans.py --batch-sizes 5,10,50 --repeats 5 --no-analysis
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import bluesky.utils
import numpy as np
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # sim_devices lives at the repository root

from planner import load_line, median, synthetic_stack  # noqa: E402

import curiss.plans as curiss_plans  # noqa: E402
from curiss.planners import CURISSPlanner, Planner  # noqa: E402
from curiss.plans import _ordered_pairs, curiss_scan  # noqa: E402
from curiss.store import open_catalog, writer_for  # noqa: E402
from sim_devices import ReplaySample, make_stxm  # noqa: E402


class TimedCallback:
    """Wraps a document callback and accumulates the wall time spent inside it."""

    def __init__(self, cb):
        self.cb = cb
        self.seconds = 0.0
        self.by_doc = {}  # (document name, stream) -> seconds
        self._streams = {}

    def reset(self):
        self.seconds = 0.0
        self.by_doc = {}

    def __call__(self, name, doc):
        if name == "descriptor":
            self._streams[doc["uid"]] = doc.get("name")
        stream = self._streams.get(doc.get("descriptor")) if name in ("event", "event_page") else ""
        t0 = time.perf_counter()
        try:
            return self.cb(name, doc)
        finally:
            dt = time.perf_counter() - t0
            self.seconds += dt
            key = (name, stream)
            self.by_doc[key] = self.by_doc.get(key, 0.0) + dt


class Probes:
    """Wall time inside chosen functions during one run (monkeypatched, restored after).

    - ``suggest``: ``Planner.suggest`` (the planner's decisions, incl. the CURISS completion);
    - ``analysis``: ``Planner.completed`` + ``spectral_analysis`` of the end-of-run stream;
    - ``stub_wrap``: ``bluesky.utils.Plan.__init__`` — every ``bps.*`` call wraps its generator and
      records ``traceback.format_stack()`` (cost grows with the depth of the plan's stack).
    """

    def __init__(self):
        self.t = {}

    def _wrap(self, owner, name, key):
        fn = getattr(owner, name)
        probes = self

        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                probes.t[key] = probes.t.get(key, 0.0) + time.perf_counter() - t0

        setattr(owner, name, wrapper)
        return owner, name, fn

    @contextlib.contextmanager
    def active(self):
        self.t = {}
        saved = [self._wrap(Planner, "suggest", "suggest"),
                 self._wrap(Planner, "completed", "analysis"),
                 self._wrap(curiss_plans, "spectral_analysis", "analysis"),
                 self._wrap(bluesky.utils.Plan, "__init__", "stub_wrap")]
        try:
            yield self
        finally:
            for owner, name, fn in reversed(saved):
                setattr(owner, name, fn)


@contextlib.contextmanager
def unwrapped_stubs():
    """Prototype fix: ``curiss.plans`` calls the plan stubs without bluesky's ``Plan`` wrapper.

    ``bluesky.utils.plan`` wraps each stub so that a stub called without ``yield from`` warns; the
    wrapper formats the whole Python stack on every call (``traceback.format_stack``). The undecorated
    functions (``bps.mv.__wrapped__`` ...) yield exactly the same messages. Same effect as yielding
    ``Msg`` objects directly in the per-row loop of :func:`curiss.plans.subsampled_scan`.
    """
    shim = types.SimpleNamespace(**{name: getattr(obj, "__wrapped__", obj)
                                    for name, obj in vars(bps).items() if not name.startswith("_")})
    saved = curiss_plans.bps
    curiss_plans.bps = shim
    try:
        yield
    finally:
        curiss_plans.bps = saved


def bare_scan(stxm, pairs):
    """The same spatial rows in the same order, plain bluesky: one move per energy change."""
    energies, y = stxm.energies, stxm.y_positions

    @bpp.stage_decorator([stxm.detector])
    @bpp.run_decorator(md={"plan_name": "bare_scan"})
    def inner():
        current = None
        for e, r in pairs:
            if e != current:
                yield from bps.mv(stxm.mono, float(energies[e]))
                current = e
            yield from bps.checkpoint()
            yield from bps.mv(stxm.stage.y, float(y[r]))
            yield from bps.trigger_and_read([stxm.detector, stxm.mono, stxm.stage.y])

    return (yield from inner())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="30x24x48", help="n_E x n_y x n_x (default %(default)s)")
    ap.add_argument("--ratio", type=float, default=0.15, help="CURISS sampling ratio")
    ap.add_argument("--batch-sizes", default="5,10,50")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-analysis", action="store_true",
                    help="CURISS plan without the end-of-run analysis stream")
    ap.add_argument("--fix", action="store_true",
                    help="also time a prototype: the curiss plan calling undecorated plan stubs")
    ap.add_argument("--extrapolate", type=int, default=1000,
                    help="run length (rows) for the extrapolated ratio (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_e, n_y, n_x = (int(v) for v in args.size.split("x"))
    batches = [int(b) for b in args.batch_sizes.split(",")]
    analysis = not args.no_analysis
    print(f"curiss plan-throughput benchmark; {load_line()}")

    energies, cube, _ = synthetic_stack(n_e, (n_y, n_x), rng=args.seed)
    sample = ReplaySample(energies, cube)
    stxm = make_stxm(sample, move_time=0.0, seed=args.seed)
    # the rows the CURISS planner measures (deterministic for a seed): replay it once offline
    probe = CURISSPlanner(energies, (n_y, n_x), sampling_ratio=args.ratio, seed=args.seed)
    while (req := probe.suggest()) is not None:
        for e, r in req.pairs:
            probe.ingest(e, r, cube[e, r])

    # the order the plan measures them in: per request, energies ascending, rows in a serpentine
    plan_order = np.array([(e, r) for d in probe.history if len(d.pairs)
                           for e, rows in _ordered_pairs(d.pairs) for r in rows])
    tmp = tempfile.TemporaryDirectory(prefix="curiss-bench-plans-")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        catalog = open_catalog(Path(tmp.name) / "catalog")
    print(f"opened the embedded catalog in {time.perf_counter() - t0:.1f} s ({tmp.name})")
    RE = RunEngine({})
    probes = Probes()
    kinds = ("curiss", "bare", "curiss_fix") if args.fix else ("curiss", "bare")
    results = {}
    order_checked = False

    def run(kind):
        if kind == "bare":
            return RE(bare_scan(stxm, plan_order))
        ctx = unwrapped_stubs() if kind == "curiss_fix" else contextlib.nullcontext()
        with ctx:
            return RE(curiss_scan(stxm.detector, stxm.mono, stxm.stage, energies,
                                  y_positions=stxm.y_positions, sampling_ratio=args.ratio,
                                  seed=args.seed, analysis=analysis))

    n = len(plan_order)
    for batch in batches:
        writer = TimedCallback(writer_for(catalog, batch_size=batch))
        token = RE.subscribe(writer)
        run("bare")  # warm-up (first stream of this writer): not timed
        rec = {k: [] for k in kinds}
        for rep in range(args.repeats):
            rot = kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]  # rotate the order: drift hits each kind alike
            for kind in rot:
                writer.reset()
                with probes.active():
                    t0 = time.perf_counter()
                    uids = run(kind)
                    total = time.perf_counter() - t0
                parts = dict(probes.t)
                parts["writer"] = writer.seconds
                for (doc, stream), v in writer.by_doc.items():
                    parts[f"w:{doc}:{stream}"] = v
                rec[kind].append((total, parts))
                if kind != "bare" and not order_checked:
                    got = catalog[uids[0]]["primary"].read()
                    pairs = np.column_stack([np.asarray(got["energy_index"]), np.asarray(got["row_index"])])
                    same = pairs.shape == plan_order.shape and np.array_equal(pairs, plan_order)
                    print(f"curiss run {uids[0][:8]}: {len(pairs)} rows in primary, same rows in the "
                          f"same order as the bare loop: {same}")
                    order_checked = True
        RE.unsubscribe(token)
        results[batch] = rec
        ratio = median(c[0] / b[0] for c, b in zip(rec["curiss"], rec["bare"]))
        print(f"  batch {batch:3d}: curiss {n / median(t for t, _ in rec['curiss']):6.1f} rows/s, bare "
              f"{n / median(t for t, _ in rec['bare']):6.1f} rows/s, ratio {ratio:.2f}  ({load_line()})",
              flush=True)

    print(f"\n--- {n_e}x{n_y}x{n_x}, CURISS ratio {args.ratio} = {n} rows "
          f"({probe.imaged_energies.size} images + {probe._chosen_rows().size} row(s) at the other "
          f"energies), analysis stream {'on' if analysis else 'off'}, medians of {args.repeats} "
          f"rotated repeats; {load_line()}")
    print("    ratio = time(curiss run) / time(bare run) of the same repeat (median over repeats). "
          "Per-run fixed cost = writer time on start, descriptors and stop (flush + closing the "
          "streams) + the end-of-run analysis; per-row cost = the rest / rows. ms/row columns: "
          "writer = inside the TiledWriter callback, stubs = bluesky's Plan wrapper "
          "(traceback.format_stack on every bps.* call), planner = Planner.suggest")
    print(f"    {'batch':>5s} {'bare rows/s':>11s} {'curiss rows/s':>13s} {'ratio':>6s} {'goal':>5s} "
          f"{'fix':>5s} | {'fixed s':>7s} {'bare':>5s} {'curiss':>6s} | {'per row ms':>10s} {'bare':>5s} "
          f"{'curiss':>6s} {'ratio':>6s} | {'ratio@' + str(args.extrapolate):>10s} | {'ms/row':>6s} "
          f"{'writer b':>8s} {'writer c':>8s} {'stubs b':>7s} {'stubs c':>7s} {'planner':>7s} | "
          f"{'writer share':>12s} {'live lag':>8s}")
    fixed_keys = ("w:start:", "w:descriptor:", "w:stop:", "analysis")
    for batch, rec in results.items():
        def med(kind, key=None):
            if key is None:
                return median(t for t, _ in rec[kind])
            return median(p.get(key, 0.0) for _, p in rec[kind])

        def split(kind):
            fixed = [sum(p.get(k, 0.0) for k in fixed_keys) for _, p in rec[kind]]
            per_row = [(t - f) / n for (t, _), f in zip(rec[kind], fixed)]
            return median(fixed), median(per_row)

        ratio = median(c[0] / b[0] for c, b in zip(rec["curiss"], rec["bare"]))
        fix = (median(c[0] / b[0] for c, b in zip(rec["curiss_fix"], rec["bare"]))
               if "curiss_fix" in rec else float("nan"))
        fb, rb = split("bare")
        fc, rc = split("curiss")
        big = args.extrapolate
        ratio_big = (fc + big * rc) / (fb + big * rb)
        share = median(p["writer"] / t for t, p in rec["bare"])
        print(f"    {batch:5d} {n / med('bare'):11.1f} {n / med('curiss'):13.1f} {ratio:6.2f} "
              f"{'ok' if ratio <= 1.3 else 'MISS':>5s} {(f'{fix:5.2f}' if args.fix else '    -')} | {'':7s} {fb:5.2f} {fc:6.2f} | {'':10s} "
              f"{rb * 1e3:5.1f} {rc * 1e3:6.1f} {rc / rb:6.2f} | {ratio_big:10.2f} | {'':6s} "
              f"{med('bare', 'writer') / n * 1e3:8.1f} {med('curiss', 'writer') / n * 1e3:8.1f} "
              f"{med('bare', 'stub_wrap') / n * 1e3:7.1f} {med('curiss', 'stub_wrap') / n * 1e3:7.1f} "
              f"{med('curiss', 'suggest') / n * 1e3:7.1f} | {share:12.0%} {batch - 1:4d} rows")
    print(f"    ratio@{args.extrapolate}: (fixed_c + N per_row_c) / (fixed_b + N per_row_b) for a run of "
          f"N = {args.extrapolate} rows (e.g. 123x150x150 at a sampling ratio of ~0.05)")
    if args.fix:
        print("    fix: ratio of the curiss plan calling the undecorated stubs (prototype of yielding "
              "Msg directly in subsampled_scan's per-row loop), against the same bare runs")
    print("    writer time by document (ms per run, median):")
    for batch, rec in results.items():
        for kind in ("bare", "curiss"):
            keys = sorted({k for _, p in rec[kind] for k in p if k.startswith("w:")})
            print(f"      batch {batch:3d} {kind:6s}: " + ", ".join(
                f"{k[2:].rstrip(':')} {median(p.get(k, 0.0) for _, p in rec[kind]) * 1e3:.0f}" for k in keys))
    print(f"\nfinished; {load_line()}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
