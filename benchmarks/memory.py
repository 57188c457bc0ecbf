"""Peak memory of an ACURISS replay of a 200×512×512 stack, against the cube's size.

Each measurement runs in a fresh subprocess that

1. imports numpy, scipy, scikit-learn and curiss (``baseline``: interpreter + libraries);
2. builds a synthetic float64 cube chunk by chunk (so building it costs one cube, not more);
3. runs ``curiss.replay(ACURISSPlanner(..., max_iterations=3), cube)``.

The replay uses the implementation in ``src/`` (the working tree). A second subprocess runs the
same replay on the implementation of an earlier commit (``--baseline``, default ``ede9294``: the
planner step and replay before issue 7, extracted with ``git archive`` into a temporary folder and
put first on ``sys.path``), so the saving is measured in the same run.

Reported: the peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, and Linux's
``VmHWM``), and the peak of traced allocations (``tracemalloc``, which numpy reports its arrays to),
per phase of the replay: the planner's steps (``suggest``), ``replay``'s own end (the completion it
returns, the cost of the acquisition and of the full raster). Everything is expressed in units of
the cube's float64 size; the goal is peak RSS ≤ baseline + 4 × cube. The two replays are also
compared: same decisions (the kind and the (energy, row) pairs of every decision, in order), same
final mask, and how far the doses agree.

The planner starts from ``initial_ratio=0.02``, raised to just above the stack's minimum ratio when
0.02 is below it (small stacks, e.g. ``--size 40x32x32``; the output then says so).

Run from the repository root::

    .venv/bin/python benchmarks/memory.py                     # 200x512x512, ~2 min
    .venv/bin/python benchmarks/memory.py --size 123x150x150 --iterations 3
    .venv/bin/python benchmarks/memory.py --baseline none     # src only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MiB = 2**20
INITIAL_RATIO = 0.02  # ACURISS's initial ratio (raised to the stack's minimum for small stacks)


def _rss_now() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in bytes (Linux); NaN elsewhere."""
    out = {"VmRSS": float("nan"), "VmHWM": float("nan")}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in out:
                out[key] = float(line.split()[1]) * 1024
    except OSError:
        pass
    return out["VmRSS"], out["VmHWM"]


def _maxrss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # KiB on Linux


def child(size: str, iterations: int, seed: int, src: str | None) -> dict:
    """Run in the subprocess: measure and return a JSON-able dict (bytes, seconds)."""
    import importlib
    import tracemalloc

    import numpy as np

    for lib in ("scipy.linalg", "sklearn.cluster"):  # in the baseline: imported, not used here
        importlib.import_module(lib)
    if src:  # an earlier implementation, first on the path (before the editable install's finder)
        sys.path.insert(0, src)
    import curiss

    replay_mod = importlib.import_module("curiss.replay")
    from curiss.planners import ACURISSPlanner, Planner

    sys.path.insert(0, str(HERE))
    from planner import synthetic_stack  # the benchmark helpers (also imports threadpoolctl)

    rec = {"baseline_rss": _rss_now()[0], "baseline_maxrss": _maxrss(), "curiss": curiss.__file__}
    n_e, n_y, n_x = (int(v) for v in size.split("x"))
    # the cube, built energy by energy (same recipe as synthetic_stack, without full-size temporaries)
    rng = np.random.default_rng(seed)
    energies, small, spectra = synthetic_stack(n_e, (min(n_y, 32), min(n_x, 32)), rng=seed)
    block = 16
    gy, gx = -(-n_y // block), -(-n_x // block)
    phase = np.kron(rng.integers(0, spectra.shape[1], size=(gy, gx)),
                    np.ones((block, block), dtype=int))[:n_y, :n_x]
    yy, xx = np.meshgrid(np.linspace(0, 1, n_y), np.linspace(0, 1, n_x), indexing="ij")
    thickness = 0.6 + 0.4 * np.cos(3 * yy) * np.sin(2 * xx + 0.5)
    cube = np.empty((n_e, n_y, n_x))
    for e in range(n_e):
        cube[e] = spectra[e, phase] * thickness + 0.01 * rng.standard_normal((n_y, n_x))
    del yy, xx, thickness, phase
    rec["cube_bytes"] = float(cube.nbytes)
    rec["after_cube_rss"] = _rss_now()[0]
    rec["after_cube_maxrss"] = _maxrss()

    tracemalloc.start()
    base_traced = tracemalloc.get_traced_memory()[0]
    phases: dict[str, float] = {}

    def probe(owner, name, key):
        fn = getattr(owner, name)

        def wrapper(*args, **kwargs):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            try:
                return fn(*args, **kwargs)
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                phases[key] = max(phases.get(key, 0.0), float(peak - base_traced))
                phases[key + " (held before)"] = max(phases.get(key + " (held before)", 0.0),
                                                     float(before - base_traced))
        setattr(owner, name, wrapper)

    probe(Planner, "suggest", "planner steps")
    for name in ("acquisition_cost", "_acquisition_cost"):  # the name replay uses (old / new)
        if hasattr(replay_mod, name):
            probe(replay_mod, name, "replay: acquisition cost")
    for name in ("raster_cost", "_raster_cost"):
        if hasattr(replay_mod, name):
            probe(replay_mod, name, "replay: raster cost")
    probe(Planner, "completed", "replay: completed()")
    import inspect

    off = {"tol_completion": 0.0, "tol_spectral": 0.0}  # every stop test off: run max_iterations
    if "stop_rule" in inspect.signature(ACURISSPlanner).parameters:  # not in the baseline
        off.update(stop_rule="variation", images_per_row=3)  # the default order, no early stop
    # 0.02, raised to just above the stack's minimum ratio (one image and one row at every other
    # energy) when it is below it, as benchmarks/quality.py does: small stacks (below about 100
    # energies) refuse 0.02; the same formula as curiss.linalg.minimum_ratio, in any version
    p0 = max(INITIAL_RATIO, 1.001 * (n_y + n_e - 1) / (n_e * n_y))
    rec["initial_ratio"] = p0
    planner = ACURISSPlanner(energies, (n_y, n_x), sampling_ratio=0.5, initial_ratio=p0,
                             max_iterations=iterations, seed=seed, **off)
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    # one BLAS thread: same memory, much faster on the loaded 2-core machine (see planner.py)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        acq = curiss.replay(planner, cube)
    rec["replay_seconds"] = time.perf_counter() - t0
    # the probes reset the peak at each call: the overall peak is the largest of the phases'
    rec["traced_peak"] = max([float(tracemalloc.get_traced_memory()[1] - base_traced)]
                             + [v for k, v in phases.items() if not k.endswith("(held before)")])
    rec["traced_after"] = float(tracemalloc.get_traced_memory()[0] - base_traced)
    tracemalloc.stop()
    rec["phases"] = phases
    rec["peak_maxrss"] = _maxrss()
    rec["peak_vmhwm"] = _rss_now()[1]
    rec["dose_total"] = acq.cost.dose_total
    rec["raster_dose_total"] = acq.raster_cost.dose_total
    rec["decisions"] = len(acq.history)
    # what was decided, compared between src and the baseline: the (energy, row) pairs of every
    # decision in order (with its kind), and the final mask, as digests
    h = hashlib.sha256()
    for d in acq.history:
        h.update(str(d["kind"]).encode() + b";")
        h.update(np.ascontiguousarray(np.asarray(d["pairs"], dtype=np.int64).reshape(-1, 2)).tobytes() + b";")
    rec["decisions_sha256"] = h.hexdigest()
    rec["mask_sha256"] = hashlib.sha256(np.packbits(np.asarray(acq.mask, bool)).tobytes()
                                        + str(acq.mask.shape).encode()).hexdigest()
    rec["stop_reason"] = acq.report.get("stop_reason")
    rec["sampling_ratio"] = acq.sampling_ratio
    rec["loadavg"] = os.getloadavg()
    return rec


def run_child(args, src: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--size", args.size, "--iterations",
           str(args.iterations), "--seed", str(args.seed)] + (["--src", src] if src else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(label: str, rec: dict) -> None:
    cube = rec["cube_bytes"]
    base = rec["baseline_maxrss"]
    peak = rec["peak_maxrss"]
    over = (peak - base) / cube
    print(f"\n--- {label}: {rec['decisions']} decisions, stop: {rec['stop_reason']!r}, sampling ratio "
          f"{rec['sampling_ratio']:.3f}, replay {rec['replay_seconds']:.1f} s; load average "
          + " ".join(f"{v:.2f}" for v in rec["loadavg"]))
    if rec.get("initial_ratio", INITIAL_RATIO) != INITIAL_RATIO:
        print(f"    initial_ratio raised from {INITIAL_RATIO:g} to {rec['initial_ratio']:.3g}, "
              f"just above this stack's minimum ratio")
    print(f"    cube (float64)                 {cube / MiB:9.0f} MiB  = 1.00 cube")
    print(f"    baseline (interpreter + libs)  {base / MiB:9.0f} MiB  (ru_maxrss after imports)")
    print(f"    after building the cube        {rec['after_cube_maxrss'] / MiB:9.0f} MiB  "
          f"= baseline + {(rec['after_cube_maxrss'] - base) / cube:.2f} cube")
    print(f"    peak RSS (ru_maxrss)           {peak / MiB:9.0f} MiB  = baseline + {over:.2f} cube   "
          f"goal <= baseline + 4 cube: {'ok' if over <= 4.0 else 'MISS'}")
    print(f"    peak RSS (VmHWM)               {rec['peak_vmhwm'] / MiB:9.0f} MiB")
    print(f"    traced peak during replay      {rec['traced_peak'] / MiB:9.0f} MiB  = "
          f"{rec['traced_peak'] / cube:.2f} cube on top of the input cube (tracemalloc)")
    print("    traced peak by phase (cube units, on top of the input cube; 'held before' = already "
          "allocated when the phase started):")
    ph = rec["phases"]
    for key in sorted(k for k in ph if not k.endswith("(held before)")):
        print(f"      {key:28s} peak {ph[key] / cube:5.2f}   held before {ph[key + ' (held before)'] / cube:5.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="200x512x512", help="n_E x n_y x n_x (default %(default)s)")
    ap.add_argument("--iterations", type=int, default=3, help="ACURISS max_iterations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", default="ede9294",
                    help="commit whose src/ is the same-run baseline ('none' to skip; default "
                         "%(default)s, before issue 7)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.size, args.iterations, args.seed, args.src)))
        return
    la = os.getloadavg()
    print(f"curiss memory benchmark, {args.size}, ACURISS max_iterations={args.iterations}; "
          f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores")
    rec = run_child(args)
    report(f"src ({rec['curiss']})", rec)
    if args.baseline.lower() != "none":
        with tempfile.TemporaryDirectory() as tmp:
            archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", args.baseline, "src"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            old = run_child(args, src=str(Path(tmp) / "src"))
        report(f"baseline: commit {args.baseline} ({old['curiss']})", old)
        rel = max(abs(old["dose_total"] / rec["dose_total"] - 1),
                  abs(old["raster_dose_total"] / rec["raster_dose_total"] - 1))
        cube = rec["cube_bytes"]
        print(f"\n    src vs baseline: peak RSS over the interpreter "
              f"{(rec['peak_maxrss'] - rec['baseline_maxrss']) / cube:.2f} vs "
              f"{(old['peak_maxrss'] - old['baseline_maxrss']) / cube:.2f} cube "
              f"(ratio {(rec['peak_maxrss'] - rec['baseline_maxrss']) / (old['peak_maxrss'] - old['baseline_maxrss']):.2f}); "
              f"replay {rec['replay_seconds']:.1f} s vs {old['replay_seconds']:.1f} s; same decisions "
              f"(kind and (energy, row) pairs of every decision, in order): "
              f"{rec['decisions_sha256'] == old['decisions_sha256']}; same mask: "
              f"{rec['mask_sha256'] == old['mask_sha256']}; doses agree to {rel:.1e}")
    la = os.getloadavg()
    print(f"\nfinished; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")


if __name__ == "__main__":
    main()
