"""Quality of every strategy against the full raster, on the shared ALS stacks and on phantoms.

Prints, for each stack, strategy and sampling ratio, the median and worst over seeds of the signal
error, raw error, ARI, cluster-spectra error, and the time and dose as fractions of the full
raster (docs/methods.md, Quality measures). Before those tables it prints an ablation of the CURISS
choices at one ratio and the ACURISS rows (``--acuriss-p0``, ``--acuriss-cap`` and
``--acuriss-configs`` apply to them with or without ``--acuriss-only``). With the strategy x ratio
tables it writes error-vs-ratio plots to ``benchmarks/out/quality_<stack>.png`` (gitignored).
Run from the repository root:

    .venv/bin/python benchmarks/quality.py                      # everything (slow: ~30 min)
    .venv/bin/python benchmarks/quality.py --stacks phantom --ratios 0.04,0.06 --seeds 3
    .venv/bin/python benchmarks/quality.py --ablation-only --stacks 71214078 --seeds 10  # the ablation only
    .venv/bin/python benchmarks/quality.py --acuriss-only --seeds 10   # ACURISS rows only
    .venv/bin/python benchmarks/quality.py --acuriss-only --acuriss-p0 0.02,0.04 --acuriss-configs 0,7
    .venv/bin/python benchmarks/quality.py --acuriss-only --acuriss-configs 0,9 --first-seed 10 --seeds 10
    .venv/bin/python benchmarks/quality.py --curiss-rows-only --seeds 10  # 1 vs 2 ARP rows
    .venv/bin/python benchmarks/quality.py --sweep-only --seeds 10        # strategy x ratio tables only

The ALS stacks (``../shared/data/als_stxm_fe_L23_breier2012``) are used when present, with the
71214078 Fe(III)/Fe(II) references plus a constant as dictionary (same energy grid for both).
Phantoms are ``make_phantom(100 energies, SIDE x SIDE, 3 materials, noise 0.02)``, named
``phantom[SIDE][@SEED]``: ``phantom`` (64 x 64, seed 0), ``phantom128``, ``phantom@3`` (another
draw of layout, spectra and noise).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from curiss.analysis import raw_error, signal_error, spectra_error, spectral_analysis
from curiss.compare import STRATEGIES, format_table, run_trials, summarise
from curiss.datasets import make_phantom
from curiss.io import load_stack
from curiss.linalg import budget, minimum_ratio
from curiss.planners import ACURISSPlanner, CURISSPlanner
from curiss.linalg import images_first_budget
from curiss.replay import replay

ROOT = Path(__file__).resolve().parents[1]
ALS = ROOT.parent / "shared" / "data" / "als_stxm_fe_L23_breier2012"
OUT = ROOT / "benchmarks" / "out"


def stacks(names):
    """Yield (name, energies, cube, dictionary, truth)."""
    dictionary = None
    if (ALS / "71214078_stack.npz").exists():
        dictionary = load_stack(ALS / "71214078_stack.npz").dictionary
    for name in names:
        if name.startswith("phantom"):
            # "phantom": 64 x 64 pixels; "phantom128": 128 x 128; "phantom@7", "phantom128@7":
            # another draw of the layout, spectra and noise (make_phantom's seed; default 0)
            side, seed = _phantom_name(name)
            ph = make_phantom(n_energies=100, shape=(side, side), n_materials=3, seed=seed, noise=0.02)
            yield name, ph.energies, ph.cube, ph.spectra, ph.truth
        else:
            path = ALS / f"{name}_stack.npz"
            if not path.exists():
                print(f"[skip] {path} not found")
                continue
            st = load_stack(path)
            yield name, st.energies, st.cube, dictionary, None


def _phantom_name(name):
    """(side, seed) of a phantom stack name: ``phantom[SIDE][@SEED]``."""
    body, _, seed = name[len("phantom"):].partition("@")
    if not (body == "" or body.isdigit()) or not (seed == "" or seed.isdigit()) or name.endswith("@"):
        raise SystemExit(f"unknown stack {name!r}: phantoms are named phantom[SIDE][@SEED], e.g. "
                         f"phantom, phantom128, phantom@3 (SIDE >= 4, SEED >= 0)")
    side = int(body or 64)
    if side < 4:
        raise SystemExit(f"unknown stack {name!r}: a phantom's SIDE must be >= 4")
    return side, int(seed or 0)


def measure(planner, cube, ref, full):
    return measure_acquisition(replay(planner, cube), cube, ref, full)


def measure_acquisition(acq, cube, ref, full):
    """The benchmark's measures of a replayed acquisition: raw error against ``cube`` (the
    measured stack), signal error against ``ref``, ARI and spectra error against ``full``."""
    ana = spectral_analysis(acq.completed, n_components=3, n_clusters=4, seed=0)
    return {
        "ratio": acq.sampling_ratio,
        "signal": signal_error(acq.completed, ref, k=3),
        "raw": raw_error(acq.completed, cube),
        "ari": adjusted_rand_score(full.labels.ravel(), ana.labels.ravel()),
        "spectra": spectra_error(full.cluster_spectra, ana.cluster_spectra),
        "stop": acq.report.get("stop_reason"),
    }


def summary_line(name, rows):
    def mw(key, worst=max):
        v = [r[key] for r in rows]
        return f"{np.median(v):.3f} / {worst(v):.3f}"
    return (f"{name:34s} ratio {mw('ratio')}  signal {mw('signal')}  raw {mw('raw')}  "
            f"ARI {mw('ari', min)}  spectra {mw('spectra')}")


ABLATION = [
    ("authors (leverage energies, authors' split)", dict(energy_sampling="leverage", budget_rule="authors")),
    ("+ volume-sampled energies", dict(energy_sampling="volume", budget_rule="authors")),
    # Not cumulative with the row above: the authors' row with only the split changed (energies
    # still by leverage scores, budget_rule="images"). The label is kept as it is because
    # docs/quality.md's ablation table quotes this row under the same text.
    ("+ images-first split", dict(energy_sampling="leverage", budget_rule="images")),
    ("volume + balanced split (default)", dict(energy_sampling="volume", budget_rule="balanced")),
    ("default + core rank 3", dict(energy_sampling="volume", budget_rule="balanced", core_rank=3)),
    ("default + write back", dict(energy_sampling="volume", budget_rule="balanced", write_back=True)),
    ("default + 2 ARP rows in the split", dict(two_rows=True)),
    ("uniform energies, uniform rows", dict(energy_sampling="leverage", budget_rule="authors",
                                            row_sampling="uniform", no_dictionary=True)),
]


def ablation(name, energies, cube, dictionary, truth, ratio, seeds, labels=None):
    ref = cube if truth is None else truth
    full = spectral_analysis(ref, n_components=3, n_clusters=4, seed=0)
    print(f"\n## CURISS ablation on {name} at ratio {ratio} ({len(seeds)} seeds; median / worst)")
    for label, kw in ABLATION:
        if labels is not None and label not in labels:
            continue
        kw = dict(kw)
        d = None if kw.pop("no_dictionary", False) else dictionary
        cls = _TwoRowCURISS if kw.pop("two_rows", False) else CURISSPlanner
        rows = [measure(cls(energies, cube.shape[1:], sampling_ratio=ratio, dictionary=d, seed=s, **kw),
                        cube, ref, full) for s in seeds]
        print(summary_line(label, rows), flush=True)


class _TwoRowCURISS(CURISSPlanner):
    """CURISS whose images-first split keeps two ARP spatial rows instead of one (measurement only)."""

    def _budget(self, ratio):
        budget(self.energies.size, self.shape, ratio)  # validates the minimum
        return images_first_budget(self.energies.size, self.shape, ratio, n_rows=2)


#: ACURISS configurations compared (label, keywords); the first is the default
ACURISS_CONFIGS = [
    ("prediction rule (default)", {}),
    ("variation rule (previous default)", dict(stop_rule="variation")),
    ("energies, authors' choices", dict(mode="energies", energy_sampling="leverage",
                                        budget_rule="authors", stop_rule="variation")),
    ("energies + prediction rule", dict(mode="energies")),
    # 4 and 6-12 were measured when refinement row scans were drawn by ARP: they keep it
    ("prediction, images_per_row=1", dict(images_per_row=1, row_refinement="arp")),
    ("variation, images_per_row=3", dict(stop_rule="variation", images_per_row=3)),
    ("prediction, images_per_row=2", dict(images_per_row=2, row_refinement="arp")),
    ("prediction, min_rows=1 (earlier)", dict(min_rows=1, row_refinement="arp")),
    ("prediction, dictionary images, tol 0.30, 2 in a row (earlier default)",
     dict(energy_refinement="dictionary", tol_prediction=0.30, row_refinement="arp")),
    ("residual images, tol 0.35, 2 in a row (earlier default)",
     dict(tol_prediction=0.35, n_consecutive=2, row_refinement="arp")),
    ("residual images, tol 0.30, 2 in a row", dict(n_consecutive=2, row_refinement="arp")),
    ("residual images, tol 0.35, 1 pass", dict(tol_prediction=0.35, row_refinement="arp")),
    ("residual images, tol 0.40, 1 pass", dict(tol_prediction=0.40, row_refinement="arp")),
    ("ARP refinement rows, tol 0.30 (previous default)", dict(row_refinement="arp")),
    ("pivoted refinement rows, tol 0.30", dict(tol_prediction=0.30)),
]


def acuriss_rows(name, energies, cube, dictionary, truth, seeds, configs=None, p0=0.02, cap=0.10):
    """ACURISS from ``p0`` (cap ``cap``), each configuration to its own stop; ``configs``: indices
    into ``ACURISS_CONFIGS`` (None: all), run in the list's order."""
    ref = cube if truth is None else truth
    full = spectral_analysis(ref, n_components=3, n_clusters=4, seed=0)
    p0 = max(p0, 1.001 * minimum_ratio(len(energies), cube.shape[1:]))
    print(f"\n## ACURISS from p0 = {p0:.3g} (cap {cap:g}) on {name} ({len(seeds)} seeds; median / worst)")
    for index, (label, kw) in enumerate(ACURISS_CONFIGS):
        if configs is not None and index not in configs:
            continue
        t0 = time.perf_counter()
        rows = [measure(ACURISSPlanner(energies, cube.shape[1:], sampling_ratio=cap,
                                       initial_ratio=p0, dictionary=dictionary, seed=s, **kw),
                        cube, ref, full) for s in seeds]
        print(summary_line(label, rows) + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        stops = sorted(set(str(r["stop"]).split(" ")[0] for r in rows))
        print(f"{'':34s} stops: {stops}; ratios {' '.join('%.3f' % r['ratio'] for r in rows)}; "
              f"spectra {' '.join('%.3f' % r['spectra'] for r in rows)}", flush=True)


def _acuriss_tables(stack, seeds, args, configs):
    """The ACURISS rows as ``--acuriss-p0``, ``--acuriss-cap`` and ``--acuriss-configs`` ask (by
    default: every configuration from p0 = 0.02, cap 0.10), one table per p0."""
    for p0 in (float(x) for x in args.acuriss_p0.split(",")):
        acuriss_rows(*stack, seeds, configs, p0=p0, cap=args.acuriss_cap)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stacks", default="phantom,71214078,71214098")
    p.add_argument("--ratios", default="0.02,0.04,0.06,0.08,0.10")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds are first-seed .. first-seed + seeds - 1 (a hold-out set: --first-seed 10)")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--ablation-ratio", type=float, default=0.05)
    p.add_argument("--ablation-only", action="store_true",
                   help="only the CURISS ablation at --ablation-ratio (no ACURISS rows, no sweep)")
    p.add_argument("--acuriss-only", action="store_true",
                   help="only the ACURISS rows (--acuriss-p0, --acuriss-cap, --acuriss-configs)")
    p.add_argument("--acuriss-p0", default="0.02",
                   help="comma-separated initial ratios of the ACURISS rows (default %(default)s; each "
                        "raised to just above a stack's minimum ratio when below it)")
    p.add_argument("--acuriss-cap", type=float, default=0.10,
                   help="sampling_ratio cap of the ACURISS rows (default %(default)s)")
    p.add_argument("--acuriss-configs", default=None,
                   help=f"comma-separated indices (0-based, 0-{len(ACURISS_CONFIGS) - 1}) of "
                        "ACURISS_CONFIGS to run (default all)")
    p.add_argument("--curiss-rows-only", action="store_true",
                   help="only CURISS at the ablation ratio with 1 and 2 ARP rows in the split")
    p.add_argument("--sweep-only", action="store_true",
                   help="only the strategy x ratio tables and plots (no ablation, no ACURISS rows)")
    args = p.parse_args(argv)
    configs = None
    if args.acuriss_configs is not None:
        valid = range(len(ACURISS_CONFIGS))
        items = [c.strip() for c in args.acuriss_configs.split(",") if c.strip()]
        bad = [c for c in items if not (c.isdigit() and int(c) in valid)]
        if bad or not items:
            p.error(f"unknown --acuriss-configs {bad or [args.acuriss_configs]}; valid indices are "
                    f"{valid.start}-{valid.stop - 1} (ACURISS_CONFIGS in benchmarks/quality.py)")
        configs = {int(c) for c in items}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    ratios = [float(r) for r in args.ratios.split(",")]
    strategies = args.strategies.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, energies, cube, dictionary, truth in stacks(args.stacks.split(",")):
        print(f"\n# {name}: {len(energies)} energies x {cube.shape[1]} x {cube.shape[2]}"
              + (" (errors against the noise-free truth)" if truth is not None else ""), flush=True)
        stack = (name, energies, cube, dictionary, truth)
        if args.acuriss_only:
            _acuriss_tables(stack, seeds, args, configs)
            continue
        if args.curiss_rows_only:
            ablation(name, energies, cube, dictionary, truth, args.ablation_ratio, seeds,
                     labels=("volume + balanced split (default)", "default + 2 ARP rows in the split"))
            continue
        if not args.sweep_only:
            ablation(name, energies, cube, dictionary, truth, args.ablation_ratio, seeds)
            if not args.ablation_only:
                _acuriss_tables(stack, seeds, args, configs)
        if args.ablation_only:
            continue
        curves = {}
        for ratio in ratios:
            t0 = time.perf_counter()
            skipped: dict[str, str] = {}
            trials = run_trials(energies, cube, ratio=ratio, seeds=seeds, dictionary=dictionary,
                                truth=truth, strategies=strategies, skipped=skipped)
            summ = summarise(trials)
            print(f"\n## ratio {ratio} ({time.perf_counter() - t0:.0f} s)")
            print(format_table(summ), flush=True)
            for strat, why in skipped.items():
                print(f"{strat}: not run ({why})")
            for strat, row in summ.items():
                curves.setdefault(strat, []).append((row["sampling_ratio"][0], *row["signal_error"]))
        _plot(name, curves)


def _plot(name, curves):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.add_subplot()
    for strat, pts in curves.items():
        pts = np.array(pts)
        if strat == "raster":  # ratio 1: a reference line, not a point far off to the right
            ax.axhline(pts[0, 1], color="0.4", lw=1, ls="--", label="full raster (ratio 1)")
            continue
        line, = ax.plot(pts[:, 0], pts[:, 1], "o-", label=strat)
        ax.plot(pts[:, 0], pts[:, 2], "x:", color=line.get_color())
    ax.set_xlabel("sampling ratio reached (median)")
    ax.set_ylabel("signal error (k = 3)")
    ax.set_yscale("log")
    ax.set_title(f"{name}: median (o) and worst (x) over seeds")
    ax.legend(fontsize=7)
    path = OUT / f"quality_{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
