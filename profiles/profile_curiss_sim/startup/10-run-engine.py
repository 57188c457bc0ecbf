# curiss simulated-STXM profile, step 10: the RunEngine, writing every run into `catalog`,
# with a short text progress display.
#
# bluesky-queueserver uses this `RE` (the startup code must define it). Needs `catalog` (00).
import sys as _sys
import time as _time

from bluesky import RunEngine

#: Events buffered per stream before the writer writes them (curiss.store.writer_for).
WRITER_BATCH_SIZE = 10


def _interactive_ipython() -> bool:
    """True in an IPython session, False in bluesky-queueserver's worker (which defines a
    ``get_ipython()`` of its own, returning a stand-in) or a plain exec."""
    try:
        from bluesky_queueserver import is_re_worker_active
    except ImportError:  # the queueserver is an optional dependency (the "queueserver" extra)
        is_re_worker_active = bool
    if is_re_worker_active():
        return False
    try:
        return get_ipython() is not None  # noqa: F821 (IPython only)
    except NameError:
        return False


class CurissProgress:
    """A one-line text progress display for curiss runs (bluesky callback).

    Prints, per run, the plan and the raster at the start; every ``every`` seconds (and at
    the end) the measured spatial rows and the sampling ratio so far (measured rows /
    (n_E · n_y)) against the plan's target; each planner decision (iteration, kind, rank);
    the exit status and duration at the stop. Arrays are never printed (unlike
    ``BestEffortCallback``). Other (non-curiss) runs get the start and stop lines only.

    Parameters
    ----------
    every : float, default 1.0
        Minimum seconds between two progress lines.
    file : file-like, default sys.stdout
        Where to print.
    """

    def __init__(self, every: float = 1.0, file=None) -> None:
        self.every = float(every)
        self.file = file
        self._reset()

    def _reset(self) -> None:
        self._start = None
        self._streams = {}
        self._rows = 0
        self._t0 = 0.0
        self._last = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.file or _sys.stdout, flush=True)

    def __call__(self, name, doc):
        getattr(self, name, lambda doc: None)(doc)

    def start(self, doc):
        self._reset()
        self._start = doc
        self._t0 = self._last = _time.monotonic()
        shape = doc.get("shape")
        energies = doc.get("energies")
        if shape is not None and energies is not None:
            ratio = doc.get("sampling_ratio")
            target = "" if ratio is None else f", target sampling ratio {float(ratio):.3g}"
            self._print(f"[{doc.get('plan_name', '?')}] {doc['uid'][:8]}: {len(energies)} energies "
                        f"x {shape[0]} rows x {shape[1]} pixels{target}")
        else:
            self._print(f"[{doc.get('plan_name', '?')}] {doc['uid'][:8]} started")

    def descriptor(self, doc):
        self._streams[doc["uid"]] = doc.get("name")

    def _ratio(self) -> str:
        doc = self._start or {}
        if doc.get("shape") is None or doc.get("energies") is None:
            return f"{self._rows} events"
        n = len(doc["energies"]) * int(doc["shape"][0])
        return f"{self._rows} rows, ratio {self._rows / max(n, 1):.3f}"

    def event(self, doc):
        stream = self._streams.get(doc["descriptor"])
        if stream == "primary":
            self._rows += 1
            now = _time.monotonic()
            if now - self._last >= self.every:
                self._last = now
                self._print(f"  {self._ratio()}  ({now - self._t0:.1f} s)")
        elif stream == "planner":
            data = doc.get("data", {})
            rank = data.get("rank")
            rank = f", rank {rank}" if isinstance(rank, (int, float)) and rank >= 0 else ""
            ratio = data.get("sampling_ratio")
            ratio = f", ratio {float(ratio):.3f}" if ratio is not None else ""
            stop = f", stop: {data['stop_reason']}" if data.get("stop_reason") else ""
            self._print(f"  decision {data.get('iteration')}: {data.get('kind')}{rank}{ratio}{stop}")
        elif stream == "analysis":
            self._print("  analysis recorded")

    def stop(self, doc):
        if self._start is None:
            return
        took = _time.monotonic() - self._t0
        self._print(f"[{self._start.get('plan_name', '?')}] {self._start['uid'][:8]}: "
                    f"{doc.get('exit_status')} after {took:.1f} s, {self._ratio()}"
                    + (f" ({doc['reason']})" if doc.get("reason") else ""))
        self._reset()


RE = RunEngine({})
RE.md.setdefault("beamline_id", "curiss-sim")
RE.subscribe(writer_for(catalog, batch_size=WRITER_BATCH_SIZE))  # noqa: F821 (00-catalog.py)
progress = CurissProgress()
RE.subscribe(progress)

if _interactive_ipython() and _sys.stdout.isatty():  # progress bars for slow (real) moves
    from bluesky.utils import ProgressBarManager

    RE.waiting_hook = ProgressBarManager()
