"""Row coverage of ACURISS's prediction rule (docs/quality.md, "Row coverage").

The prediction rule stops when newly measured rows are predicted well. Rows that all miss a
material predict each other well, so on a small field the rule could stop with the material
missing from every spatial row measured at every energy. ``row_coverage`` (the default) holds
the stop back while the images show a component that those rows miss (``coverage_gap`` > 10)
and asks for a row scan. This script measures it; each part compares with ``row_coverage=False``
(the rule of earlier versions) in the same run. Run from the repository root:

    .venv/bin/python benchmarks/row_coverage.py small               # ~1 min
    .venv/bin/python benchmarks/row_coverage.py demo                # ~7 min (200 seeds, two caps)
    .venv/bin/python benchmarks/row_coverage.py held --seeds 10     # ~11 min with the ALS stacks
    .venv/bin/python benchmarks/row_coverage.py steer               # ~3 min with the ALS stacks (--seeds 30: ~15)
    .venv/bin/python benchmarks/row_coverage.py small --gap-max 5   # research: another limit

- ``small``: the phantom of ``curiss demo --energies 24 --size 16`` (``make_phantom``: 24
  energies, 16 x 16, 3 materials; phantom seed = planner seed and the demo's initial ratio, as
  in the demo) with Poisson noise at 1e4 photons per pixel drawn here (the demo's detector draws
  its own), at caps 0.3 (the demo's earlier cap) and 0.4 (its cap now); the steered variant
  (below) at 0.3. Per
  setting: runs that stop by the rule with a material (the phantom's labels) in no measured
  row, the completion error against the noise-free truth (median, 90th percentile, worst, runs
  above 0.1), the ratio, and the coverage gap at the stop of the runs that stopped on their own.
- ``demo``: ``curiss demo --energies 24 --size 16`` itself, without its catalog and figures:
  the demo's phantom, simulated STXM (its Poisson detector) and ACURISS settings, run by the
  RunEngine, demo seeds 0-199 (phantom seed = planner seed, detector seed + 1, as the demo), at
  caps 0.3 and 0.4. Per cap: runs that reach the cap before the stop rule passed, the error
  of the completed stack against the noise-free cube (median, 90th percentile, worst, runs
  above 0.1) and the ratio; for each run above 0.1 its coverage gap and rows (those measured at
  every energy) at the end. ``--energies``/``--size`` choose another demo size.
- ``held``: every ACURISS configuration of benchmarks/quality.py that uses the prediction rule
  with row scans (p0 0.02, caps 0.10 and 0.05; the default also from p0 0.04) and the ACURISS
  of the strategy x ratio sweep (p0 = ratio / 2, cap 2 x ratio, ratios 0.02-0.10), on the ALS
  stacks (when present) and the phantoms: how many runs row coverage held at least once (a run
  never held makes the same decisions as without it), and the largest gap at a stop.
- ``steer``: a variant not adopted, a row scan whenever the gap is above 10 (not only when it
  holds a stop): the default ACURISS at caps 0.10 and 0.05 on the ALS stacks and phantoms; runs
  changed and their measures with and without it (for the small stack see ``small``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # sim_devices lives at the repository root
import quality as Q  # noqa: E402  (the benchmarks folder)

from curiss.analysis import spectral_analysis  # noqa: E402
from curiss.datasets import make_phantom  # noqa: E402
from curiss.linalg import minimum_ratio  # noqa: E402
from curiss.planners import ACURISSPlanner  # noqa: E402
from curiss.planners._strategies import COVERAGE_GAP_MAX  # noqa: E402
from curiss.replay import replay  # noqa: E402
# ``curiss demo``'s sampling ratio and its initial-ratio rule
from sim_devices._demo import DEMO_RATIO, _initial_ratio as demo_initial_ratio  # noqa: E402

#: caps compared: the demo's earlier cap (0.3) and its cap now (DEMO_RATIO, 0.4)
CAPS = (0.3, 0.4)

I0 = 1e4


def small_stack(seed, n_energies=24, size=16):
    """(phantom, noisy OD cube): the demo's phantom with Poisson noise at ``I0``."""
    ph = make_phantom(n_energies, (size, size), 3, seed=seed)
    counts = np.random.default_rng(seed + 1).poisson(I0 * np.exp(-ph.truth))
    return ph, -np.log(np.maximum(counts, 1) / I0)


class Watched(ACURISSPlanner):
    """Counts the evaluations where row coverage held a stop back."""

    held = 0

    def _prediction_stop(self):
        reason = super()._prediction_stop()
        self.held += bool(self._coverage_blocked)
        return reason


class Steered(Watched):
    """The variant not adopted: a row scan first whenever the gap is above the limit."""

    def _next_kinds(self):
        if self.mode == "alternate" and self.coverage_gap_ > COVERAGE_GAP_MAX:
            return ("row_scan", "image")
        return super()._next_kinds()


def _missed(p, labels):
    """Materials present in the field but in none of the rows measured at every energy."""
    rows = p._chosen_rows()
    present = set(np.unique(labels[labels >= 0]).tolist())
    seen = set(np.unique(labels[rows][labels[rows] >= 0]).tolist())
    return sorted(present - seen)


def small(args):
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"## the demo's stack (24 energies x 16 x 16, Poisson at i0 {I0:g}), seeds {seeds.start}-"
          f"{seeds.stop - 1}")
    for cap in CAPS:
        for label, cls, kw in (("row_coverage=False", Watched, dict(row_coverage=False)),
                               ("row_coverage (default)", Watched, {}),
                               ("steered (not adopted)", Steered, {})):
            if cls is Steered and cap != CAPS[0]:
                continue
            t0 = time.perf_counter()
            err, ratio, gaps, missed, held = [], [], [], 0, 0
            for s in seeds:
                ph, cube = small_stack(s)
                p = cls(ph.energies, ph.shape, dictionary=ph.spectra, seed=s, sampling_ratio=cap,
                        initial_ratio=demo_initial_ratio(24, 16), **kw)
                acq = replay(p, cube)
                err.append(np.linalg.norm(acq.completed - ph.truth) / np.linalg.norm(ph.truth))
                ratio.append(acq.sampling_ratio)
                own = not p.stop_reason.startswith("sampling_ratio budget")
                missed += bool(own and _missed(p, ph.labels))
                held += p.held > 0
                if own and p.row_coverage:
                    gaps.append(p.coverage_gap_)
            err = np.array(err)
            print(f"cap {cap:g} {label:24s} stops missing a material {missed:3d}, held {held:3d}; error "
                  f"median {np.median(err):.4f} p90 {np.percentile(err, 90):.4f} worst {err.max():.3f} "
                  f"(> 0.1: {(err > 0.1).sum()}); ratio median {np.median(ratio):.3f} mean "
                  f"{np.mean(ratio):.3f}; largest gap at an own stop "
                  f"{max(gaps) if gaps else float('nan'):.3g}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)


def demo(args):
    from bluesky import RunEngine

    from curiss.plans import subsampled_scan
    from sim_devices._demo import _demo_setup

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    n_e, n = args.energies, args.size
    print(f"## curiss demo --energies {n_e} --size {n} (its simulated STXM), demo seeds "
          f"{seeds.start}-{seeds.stop - 1}; the demo's cap is {DEMO_RATIO:g}")
    for cap in CAPS:
        t0 = time.perf_counter()
        err, ratio, capped, high = [], [], 0, []
        for s in seeds:
            sample, stxm, kw = _demo_setup(n_e, n, s)  # the demo's, at this cap
            p = ACURISSPlanner(sample.energies, (n, n), **dict(kw, sampling_ratio=cap))
            RunEngine({})(subsampled_scan(p, stxm.detector, stxm.mono, stxm.stage,
                                          y_positions=stxm.y_positions, analysis=False))
            err.append(np.linalg.norm(p.completed() - sample.cube) / np.linalg.norm(sample.cube))
            ratio.append(p.measured_ratio)
            capped += "before the stop rule passed" in p.stop_reason
            if err[-1] > 0.1:
                high.append(f"seed {s}: error {err[-1]:.3f}, coverage gap {p.coverage_gap_:.3g}, "
                            f"rows {p._chosen_rows().tolist()}, stop: {p.stop_reason[:60]}...")
        err = np.array(err)
        print(f"cap {cap:g}: capped before the rule passed {capped:3d} of {len(err)}; error median "
              f"{np.median(err):.4f} p90 {np.percentile(err, 90):.4f} worst {err.max():.3f} "
              f"(> 0.1: {(err > 0.1).sum()}, seeds {[s for s, e in zip(seeds, err) if e > 0.1]}); "
              f"ratio mean {np.mean(ratio):.3f} max {np.max(ratio):.3f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for line in high:
            print("  " + line, flush=True)


def _setups(n_energies, shape):
    pmin = 1.001 * minimum_ratio(n_energies, shape)
    for index, (label, kw) in enumerate(Q.ACURISS_CONFIGS):
        if kw.get("stop_rule") == "variation" or kw.get("mode") == "energies":
            continue
        for p0, cap in ((0.02, 0.10), (0.02, 0.05)) + (((0.04, 0.10),) if index == 0 else ()):
            yield f"config {index} p0 {p0:g} cap {cap:g}", dict(kw, initial_ratio=max(p0, pmin),
                                                                 sampling_ratio=cap)
    for r in (0.02, 0.04, 0.06, 0.08, 0.10):
        yield f"sweep {r:g}", dict(initial_ratio=max(r / 2, minimum_ratio(n_energies, shape) * 1.0001),
                                   sampling_ratio=min(1.0, 2 * r))


def held(args):
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for name, energies, cube, dictionary, truth in Q.stacks(args.stacks.split(",")):
        t0 = time.perf_counter()
        n = n_held = 0
        gaps = []
        for label, kw in _setups(energies.size, cube.shape[1:]):
            for s in seeds:
                p = Watched(energies, cube.shape[1:], dictionary=dictionary, seed=s, **kw)
                replay(p, cube)
                n += 1
                if p.held:
                    n_held += 1
                    print(f"  held: {label}, seed {s}: {p.stop_reason}", flush=True)
                if not p.stop_reason.startswith("sampling_ratio budget"):
                    gaps.append(p.coverage_gap_)
        print(f"{name}: {n} runs, {n_held} held at least once; largest gap at a stop of the rule "
              f"{max(gaps) if gaps else float('nan'):.3g} ({len(gaps)} such stops)  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)


def steer(args):
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    for name, energies, cube, dictionary, truth in Q.stacks(args.stacks.split(",")):
        ref = cube if truth is None else truth
        full = spectral_analysis(ref, n_components=3, n_clusters=4, seed=0)
        p0 = max(0.02, 1.001 * minimum_ratio(energies.size, cube.shape[1:]))
        for cap in (0.10, 0.05):
            rows = {}
            for cls in (Watched, Steered):
                rows[cls] = []
                for s in seeds:
                    acq = replay(cls(energies, cube.shape[1:], dictionary=dictionary, seed=s,
                                     initial_ratio=p0, sampling_ratio=cap), cube)
                    rows[cls].append((Q.measure_acquisition(acq, cube, ref, full), acq.order.tolist()))
            changed = sum(a[1] != b[1] for a, b in zip(rows[Watched], rows[Steered]))
            print(f"{name} cap {cap:g}: {changed} of {len(seeds)} runs changed")
            for cls, label in ((Watched, "default"), (Steered, "steered")):
                print("  " + Q.summary_line(label, [m for m, _ in rows[cls]]), flush=True)


def main(argv=None):
    global COVERAGE_GAP_MAX
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("small", "demo", "held", "steer"))
    ap.add_argument("--seeds", type=int, default=None,
                    help="number of seeds (default: 120 for small, 200 for demo, 10 for held and steer)")
    ap.add_argument("--first-seed", type=int, default=None,
                    help="first seed (default: 1000 for small, 0 otherwise)")
    ap.add_argument("--energies", type=int, default=24, help="demo: --energies of the demo (default 24)")
    ap.add_argument("--size", type=int, default=16, help="demo: --size of the demo (default 16)")
    ap.add_argument("--stacks", default="71214078,71214098,phantom,phantom128",
                    help="held and steer: comma-separated stacks of benchmarks/quality.py")
    ap.add_argument("--gap-max", type=float, default=None,
                    help=f"research: another limit for the coverage gap (shipped: {COVERAGE_GAP_MAX:g})")
    args = ap.parse_args(argv)
    if args.gap_max is not None:
        if not args.gap_max > 0:
            ap.error("--gap-max must be > 0")
        import curiss.planners._strategies as strategies

        strategies.COVERAGE_GAP_MAX = COVERAGE_GAP_MAX = args.gap_max
        print(f"(coverage gap limit {args.gap_max:g}, not the shipped one)")
    if args.seeds is None:
        args.seeds = {"small": 120, "demo": 200}.get(args.part, 10)
    if args.first_seed is None:
        args.first_seed = 1000 if args.part == "small" else 0
    if args.seeds < 1 or args.first_seed < 0:
        ap.error("--seeds must be >= 1 and --first-seed >= 0")
    {"small": small, "demo": demo, "held": held, "steer": steer}[args.part](args)


if __name__ == "__main__":
    main()
