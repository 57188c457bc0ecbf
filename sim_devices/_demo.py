"""``curiss demo``: ACURISS on the simulated STXM into the embedded catalog.

The command lives here, not in ``curiss.cli``, because nothing in ``curiss`` imports the
simulated devices: ``sim_devices`` registers it through the ``curiss.commands`` entry point.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["register", "default_data_dir", "run_demo"]

#: Largest fraction of the stack the demo measures (``sampling_ratio`` of its ACURISS scan).
#: It was 0.3, which left a run that row coverage holds no room for the row scan it asks for
#: (`curiss demo --energies 24 --size 16`, demo seeds 0-199: 32 runs ended at 0.3 before the
#: stop rule passed, none at 0.4; benchmarks/row_coverage.py demo).
DEMO_RATIO = 0.4
#: Largest first pass the demo starts with (its ``initial_ratio``, 1.2 x the minimum ratio): it
#: leaves at least 0.1 of the stack below DEMO_RATIO for refinements.
_FIRST_PASS_MAX = 0.3
#: make_phantom's smallest number of rows and of pixels per row.
_PHANTOM_MIN_SIZE = 4


def default_data_dir() -> Path:
    """Per-user data directory: ``$CURISS_DATA_DIR``, else ``$XDG_DATA_HOME/curiss``, else
    ``~/.local/share/curiss``.

    Returns
    -------
    pathlib.Path
        :func:`curiss.store.default_data_dir`: ``curiss show`` and the IPython profile
        read ``DIR/catalog`` of the same folder when no store is given.
    """
    from curiss.store import default_data_dir as _default

    return _default()


def register(sub) -> None:
    """Add the ``demo`` sub-command to the ``curiss`` argument parser."""
    from curiss.cli import _int_at_least

    p = sub.add_parser("demo", help="run ACURISS on the simulated STXM into the embedded catalog")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"catalog and figures folder; the catalog is DATA_DIR/catalog (default: "
                        f"the catalog is $CURISS_STORE if set, else {default_data_dir()}/catalog "
                        f"($CURISS_DATA_DIR, else $XDG_DATA_HOME/curiss, else ~/.local/share/curiss), "
                        f"where `curiss show` looks without --store; figures go to "
                        f"{default_data_dir()}/figures)")
    p.add_argument("--energies", type=int, default=40,
                   help="energies of the phantom, >= 5 (default 40)")
    p.add_argument("--size", type=int, default=48,
                   help=f"pixels per side of the phantom (default 48); the smallest that works "
                        f"depends on --energies: {_smallest_size(40)} for 40 energies, "
                        f"{_smallest_size(6)} for 6, {_smallest_size(5)} for 5")
    p.add_argument("--seed", type=_int_at_least(0), default=0,
                   help="seed of the phantom, detector and planner, >= 0 (default 0)")
    p.add_argument("--no-figures", action="store_true", help="do not write figures")
    p.set_defaults(func=run_demo)


class _Progress:
    """One line per planner decision (a text progress display that copes with array data)."""

    def __init__(self, stream=None):
        self.stream = sys.stdout if stream is None else stream  # the stdout of now, not of import
        self.rows = 0
        self._planner_desc = None

    def __call__(self, name, doc):
        if name == "start":
            self._legend(doc.get("planner_kwargs") or {})
        elif name == "descriptor" and doc["name"] == "planner":
            self._planner_desc = doc["uid"]
        elif name == "event" and doc["descriptor"] == self._planner_desc:
            d = doc["data"]
            if d["kind"] == "stop":
                print(f"  stop after {self.rows} rows: {d['stop_reason']}", file=self.stream, flush=True)
            else:
                n = int(np.asarray(d["request"]).sum())
                # the numbers the stop rule looks at: the default (noise-aware) rule's prediction
                # error and row coverage gap, else (stop_rule="variation") the completion variation
                pred = d.get("prediction_error", np.nan)
                var = d["completion_variation"]
                if np.isfinite(pred):
                    extra = f", prediction error {pred:.3g}"
                elif np.isfinite(var):
                    extra = f", completion changed {var:.3g}"
                else:
                    extra = ""
                gap = d.get("coverage_gap", np.nan)  # row coverage: the rows miss nothing if <= 10
                if np.isfinite(gap):
                    extra += f", row coverage gap {gap:.3g}"
                print(f"  step {d['iteration']}: {d['kind']:8s} {n:4d} rows -> ratio "
                      f"{d['sampling_ratio']:.3f}{extra}", file=self.stream, flush=True)
        elif name == "event" and "detector_line" in doc["data"]:
            self.rows += 1

    def _legend(self, kw):
        """Two lines on what the step lines show, with the run's own limits (start document)."""
        if kw.get("stop_rule") != "prediction" or kw.get("tol_prediction") is None:
            return
        from curiss.planners._strategies import COVERAGE_GAP_MAX

        what = f"prediction error <= {kw['tol_prediction']:g} (the newest rows were predicted well)"
        if kw.get("row_coverage"):
            what += f", row coverage gap <= {COVERAGE_GAP_MAX:g} (the rows miss nothing the images show)"
        print(f"  each step: what it measured, the ratio so far, and what the stop rule waits for:\n"
              f"  {what}", file=self.stream, flush=True)


def _demo_setup(n_energies: int, size: int, seed: int):
    """The demo's sample, simulated STXM and ACURISS keywords for ``--energies``, ``--size`` and
    ``--seed``: ``(PhantomSample, STXM, dict)`` (shared with
    benchmarks/row_coverage.py, which replays the demo at other caps)."""
    from . import PhantomSample, make_stxm

    sample = PhantomSample(n_energies, (size, size), 3, seed=seed)
    stxm = make_stxm(sample, seed=seed + 1)
    kw = dict(dictionary=sample.spectra, seed=seed, initial_ratio=_initial_ratio(n_energies, size),
              sampling_ratio=DEMO_RATIO)
    return sample, stxm, kw


def _check_folder(data_dir: Path) -> None:
    """Refuse a ``--data-dir`` that is, or lies under, a file (before anything is created)."""
    for folder in (data_dir, *data_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == data_dir else f"is under {folder}, a file"
                raise ValueError(f"--data-dir {data_dir} {what}, not a folder (give a folder for "
                                 f"the catalog and figures)")
            return


def _initial_ratio(n_energies: int, size: int) -> float:
    """The demo's ACURISS ``initial_ratio``: 1.2 x the minimum ratio (one image plus one row at
    every other energy) of an ``n_energies`` x ``size`` x ``size`` stack, at least 0.05."""
    from curiss.linalg import minimum_ratio

    return max(0.05, 1.2 * minimum_ratio(n_energies, (size, size)))


def _smallest_size(n_energies: int) -> int | None:
    """Smallest ``--size`` the demo runs with for ``n_energies`` energies (its first pass fits in
    ``_FIRST_PASS_MAX``); None when no size is enough (n_E <= 4: one image alone is
    1/n_E >= 0.25 of the stack, and 1.2 x 0.25 = 0.3)."""
    if n_energies < 2:
        return None
    # the minimum ratio 1/n_E + (1 - 1/n_E)/size decreases with size: the first size that fits
    # is the answer; for n_E >= 5 it is at most 16
    for size in range(_PHANTOM_MIN_SIZE, 1025):
        if _initial_ratio(n_energies, size) <= _FIRST_PASS_MAX:
            return size
    return None


def _check_phantom_size(n_energies: int, size: int) -> None:
    """Refuse ``--energies``/``--size`` whose first ACURISS pass would not fit in
    ``_FIRST_PASS_MAX`` of the stack (it used to fail after the catalog was made, naming
    ``initial_ratio``)."""
    why = (f"the demo's first pass (1.2 x one image plus one row at every other energy) must fit "
           f"in {_FIRST_PASS_MAX} of the stack, to leave room for refinements below its cap of "
           f"{DEMO_RATIO}, and it")
    smallest = _smallest_size(n_energies)
    if smallest is None:
        fewest = next(n for n in range(2, 1025) if _smallest_size(n) is not None)
        raise ValueError(f"--energies {n_energies} is too small: {why} needs more than that at "
                         f"any --size; use --energies {fewest} or more")
    if size < smallest:
        need = (f"needs {_initial_ratio(n_energies, size):.3g}" if size >= 1
                else "needs more than that")
        raise ValueError(f"--size {size} is too small for --energies {n_energies}: {why} {need}; "
                         f"use --size {smallest} or more with {n_energies} energies")


def run_demo(args) -> int:
    """Run ACURISS on a simulated STXM phantom into the catalog, print a summary and figures.

    Parameters
    ----------
    args : argparse.Namespace
        The ``curiss demo`` options: ``energies`` (int, number of energies n_E of the phantom,
        >= 5), ``size`` (int, pixels per side: an n_E x size x size stack, at least the
        smallest size whose first ACURISS pass fits in 0.3 of the stack, e.g. 5 for 40
        energies, 10 for 6; the demo measures at most 0.4 of the stack), ``seed`` (int >= 0:
        phantom, detector noise and planner),
        ``data_dir`` (pathlib.Path or None: the catalog is ``DATA_DIR/catalog``, figures go to
        ``DATA_DIR/figures/UID8``; None: the default store and data folder) and
        ``no_figures`` (bool).

    Returns
    -------
    int
        The exit code, 0. Prints the run uid, the sampling ratio reached, the stop reason, the
        modelled time (s) and dose relative to a full raster, and the relative error of the
        completed stack against the truth.

    Raises
    ------
    ValueError
        ``--energies``/``--size`` too small (naming the smallest that works) or a
        ``--data-dir`` that is a file: raised before the catalog is opened or created (the CLI
        prints it on one line, exit status 2).
    """
    from bluesky import RunEngine

    from curiss.cost import acquisition_cost, raster_cost
    from curiss.plans import acuriss_scan
    from curiss.store import load_run, open_catalog, writer_for

    t0 = time.perf_counter()
    from curiss.store import default_store

    _check_phantom_size(args.energies, args.size)
    data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
    _check_folder(data_dir)
    # --data-dir names the catalog; without it, the catalog `curiss show` reads without --store
    # ($CURISS_STORE, else DATA_DIR/catalog)
    store = data_dir / "catalog" if args.data_dir is not None else default_store()
    sample, stxm, acuriss_kw = _demo_setup(args.energies, args.size, args.seed)
    print(f"curiss demo: ACURISS on a simulated STXM, phantom of 3 materials, {args.energies} energies "
          f"x {args.size} x {args.size} pixels")
    print(f"catalog: {store} (opening...)", flush=True)
    catalog = open_catalog(store)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    RE.subscribe(_Progress())
    (uid,) = RE(acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                             y_positions=stxm.y_positions, **acuriss_kw,
                             md={"sample": "curiss demo phantom", "demo": True}))
    data = load_run(catalog[uid])
    n_e, (n_y, n_x) = sample.energies.size, sample.shape
    cm = data.history[-1]
    od = np.clip(sample.cube, 0, None)  # absorbed dose follows the true OD
    cost = acquisition_cost(data.order, n_x, od=od)
    full = raster_cost(n_e, (n_y, n_x), od=od)
    err = np.linalg.norm(data.completed - sample.cube) / np.linalg.norm(sample.cube)
    print()
    print(f"run uid            {uid}")
    print(f"sampling ratio     {data.sampling_ratio:.3f} of the full stack "
          f"({data.order.shape[0]} of {n_e * n_y} spatial rows)")
    print(f"stopped because    {cm['stop_reason']}")
    print(f"time               {cost.time:.1f} s vs {full.time:.1f} s for a full raster "
          f"({cost.time / full.time:.1%}; cost model: {cost.n_energy_changes} energy changes)")
    print(f"dose               total {cost.dose_total / full.dose_total:.1%}, peak per pixel "
          f"{cost.dose_peak / full.dose_peak:.1%} of a full raster")
    print(f"error vs truth     {err:.2%} (relative Frobenius norm of the completed stack)")
    print("load it back:")
    print("    from curiss.store import open_catalog, load_run")
    print(f"    data = load_run(open_catalog({str(store)!r})[{uid!r}])")
    if not args.no_figures:
        from curiss.viz import figures_for_run

        outdir = data_dir / "figures" / uid[:8]
        paths = figures_for_run(data, outdir, truth=sample.cube, references=sample.spectra,
                                reference_names=[f"material {i}" for i in range(sample.spectra.shape[1])])
        print(f"figures            {len(paths)} PNG files in {outdir}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0
