"""The ``curiss`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points


__all__ = ["main"]


def _load_for_compare(args):
    """(name, energies, cube, dictionary, truth) for ``curiss compare``."""
    if args.stack == "phantom":
        from .datasets import make_phantom

        ph = make_phantom(n_energies=args.phantom_energies, shape=(args.phantom_size,) * 2,
                          n_materials=3, seed=args.phantom_seed, noise=args.phantom_noise)
        dictionary = None if args.no_dictionary else ph.spectra
        truth = getattr(ph, "truth", None)
        return "phantom", ph.energies, ph.cube, dictionary, truth
    from .io import load_dictionary, load_stack

    stack = load_stack(args.stack)
    dictionary = stack.dictionary
    if args.dictionary:
        dictionary = load_dictionary(args.dictionary, stack.energies)
    if args.no_dictionary:
        dictionary = None
    return stack.name, stack.energies, stack.cube, dictionary, None


def _compare(args) -> int:
    from .compare import STRATEGIES, format_table, run_trials, summarise

    name, energies, cube, dictionary, truth = _load_for_compare(args)
    strategies = args.strategies.split(",") if args.strategies else STRATEGIES
    seeds = range(args.seed0, args.seed0 + args.seeds)
    print(f"stack {name}: {len(energies)} energies x {cube.shape[1]} x {cube.shape[2]} pixels; "
          f"ratio {args.ratio}; seeds {seeds.start}..{seeds.stop - 1}; dictionary "
          f"{'none (uniform energies)' if dictionary is None else f'{dictionary.shape[1]} spectra'}"
          + ("; errors against the noise-free truth" if truth is not None else ""), flush=True)

    def progress(t):
        if args.verbose:
            print(f"  {t.strategy:>16s} seed {t.seed}: ratio {t.sampling_ratio:.4f} "
                  f"signal err {t.signal_error:.3f} ARI {t.ari:.3f} ({t.seconds:.1f} s)", flush=True)

    skipped: dict[str, str] = {}
    trials = run_trials(energies, cube, ratio=args.ratio, seeds=seeds, dictionary=dictionary,
                        truth=truth, strategies=strategies, progress=progress, skipped=skipped)
    print("cells: median / worst over seeds; errors relative (design §8, k = 3); "
          "time and dose as fractions of the full raster")
    if trials:
        print(format_table(summarise(trials)))
    for strategy, why in skipped.items():
        print(f"{strategy}: not run ({why})")
    return 0


def _catalog(args):
    from .store import open_catalog

    store = args.store
    if store is None:
        base = os.environ.get("CURISS_STORE")
        if base:
            store = base
        else:
            data = os.environ.get("CURISS_DATA_DIR") or os.path.join(
                os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "curiss")
            store = os.path.join(data, "catalog")
    return store, open_catalog(store)


def _show(args) -> int:
    from .store import load_run
    from .viz import figures_for_run

    store, catalog = _catalog(args)
    data = load_run(catalog[args.uid])
    start = data.start
    print(f"run {data.uid}: {start.get('plan_name')} ({start.get('method')}), "
          f"{len(data.energies)} energies x {data.shape[0]} x {data.shape[1]}; "
          f"exit status {data.exit_status}")
    print(f"sampling ratio {data.sampling_ratio:.4f}; {len(data.history)} planner decisions")
    if data.history:
        last = data.history[-1]
        print(f"last decision: {last.get('kind')} {last.get('stop_reason') or ''}".rstrip())
    outdir = args.out or os.path.join(os.path.dirname(os.path.abspath(store)) if os.path.isdir(store)
                                      else ".", "figures", data.uid[:8])
    paths = figures_for_run(data, outdir)
    for p in paths:
        print(f"  {p}")
    return 0


def _export(args) -> int:
    from .io import write_nexus
    from .store import load_run

    _, catalog = _catalog(args)
    data = load_run(catalog[args.uid])
    if data.completed is None:
        raise ValueError(f"run {data.uid} has no analysis stream (interrupted?); nothing completed to export")
    ana = data.analysis or {}
    out = args.out or f"curiss-{data.uid[:8]}.nxs"
    path = write_nexus(out, energies=data.energies, completed=data.completed, mask=data.mask,
                       labels=ana.get("labels"), cluster_spectra=ana.get("cluster_spectra"),
                       eigenspectra=ana.get("eigenspectra"), measured=data.od,
                       metadata={"uid": data.uid, "start": data.start})
    print(f"wrote {path}")
    return 0


def _recover(args) -> int:
    from .store import recover

    store, catalog = _catalog(args)
    uids = recover(catalog, args.journal)
    if not uids:
        print(f"nothing to recover for {store}")
    for uid in uids:
        print(f"recovered run {uid}; continue it with "
              f"RE(resume({uid!r}, detector, mono, stage, catalog=catalog))")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="curiss", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="replay every strategy on a stack and print a quality table")
    c.add_argument("stack", help="'phantom', or an .npz stack (energies + cube, or the ALS transmitted/i0 files)")
    c.add_argument("--ratio", type=float, default=0.06, help="sampling ratio (default 0.06)")
    c.add_argument("--dictionary", help="reference spectra file (energy column + one column per spectrum)")
    c.add_argument("--no-dictionary", action="store_true", help="draw energies uniformly")
    c.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    c.add_argument("--seed0", type=int, default=0, help="first seed (default 0)")
    c.add_argument("--strategies", help="comma-separated subset of the strategies")
    c.add_argument("--phantom-energies", type=int, default=80)
    c.add_argument("--phantom-size", type=int, default=48)
    c.add_argument("--phantom-seed", type=int, default=0)
    c.add_argument("--phantom-noise", type=float, default=0.01, help="Gaussian OD noise of the phantom")
    c.add_argument("-v", "--verbose", action="store_true")
    c.set_defaults(func=_compare)

    for name, func, helptext in (("show", _show, "summarise a run and write its figures"),
                                 ("export", _export, "write a run's completed stack, mask, labels "
                                                     "and spectra to a NeXus (HDF5) file")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("uid", help="run uid (or a unique prefix of at least 5 characters)")
        c.add_argument("--store", help="catalog directory or Tiled profile (default $CURISS_STORE, "
                                       "else the per-user data directory's catalog)")
        c.add_argument("--out", help="output folder (show) or file (export)")
        c.set_defaults(func=func)

    c = sub.add_parser("recover", help="put runs of a killed process back into the catalog, from "
                                       "the local journal the writer keeps")
    c.add_argument("--store", help="catalog directory or Tiled profile (default $CURISS_STORE, "
                                   "else the per-user data directory's catalog)")
    c.add_argument("--journal", help="journal folder (default: the writer's, DIR/journal for a "
                                     "directory catalog)")
    c.set_defaults(func=_recover)

    # commands contributed by other packages (``curiss demo`` comes from sim_devices)
    for ep in entry_points(group="curiss.commands"):
        ep.load()(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"curiss {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
