"""The ``curiss`` command line."""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path


__all__ = ["main"]


def _int_at_least(minimum: int):
    """An argparse ``type=``: an integer ``>= minimum``, else a message naming the bound.

    argparse puts the option's name in front of the message (``argument --seed0: must be an
    integer >= 0; got -1``).
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}; got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _pre_edge(text: str) -> float | bool:
    """An argparse ``type=``: a pre-edge energy in eV (finite, > 0), or ``no`` (False)."""
    if text.strip().lower() in ("no", "none", "off", "false"):
        return False
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an energy in eV or 'no'; got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive, finite energy in eV or 'no'; got {text!r}")
    return value


_pre_edge.__name__ = "energy in eV or 'no'"


def _load_for_compare(args):
    """(name, energies, cube, dictionary, truth) for ``curiss compare``."""
    if args.stack == "phantom":
        if args.dictionary:
            raise ValueError(f"--dictionary applies to .npz/.hdr stacks; the phantom uses its own "
                             f"material spectra (got --dictionary {args.dictionary}; "
                             f"--no-dictionary draws its energies uniformly instead)")
        if args.subtract_pre_edge is not None:
            raise ValueError("--subtract-pre-edge applies to stacks read from a file; the phantom "
                             "has no pre-edge offset")
        from .datasets import make_phantom

        ph = make_phantom(n_energies=args.phantom_energies, shape=(args.phantom_size,) * 2,
                          n_materials=3, seed=args.phantom_seed, noise=args.phantom_noise)
        dictionary = None if args.no_dictionary else ph.spectra
        truth = getattr(ph, "truth", None)
        return "phantom", ph.energies, ph.cube, dictionary, truth
    from .io import load_dictionary, load_stack

    stack = load_stack(args.stack, subtract_pre_edge=args.subtract_pre_edge)
    dictionary = stack.dictionary
    if args.dictionary:
        dictionary = load_dictionary(args.dictionary, stack.energies)
    if args.no_dictionary:
        dictionary = None
    return stack.name, stack.energies, stack.cube, dictionary, None


def _compare(args) -> int:
    from .compare import _OTHER_STRATEGIES, STRATEGIES, format_table, run_trials, summarise

    if args.strategies is not None and not args.strategies.strip():
        raise ValueError(f"--strategies is empty; give a comma-separated list of "
                         f"{', '.join(STRATEGIES)} (or leave the option out for all)")
    strategies = args.strategies.split(",") if args.strategies else STRATEGIES
    unknown = [s for s in strategies if s not in STRATEGIES + _OTHER_STRATEGIES]
    if unknown:  # before the stack is read (minutes for a large one)
        raise ValueError(f"--strategies: unknown {unknown}; choose from "
                         f"{', '.join(STRATEGIES + _OTHER_STRATEGIES)}")
    name, energies, cube, dictionary, truth = _load_for_compare(args)
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
                        truth=truth, strategies=strategies, n_components=args.n_components,
                        n_clusters=args.n_clusters, progress=progress, skipped=skipped)
    print("cells: median / worst over seeds; errors relative (docs/methods.md, Quality measures; k = 3); "
          "time and dose as fractions of the full raster")
    if trials:
        print(format_table(summarise(trials)))
    for strategy, why in skipped.items():
        print(f"{strategy}: not run ({why})")
    return 0


_STORE_HINT = "give --store the directory the runs were written to"


def _store(args) -> tuple[str, str, str, bool]:
    """``(store, kind, target, explicit)`` of the catalog that show / export / recover read.

    ``store`` is ``--store``, else ``$CURISS_STORE``, else the per-user default
    (:func:`curiss.store.default_store`); ``kind`` and ``target`` are how
    :func:`curiss.store.open_catalog` reads it (``"dir"`` and an absolute path, ``"profile"``
    or ``"uri"``); ``explicit`` is False only for the per-user default.
    """
    from .store._catalog import _resolve, default_store

    explicit = args.store is not None or bool(os.environ.get("CURISS_STORE", "").strip())
    store = args.store if args.store is not None else default_store()
    try:
        kind, target = _resolve(store)
    except ValueError:
        if not store.strip():
            raise
        # a bare name that is neither a directory nor a Tiled profile
        raise ValueError(f"no catalog at {store!r}: neither a directory nor a Tiled profile name "
                         f"({_STORE_HINT}; `tiled profile list` shows the profiles)") from None
    return store, kind, target, explicit


def _no_catalog(target: str, explicit: bool) -> ValueError:
    """The error for a local directory that holds no catalog."""
    from .store._catalog import is_catalog_dir

    if is_catalog_dir(Path(target) / "catalog"):  # `curiss demo --data-dir D` writes D/catalog
        hint = f"did you mean --store {Path(target) / 'catalog'}?"
    elif explicit:
        hint = _STORE_HINT
    else:
        hint = f"the default store, where no run has been written yet; {_STORE_HINT}"
    return ValueError(f"no catalog at {target} ({hint})")


def _catalog(args):
    """``(store, catalog)`` for show and export: an existing catalog, never a new one.

    A local directory without an embedded catalog (``catalog.db``) is refused before
    :func:`curiss.store.open_catalog` could create one there (a mistyped ``--store``); Tiled
    profiles and URIs are opened as they are.
    """
    from .store import open_catalog
    from .store._catalog import is_catalog_dir

    store, kind, target, explicit = _store(args)
    if kind == "dir" and not is_catalog_dir(target):
        raise _no_catalog(target, explicit)
    return store, open_catalog(store)


def _run(catalog, uid: str, store: str):
    """``catalog[uid]``; a miss says which catalog was searched (a server's bare key did not)."""
    try:
        return catalog[uid]
    except KeyError as exc:
        raise ValueError(f"no run {uid!r} in the catalog at {store} ({_message(exc)})") from exc


def _show(args) -> int:
    from .store import load_run
    from .viz import figures_for_run

    store, catalog = _catalog(args)
    data = load_run(_run(catalog, args.uid, store))
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
    import numpy as np

    from .io import write_nexus
    from .store import load_run

    store, catalog = _catalog(args)
    run = _run(catalog, args.uid, store)
    data = load_run(run)
    completed = data.completed
    if completed is None:  # no analysis stream: analysis=False, a failed analysis, interrupted
        from .store import recompute

        acq = recompute(data)
        completed = acq.completed
        if completed is None:
            fault = next((f.get("message") for f in data.faults if f.get("kind") == "completion"),
                         None)  # the run's own reason, recorded when it ended
            stop = acq.history[-1].get("stop_reason") if acq.history else None
            if not len(data.order):
                why = "no row measured"
            else:  # an interrupted run has no stop reason: it ended before one
                why = stop or fault or (f"it ended after {len(data.order)} rows, before the "
                                        f"planner had what a completion needs")
            raise ValueError(f"run {data.uid} (exit status {data.exit_status}) has no completion "
                             f"to export: its measured rows cannot be completed ({why})")
        print(f"run {data.uid} has no analysis stream (exit status {data.exit_status}): exporting "
              f"the completion of its {len(data.order)} measured rows, recomputed from them")
    ana = data.analysis or {}
    start, stop = data.start, data.stop
    end = (stop or {}).get("time")
    if end is None:  # a run without a stop document (killed, not recovered): its last row
        end = float(np.max(data.times)) if data.times is not None and len(data.times) else start["time"]
    title = f"curiss {start.get('plan_name', 'run')} {data.uid}"
    if isinstance(start.get("sample"), str) and start["sample"]:
        title += f", sample {start['sample']}"
    out = args.out or f"curiss-{data.uid[:8]}.nxs"
    path = write_nexus(out, energies=data.energies, completed=completed, mask=data.mask,
                       labels=ana.get("labels"), cluster_spectra=ana.get("cluster_spectra"),
                       eigenspectra=ana.get("eigenspectra"), measured=data.od,
                       sample_y=_y_positions_um(run, start),
                       metadata={"uid": data.uid, "start": start, "title": title,
                                 "start_time": _iso(start["time"]), "end_time": _iso(end)})
    print(f"wrote {path}")
    return 0


#: a stage's units (its descriptor's ``units``) in µm
_UM_PER = {"um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "mm": 1e3,
           "nm": 1e-3, "m": 1e6}


def _y_positions_um(run, start):
    """The run's ``y_positions`` in µm, when the stage's descriptor gives units that say how;
    None otherwise (the export then gives pixel indices, and the start document the positions)."""
    y, motors = start.get("y_positions"), start.get("motors")
    if y is None or not isinstance(motors, list) or len(motors) < 2:
        return None
    try:
        md = run["primary"].metadata
        # the stream's descriptor (bluesky-tiled-plugins 2), or its list of them (databroker)
        keys = md["data_keys"] if "data_keys" in md else md["descriptors"][0]["data_keys"]
        units = keys[motors[1]].get("units")
    except Exception:  # no primary stream, no descriptor, another document layout
        return None
    scale = _UM_PER.get(str(units).strip().lower()) if units else None
    if scale is None:
        return None
    import numpy as np

    return np.asarray(y, dtype=float) * scale


def _iso(timestamp: float) -> str:
    """A document time (s since the epoch) as ISO 8601, UTC."""
    return datetime.datetime.fromtimestamp(float(timestamp), datetime.timezone.utc).isoformat()


def _recover(args) -> int:
    from .store import open_catalog, recover
    from .store._catalog import is_catalog_dir

    if args.journal is not None and not Path(args.journal).expanduser().is_dir():
        raise ValueError(f"--journal {args.journal}: no such folder (give the journal folder "
                         f"of the writer, DIR/journal for a directory catalog)")
    store, kind, target, explicit = _store(args)
    if kind == "dir" and not is_catalog_dir(target):
        journal = Path(args.journal).expanduser() if args.journal is not None else Path(target) / "journal"
        if journal.is_dir() and any(journal.glob("*.journal")):
            # runs to put back into a catalog that went away (or into a new one): create it
            print(f"no catalog at {target}: creating one for the journal's runs ({journal})")
        elif not explicit and not os.path.exists(target):
            print(f"no catalog at {target} yet (the default store has not been used): "
                  f"nothing to recover")
            return 0
        else:
            raise _no_catalog(target, explicit)
    catalog = open_catalog(store)
    uids = recover(catalog, args.journal)
    if not uids:
        print(f"nothing to recover for {store}")
    for uid in uids:
        print(f"recovered run {uid}; continue it with "
              f"RE(resume({uid!r}, detector, mono, stage, catalog=catalog))")
    return 0


_STORE_HELP = ("catalog directory the runs were written to (one holding catalog.db; a directory "
               "without a catalog is an error, nothing is created), Tiled profile name or "
               "http(s):// URI (default $CURISS_STORE, else $CURISS_DATA_DIR/catalog, else "
               "$XDG_DATA_HOME/curiss/catalog, else ~/.local/share/curiss/catalog: where "
               "`curiss demo` and the IPython profile write)")


def build_parser() -> argparse.ArgumentParser:
    from .compare import _OTHER_STRATEGIES, STRATEGIES  # (the demo's entry point imports more)

    p = argparse.ArgumentParser(prog="curiss", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="replay every strategy on a stack and print a quality table")
    c.add_argument("stack", help="'phantom', or a stack file: .npz (energies + cube, or the converted "
                                 "ALS transmitted/i0 files), ALS .hdr, or HDF5 (.h5/.nxs: "
                                 "data-exchange or NXstxm)")
    c.add_argument("--subtract-pre-edge", type=_pre_edge, default=None, metavar="EV",
                   help="subtract from each pixel its mean OD below EV eV, or 'no' (default: the "
                        "format's: 705 eV for the converted ALS .npz files, none otherwise, "
                        "e.g. for the raw ALS .hdr of the same stack)")
    c.add_argument("--ratio", type=float, default=0.06, help="sampling ratio (default 0.06)")
    d = c.add_mutually_exclusive_group()
    d.add_argument("--dictionary", help="reference spectra file (energy column + one column per "
                                        "spectrum) for an .npz/.hdr stack; the phantom uses its "
                                        "own material spectra")
    d.add_argument("--no-dictionary", action="store_true", help="draw energies uniformly")
    c.add_argument("--seeds", type=_int_at_least(1), default=5,
                   help="number of seeds, >= 1 (default 5)")
    c.add_argument("--seed0", type=_int_at_least(0), default=0, help="first seed, >= 0 (default 0)")
    c.add_argument("--strategies", help=f"comma-separated subset of {', '.join(STRATEGIES)} "
                                        f"(default: all of these), or also "
                                        f"{', '.join(_OTHER_STRATEGIES)}")
    c.add_argument("--n-clusters", type=_int_at_least(1), default=4,
                   help="k-means clusters of the analysis behind ARI and the spectra error "
                        "(default 4)")
    c.add_argument("--n-components", type=_int_at_least(1), default=3,
                   help="SVD components of that analysis (default 3)")
    c.add_argument("--phantom-energies", type=int, default=80,
                   help="energies of the phantom (stack 'phantom'; default 80)")
    c.add_argument("--phantom-size", type=int, default=48,
                   help="pixels per side of the phantom (default 48)")
    c.add_argument("--phantom-seed", type=_int_at_least(0), default=0,
                   help="seed of the phantom, >= 0 (default 0)")
    c.add_argument("--phantom-noise", type=float, default=0.01,
                   help="Gaussian OD noise of the phantom (default 0.01)")
    c.add_argument("-v", "--verbose", action="store_true")
    c.set_defaults(func=_compare)

    for name, func, helptext, out in (
            ("show", _show, "summarise a run and write its figures",
             "folder for the figures (default: figures/UID8 beside a directory catalog, e.g. "
             "the demo's own figure folder for the default store; ./figures/UID8 for a server)"),
            ("export", _export, "write a run's completed stack, mask, labels and spectra to a "
                                "NeXus (HDF5) file",
             "file to write (default ./curiss-UID8.nxs)")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("uid", help="run uid (or a unique prefix of at least 5 characters)")
        c.add_argument("--store", help=_STORE_HELP)
        c.add_argument("--out", help=out)
        c.set_defaults(func=func)

    c = sub.add_parser("recover", help="put runs of a killed process back into the catalog, from "
                                       "the local journal the writer keeps")
    c.add_argument("--store", help=_STORE_HELP + "; a directory without a catalog is also "
                                   "accepted when the journal holds runs (a catalog is created for "
                                   "them), and the default store, if never used, has nothing to "
                                   "recover (exit 0)")
    c.add_argument("--journal", help="journal folder (default: the writer's, DIR/journal for a "
                                     "directory catalog)")
    c.set_defaults(func=_recover)

    # commands contributed by other packages (``curiss demo`` comes from sim_devices)
    for ep in entry_points(group="curiss.commands"):
        ep.load()(sub)
    return p


def _message(exc: BaseException) -> str:
    """One line for a user's mistake: an ``OSError`` as ``FILE: reason``, others as they say."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]  # str(KeyError) would quote it
    return str(exc)


class _TiledStartupLine(logging.Filter):
    """Drops the "Tiled version X" line that an embedded Tiled server logs (INFO, to stderr,
    through its own handler) each time a command opens the catalog, in the middle of the
    command's own output."""

    def filter(self, record: logging.LogRecord) -> bool:
        # record.msg, not getMessage(): a filter must not format (or fail on) others' records
        return not (isinstance(record.msg, str) and record.msg.startswith("Tiled version"))


_TILED_STARTUP_LINE = _TiledStartupLine()


def main(argv=None) -> int:
    """Run the ``curiss`` command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for a user's mistake (bad option, missing or unreadable file, no such
        run or catalog), reported on one line ``curiss COMMAND: error: ...``. argparse exits
        with 2 itself for options it rejects.
    """
    args = build_parser().parse_args(argv)
    # (a filter, not a level: tiled.server.app sets its logger's level when it is imported)
    logging.getLogger("tiled.server.app").addFilter(_TILED_STARTUP_LINE)
    try:
        return args.func(args)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        print(f"curiss {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
