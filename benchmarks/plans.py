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
``time(curiss) / time(bare)`` is taken per pair and its median reported (goal ≤ 1.3). The time
spent inside the writer callback (in the RunEngine thread, by document) is measured too, and each
run's time is split into a fixed per-run cost (the writer's time on start, descriptors and stop,
plus the end-of-run analysis) and a per-row cost (the rest), from which the ratio of a longer run
is extrapolated. With ``--background on`` the writer's work is done in its own thread, so that
split, the extrapolated ratio and the writer's time per row are not measured (the table shows
``-``); the ratio and the request counts are.

Every writer setting is measured in the same run, bare and curiss alternating:

- ``--journal on,off``: ``writer_for(catalog, journal=True/False)`` (the local msgpack journal in
  front of the ``TiledWriter``);
- ``--close-streams on,off``: ``off`` is a prototype fix (monkeypatched here, for both loops): the
  ``TiledWriter`` does not send its ``close_stream`` request for every node at stop. In the
  embedded catalog (no streaming cache, no webhooks) the server does nothing on it but look the
  node up, and it costs one request per stream, table and array;
- ``--background on``: prototype, the ``TiledWriter`` in a thread of its own behind the journal;
- curiss variants (``--kinds``; prototypes monkeypatched here, ``src/`` unchanged): ``curiss`` as
  shipped, ``curiss_light`` (``analysis`` stream without ``completed`` and ``mask``),
  ``curiss_noanalysis`` (``analysis=False``), ``curiss_compact`` / ``curiss_compact_noanalysis``
  (``planner`` stream with ``energy_weights`` and ``row_weights`` merged into one ``weights``).

The Tiled requests of each run are counted (``httpx.Client.send``) and timed.

The defaults measure the shipped writer settings (batch 10, journal on, ``close_stream`` on) on
the speed issue's stack size, 123 x 150 x 150 at ratio 0.05 (868 rows), against the shipped plan
and the plan with ``analysis=False``. Run from the repository root::

    .venv/bin/python benchmarks/plans.py                       # 868 rows, 2 repeats (~5 min)
    .venv/bin/python benchmarks/plans.py --size 30x24x48 --ratio 0.15 --journal on,off --close-streams on,off --repeats 3  # 99 rows
    .venv/bin/python benchmarks/plans.py --size 50x64x48 --ratio 0.15 --repeats 2  # 428 rows
    .venv/bin/python benchmarks/plans.py --size 30x24x48 --ratio 0.15 --batch-sizes 5,10,50
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
import httpx
import numpy as np
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky_tiled_plugins.writing import tiled_writer as _tw

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # sim_devices lives at the repository root

from planner import load_line, median, synthetic_stack  # noqa: E402

import curiss.plans as curiss_plans  # noqa: E402
from curiss.planners import CURISSPlanner, Planner  # noqa: E402
from curiss.plans import _ordered_pairs, curiss_scan  # noqa: E402
from curiss.store import open_catalog, writer_for  # noqa: E402
from sim_devices import ReplaySample, make_stxm  # noqa: E402

#: the curiss plan variants ``--kinds`` accepts (compared with the bare loop)
KINDS = ("curiss", "curiss_noanalysis", "curiss_light", "curiss_compact", "curiss_compact_noanalysis",
         "curiss_fix")


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


class RequestCounter:
    """Counts and times the Tiled client's HTTP requests (``httpx.Client.send``) while active."""

    def __init__(self):
        self.n = 0
        self.seconds = 0.0
        self.by_kind = {}  # "METHOD /route" -> [count, seconds]

    @contextlib.contextmanager
    def active(self):
        self.n, self.seconds, self.by_kind = 0, 0.0, {}
        orig = httpx.Client.send
        counter = self

        def send(client, request, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return orig(client, request, *args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                parts = request.url.path.split("/")
                kind = f"{request.method} /{parts[3] if len(parts) > 3 else ''}"
                counter.n += 1
                counter.seconds += dt
                c = counter.by_kind.setdefault(kind, [0, 0.0])
                c[0] += 1
                c[1] += dt

        httpx.Client.send = send
        try:
            yield self
        finally:
            httpx.Client.send = orig


@contextlib.contextmanager
def streams_left_open(enabled: bool):
    """Prototype fix: the ``TiledWriter`` skips ``close_stream`` on every node at stop.

    ``DELETE /stream/close/...`` only notifies a streaming cache and webhooks; the embedded
    catalog has neither, so the request does nothing but cost a round trip per node (stream,
    table, array). A store-side fix would do this only for such catalogs.
    """
    if not enabled:
        yield
        return
    saved = _tw._RunWriter._close_stream_tree
    _tw._RunWriter._close_stream_tree = lambda self: None
    try:
        yield
    finally:
        _tw._RunWriter._close_stream_tree = saved


class BackgroundWriter:
    """Prototype fix: hand the documents to the catalog writer in a thread of its own.

    ``__call__`` only queues the document; a worker thread feeds the wrapped writer in order.
    ``drain()`` waits until every queued document has been written (the benchmark adds that wait
    to the run's time, so the comparison stays fair). Behind a journal (which stays synchronous in
    the RunEngine thread) a crash loses nothing; a real implementation must delete the journal
    file only once the worker has written the stop document.
    """

    def __init__(self, target):
        import queue
        import threading

        self.target = target
        self._queue = queue.Queue()
        self.error = None
        self._thread = threading.Thread(target=self._work, daemon=True, name="catalog-writer")
        self._thread.start()

    def _work(self):
        while True:
            name, doc = self._queue.get()
            try:
                if self.error is None:
                    self.target(name, doc)
            except Exception as exc:  # noqa: BLE001 - reported by drain()
                self.error = exc
            finally:
                self._queue.task_done()

    def __call__(self, name, doc):
        self._queue.put((name, doc))

    def drain(self):
        self._queue.join()
        if self.error is not None:
            raise RuntimeError(f"background writer failed: {self.error!r}") from self.error


def make_writer(catalog, *, batch, journal, background):
    """``writer_for(catalog, ...)``, with the TiledWriter moved to a thread when ``background``."""
    w = writer_for(catalog, batch_size=batch, journal=journal)
    if not background:
        return w, None
    if journal:  # the journal stays in the RunEngine thread, the TiledWriter behind it moves
        bg = BackgroundWriter(w.writer)
        w.writer = bg
        return w, bg
    bg = BackgroundWriter(w)
    return bg, bg


@contextlib.contextmanager
def light_analysis(enabled: bool):
    """Prototype: the ``analysis`` stream without ``completed`` and ``mask``.

    Both can be rebuilt from the run (``mask`` from ``primary``; ``completed`` with
    ``curiss.store.recompute``, deterministic for the run's seed); the stream keeps labels,
    cluster_spectra and eigenspectra (3 array nodes instead of 5, and no n_E x n_pix cube).
    """
    if not enabled:
        yield
        return
    saved = curiss_plans._analysis_describe

    def describe(*args, **kwargs):
        d = saved(*args, **kwargs)
        d.pop("completed")
        d.pop("mask")
        return d

    curiss_plans._analysis_describe = describe
    try:
        yield
    finally:
        curiss_plans._analysis_describe = saved


@contextlib.contextmanager
def compact_planner(enabled: bool):
    """Prototype: the ``planner`` stream with 2 array nodes instead of 3.

    ``energy_weights`` (n_E,) and ``row_weights`` (n_y,) become one float64 array ``weights``
    (n_E + n_y,) (energy weights first); ``request`` stays.
    """
    if not enabled:
        yield
        return
    saved_describe, saved_record = curiss_plans._planner_describe, curiss_plans.decision_record

    def describe(n_e, n_y):
        d = saved_describe(n_e, n_y)
        d.pop("energy_weights")
        d.pop("row_weights")
        d["weights"] = curiss_plans._key("array", (n_e + n_y,), "float64")
        return d

    def record(*args, **kwargs):
        r = saved_record(*args, **kwargs)
        r["weights"] = np.concatenate([r.pop("energy_weights"), r.pop("row_weights")])
        return r

    curiss_plans._planner_describe, curiss_plans.decision_record = describe, record
    try:
        yield
    finally:
        curiss_plans._planner_describe, curiss_plans.decision_record = saved_describe, saved_record


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
    ap.add_argument("--size", default="123x150x150",
                    help="n_E x n_y x n_x (default %(default)s, the stack size of the speed issue)")
    ap.add_argument("--ratio", type=float, default=0.05, help="CURISS sampling ratio (default %(default)s)")
    ap.add_argument("--batch-sizes", default="10")
    ap.add_argument("--journal", default="on", help="writer journal settings to measure: on (shipped), off")
    ap.add_argument("--close-streams", default="on",
                    help="on: TiledWriter as shipped; off: prototype without close_stream requests")
    ap.add_argument("--background", default="off",
                    help="off: TiledWriter in the RunEngine thread; on: prototype, in a thread of its "
                    "own (the run's time includes waiting for it to finish)")
    ap.add_argument("--kinds", default="curiss,curiss_noanalysis",
                    help="comma-separated curiss plan variants besides the bare loop: curiss, "
                    "curiss_noanalysis, curiss_light (analysis without completed and mask), curiss_compact "
                    "(light analysis and a planner stream with 2 array nodes), curiss_compact_noanalysis, "
                    "curiss_fix (plan stubs without bluesky's Plan wrapper)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--fix", action="store_true", help="same as adding curiss_fix to --kinds")
    ap.add_argument("--extrapolate", type=int, default=1000,
                    help="run length (rows) for the extrapolated ratio (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_e, n_y, n_x = (int(v) for v in args.size.split("x"))
    batches = [int(b) for b in args.batch_sizes.split(",")]
    journals = [{"on": True, "off": False}[j] for j in args.journal.split(",")]
    closes = [{"on": True, "off": False}[c] for c in args.close_streams.split(",")]
    backgrounds = [{"on": True, "off": False}[c] for c in args.background.split(",")]
    variants = [k for k in args.kinds.split(",") if k] + (["curiss_fix"] if args.fix else [])
    unknown = [k for k in variants if k not in KINDS]
    if unknown or not variants:
        ap.error(f"unknown --kinds {unknown or [args.kinds]}; choose from {', '.join(KINDS)}")
    kinds = ("bare", *dict.fromkeys(variants))
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
    requests = RequestCounter()
    results = {}
    order_checked = False

    def run(kind):
        if kind == "bare":
            return RE(bare_scan(stxm, plan_order))
        ctx = unwrapped_stubs() if kind == "curiss_fix" else contextlib.nullcontext()
        with ctx, light_analysis(kind in ("curiss_light", "curiss_compact")), \
                compact_planner(kind.startswith("curiss_compact")):
            return RE(curiss_scan(stxm.detector, stxm.mono, stxm.stage, energies,
                                  y_positions=stxm.y_positions, sampling_ratio=args.ratio,
                                  seed=args.seed, analysis=not kind.endswith("noanalysis")))

    n = len(plan_order)
    for batch in batches:
        for journal in journals:
            for close, background in [(c, b) for c in closes for b in backgrounds]:
                setting = (batch, journal, close, background)
                inner, bg = make_writer(catalog, batch=batch, journal=journal, background=background)
                writer = TimedCallback(inner)
                token = RE.subscribe(writer)
                with streams_left_open(not close):
                    run("bare")  # warm-up (first stream of this writer): not timed
                    if bg is not None:
                        bg.drain()
                rec = {k: [] for k in kinds}
                for rep in range(args.repeats):
                    rot = kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]  # drift hits each kind alike
                    for kind in rot:
                        writer.reset()
                        with probes.active(), requests.active(), streams_left_open(not close):
                            t0 = time.perf_counter()
                            uids = run(kind)
                            if bg is not None:
                                bg.drain()
                            total = time.perf_counter() - t0
                        parts = dict(probes.t)
                        parts["writer"] = writer.seconds
                        parts["requests"] = requests.n
                        parts["request_s"] = requests.seconds
                        for (doc, stream), v in writer.by_doc.items():
                            parts[f"w:{doc}:{stream}"] = v
                        for k, (cnt, sec) in requests.by_kind.items():
                            parts[f"r:{k}"] = cnt
                        rec[kind].append((total, parts))
                        if kind != "bare" and not order_checked:
                            got = catalog[uids[0]]["primary"].read()
                            pairs = np.column_stack([np.asarray(got["energy_index"]),
                                                     np.asarray(got["row_index"])])
                            same = pairs.shape == plan_order.shape and np.array_equal(pairs, plan_order)
                            print(f"curiss run {uids[0][:8]}: {len(pairs)} rows in primary, same rows in "
                                  f"the same order as the bare loop: {same}")
                            order_checked = True
                RE.unsubscribe(token)
                results[setting] = rec
                print(f"  batch {batch:3d} journal {'on ' if journal else 'off'} close_stream "
                      f"{'on ' if close else 'off'} background {'on ' if background else 'off'}: bare {n / median(t for t, _ in rec['bare']):6.1f} rows/s; "
                      + "; ".join(f"{k} ratio {median(c[0] / b[0] for c, b in zip(rec[k], rec['bare'])):.2f}"
                                  for k in kinds[1:]) + f"  ({load_line()})", flush=True)

    print(f"\n--- {n_e}x{n_y}x{n_x}, CURISS ratio {args.ratio} = {n} rows "
          f"({probe.imaged_energies.size} images + {probe._chosen_rows().size} row(s) at the other "
          f"energies), medians of {args.repeats} rotated repeats; {load_line()}")
    print("    ratio = time(curiss run) / time(bare run) of the same repeat (median over repeats). "
          "fixed = writer time on start, descriptors and stop + the end-of-run analysis; per row = the "
          "rest / rows; req = Tiled requests per run (bare / curiss); ms/req = mean request time in the "
          "curiss run")
    print(f"    {'batch':>5s} {'jrnl':>4s} {'close':>5s} {'bg':>3s} {'kind':18s} {'bare r/s':>8s} {'ratio':>6s} "
          f"{'goal':>4s} | {'fixed s b/c':>11s} | {'per row ms b/c':>14s} | {'ratio@' + str(args.extrapolate):>10s} "
          f"| {'req b/c':>7s} {'ms/req':>6s} | {'writer ms/row b':>15s} {'stubs ms/row c':>14s}")
    fixed_keys = ("w:start:", "w:descriptor:", "w:stop:", "analysis")
    for (batch, journal, close, background), rec in results.items():
        def split(kind):
            fixed = [sum(p.get(k, 0.0) for k in fixed_keys) for _, p in rec[kind]]
            per_row = [(t - f) / n for (t, _), f in zip(rec[kind], fixed)]
            return median(fixed), median(per_row)

        fb, rb = split("bare")
        tb = median(t for t, _ in rec["bare"])
        for kind in kinds[1:]:
            ratio = median(c[0] / b[0] for c, b in zip(rec[kind], rec["bare"]))
            fc, rc = split(kind)
            big = args.extrapolate
            ratio_big = (fc + big * rc) / (fb + big * rb)
            req_b = median(p["requests"] for _, p in rec["bare"])
            req_c = median(p["requests"] for _, p in rec[kind])
            ms_req = median(p["request_s"] / max(p["requests"], 1) for _, p in rec[kind]) * 1e3
            if background:  # the writer works in its own thread: its time is not in the split
                fixed_s, row_s, big_s, writer_s = f"{'-':>11s}", f"{'-':>14s}", f"{'-':>10s}", f"{'-':>15s}"
            else:
                fixed_s, row_s = f"{fb:5.2f}/{fc:5.2f}", f"{rb * 1e3:6.1f}/{rc * 1e3:6.1f}"
                big_s = f"{ratio_big:10.2f}"
                writer_s = f"{median(p['writer'] for _, p in rec['bare']) / n * 1e3:15.1f}"
            print(f"    {batch:5d} {'on' if journal else 'off':>4s} {'on' if close else 'off':>5s} "
                  f"{'on' if background else 'off':>3s} {kind:18s} "
                  f"{n / tb:8.1f} {ratio:6.2f} {'ok' if ratio <= 1.3 else 'MISS':>4s} | {fixed_s} | "
                  f"{row_s} | {big_s} | {req_b:3.0f}/{req_c:3.0f} {ms_req:6.0f} | "
                  f"{writer_s} "
                  f"{median(p.get('stub_wrap', 0.0) for _, p in rec[kind]) / n * 1e3:14.1f}")
    print(f"    ratio@{args.extrapolate}: (fixed_c + N per_row_c) / (fixed_b + N per_row_b) for a run of "
          f"N = {args.extrapolate} rows")
    if True in backgrounds:
        print("    background on: the TiledWriter runs in a thread of its own, so the writer time measured "
              "in the RunEngine thread is only the journal and the queueing; the fixed / per-row split, "
              f"ratio@{args.extrapolate} and writer ms/row are therefore not measured ('-'). The ratio "
              "and the requests are (each run's time includes draining the writer).")
    print("    writer time by document and Tiled requests by kind (per run, median):")
    for (batch, journal, close, background), rec in results.items():
        for kind in kinds:
            wkeys = sorted({k for _, p in rec[kind] for k in p if k.startswith("w:")})
            rkeys = sorted({k for _, p in rec[kind] for k in p if k.startswith("r:")})
            print(f"      batch {batch} journal {'on' if journal else 'off'} close {'on' if close else 'off'} "
                  f"background {'on' if background else 'off'} {kind}: " + ", ".join(
                      f"{k[2:].rstrip(':')} {median(p.get(k, 0.0) for _, p in rec[kind]) * 1e3:.0f} ms"
                      for k in wkeys)
                  + " | requests: " + ", ".join(
                      f"{k[2:]} {median(p.get(k, 0) for _, p in rec[kind]):.0f}" for k in rkeys))
    print(f"\nfinished; {load_line()}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
