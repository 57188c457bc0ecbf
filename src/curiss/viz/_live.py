"""A bluesky callback that shows the sampling pattern and the latest completion during a run."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from bluesky.callbacks.core import CallbackBase
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._figures import _check_dpi, _energy_formatter

__all__ = ["LiveCompletionPlot"]

log = logging.getLogger("curiss.viz")

_COMPLETION_MODES = ("cached", "compute", "never")
_DOC_NAMES = frozenset({"start", "descriptor", "event", "event_page", "stop", "resource", "datum",
                        "datum_page", "stream_resource", "stream_datum"})


def _latest_completion(planner: Any) -> tuple[np.ndarray | None, bool]:
    """The planner's most recent completion without computing one, and whether it is current
    (computed after the latest ingested row; unknown counts as current)."""
    if hasattr(planner, "latest_completion"):  # public API, if the planner offers one
        cube = planner.latest_completion
    else:
        cube = getattr(planner, "_completion", None)
    if cube is None:
        return None, False
    key = getattr(planner, "_completion_key", None)
    order = getattr(planner, "_order", None)
    current = key is None or order is None or key == len(order)
    return cube, current


class LiveCompletionPlot(CallbackBase):
    """Live view of a curiss run: sampling mask and the latest completion, at a bounded rate.

    Subscribe it to a RunEngine (``RE.subscribe(LiveCompletionPlot(planner))``) or pass it to
    ``RE(plan, cb)``. It follows the latest run whose start document has ``energies`` and
    ``shape`` (any curiss plan: a new one replaces the previous, its figure rebuilt) and ignores
    documents of other runs and of other streams.

    Per ``primary`` event it only copies the event's row (n_x values) into its own buffer and
    marks the row measured (a few microseconds); at most once per ``min_interval`` seconds (the
    first time ``min_interval`` after the start document), and never more than ``max_busy`` of
    the time, it redraws from its own copies. A final frame is
    drawn when the ``analysis`` event (the completed cube) or the stop document arrives. Drawing
    errors are logged, never raised into the RunEngine.

    Parameters
    ----------
    planner : curiss planner, optional
        The planner driving the run; its latest completion is drawn at the energy of the latest
        measured row. Without it (or for a run whose energies and shape are not the planner's)
        the measured rows at that energy are drawn (unmeasured blank) until the ``analysis``
        event brings the completed cube.
    min_interval : float
        Minimum time between the end of a redraw and the next one, s (> 0).
    save_to : path, optional
        Write each drawn frame to this PNG file (atomically: written aside, then renamed).
    figure : matplotlib.figure.Figure, optional
        Figure to draw into, e.g. ``plt.figure()`` for a window in IPython with a GUI backend
        (then ``canvas.draw_idle()`` is called on each redraw). Default: a new headless Figure.
    completion : {"cached", "compute", "never"}
        ``"cached"`` (default) draws the planner's most recent completion without asking for a
        new one (computing a completion can take seconds; the planners that check convergence,
        like ACURISS, compute one per decision anyway); ``"compute"`` calls
        ``planner.completed()`` on each redraw (its cost is paid by the acquisition; while
        the planner cannot complete yet, e.g. before CURISS has every energy's rows, the
        measured rows are drawn); ``"never"`` draws measured rows only.
    max_busy : float
        Largest fraction of the time spent drawing, in (0, 1]: after a redraw that took ``t`` s
        the next one waits at least ``t (1 − max_busy) / max_busy`` (e.g. 9 t for 0.1), so a
        slow frame (a large figure saved to ``save_to``) lowers the frame rate instead of
        slowing the acquisition.
    dpi : float
        Resolution of the ``save_to`` file, dots per inch (> 0).

    Attributes
    ----------
    n_redraws : int
        Frames drawn so far.
    n_events : int
        ``primary`` events of the followed run received so far (0 at each followed start).
    figure : matplotlib.figure.Figure or None
        The figure (created at the first redraw).
    """

    def __init__(self, planner: Any = None, *, min_interval: float = 2.0,
                 save_to: str | os.PathLike | None = None, figure: Figure | None = None,
                 completion: str = "cached", max_busy: float = 0.1, dpi: float = 80):
        super().__init__()
        try:
            interval = float(min_interval)
        except (TypeError, ValueError):
            raise TypeError(f"min_interval must be a number of seconds; "
                            f"got {min_interval!r}") from None
        if not np.isfinite(interval) or interval <= 0:
            raise ValueError(f"min_interval must be a positive number of seconds; "
                             f"got {min_interval!r}")
        try:
            busy = float(max_busy)
        except (TypeError, ValueError):
            raise TypeError(f"max_busy must be a number in (0, 1]; got {max_busy!r}") from None
        if not 0 < busy <= 1:
            raise ValueError(f"max_busy must be in (0, 1] (fraction of time spent drawing); "
                             f"got {max_busy!r}")
        if completion not in _COMPLETION_MODES:
            raise ValueError(f"completion must be one of {_COMPLETION_MODES}; got {completion!r}")
        if figure is not None and not isinstance(figure, Figure):
            raise TypeError(f"figure must be a matplotlib.figure.Figure; "
                            f"got {type(figure).__name__}")
        if planner is not None and not (hasattr(planner, "completed")
                                        and hasattr(planner, "energies")):
            raise TypeError(f"planner must be a curiss planner (with energies and completed()); "
                            f"got {type(planner).__name__}")
        self.planner = planner
        self.min_interval = interval
        self.max_busy = busy
        self.save_to = None if save_to is None else Path(save_to)
        self.completion = completion
        self.dpi = _check_dpi(dpi)
        self.figure = figure
        self._artists: dict[str, Any] | None = None
        self.n_redraws = 0
        self.n_events = 0
        self._reset_run(None)

    # ------------------------------------------------------------------ run state
    def _reset_run(self, start: dict | None) -> None:
        self._uid = None if start is None else start.get("uid")
        self._descriptors: dict[str, str] = {}
        self._dirty = False
        self._next_draw = time.perf_counter() + self.min_interval
        self._latest: tuple[int, int] | None = None
        self._step = -1           # current decision (planner stream), -1 before the first one
        self._have_decisions = False
        self._n_rows = 0
        self._final_image: np.ndarray | None = None
        self._final_energy: int | None = None
        self._decision_info: dict[str, Any] = {}
        self._stopped = False
        if start is None:
            self._use_planner = False
            self._energies = np.zeros(0)
            self._shape = (0, 0)
            self._steps = np.zeros((0, 0))
            self._counts: dict[int, np.ndarray] = {}
            self._i0 = np.zeros((0, 0))
            return
        self._energies = np.asarray(start["energies"], dtype=float)
        n_y, n_x = (int(s) for s in start["shape"])
        self._shape = (n_y, n_x)
        self._steps = np.full((self._energies.size, n_y), np.nan)
        self._counts = {}
        self._i0 = np.full((self._energies.size, n_y), np.nan)
        self._line_key = start.get("line_key") or "detector_line"
        self._i0_key = start.get("i0_key") or "detector_i0"
        self._method = start.get("method", "")
        planner = self.planner
        self._use_planner = (planner is not None
                             and np.array_equal(np.asarray(planner.energies, float), self._energies)
                             and tuple(getattr(planner, "shape", self._shape)) == self._shape)

    @property
    def steps(self) -> np.ndarray:
        """Step at which each row of the followed run was first measured, (n_E, n_y) float.

        The step is the planner decision (``iteration`` of the latest ``planner`` event) or, in a
        run without a planner stream, the row's position in the acquisition; NaN where not
        measured (the same convention as :func:`curiss.viz.sampling_steps`). A copy.
        """
        return self._steps.copy()

    # ------------------------------------------------------------------ documents
    def __call__(self, name: str, doc: dict, validate: bool = False):
        try:
            if name == "event":  # the hot path: skip the generic dispatch
                self.event(doc)
                return name, doc
            if name not in _DOC_NAMES:
                return name, doc
            return super().__call__(name, doc, validate)
        except Exception:  # a viewer must never stop an acquisition
            log.exception("LiveCompletionPlot: ignoring a %r document it could not handle", name)
            return name, doc

    def start(self, doc):
        if "energies" in doc and "shape" in doc:
            own = doc.get("curiss")  # the plan's own keys, over per-call metadata of that name
            self._reset_run({**doc, **own} if isinstance(own, dict) else doc)
            self.n_events = 0
            self._artists = None  # rebuilt for this run's energies, raster and planner
        return doc

    def descriptor(self, doc):
        if self._uid is not None and doc.get("run_start") == self._uid:
            self._descriptors[doc["uid"]] = doc.get("name", "primary")
        return doc

    def event(self, doc):
        stream = self._descriptors.get(doc.get("descriptor"))
        if stream is None or self._stopped:
            return doc
        data = doc["data"]
        if stream == "primary":
            self._primary(data)
            if self._dirty and time.perf_counter() >= self._next_draw:
                self._redraw()
        elif stream == "planner":
            it = data.get("iteration")
            if it is not None:
                self._step = int(it)
                self._have_decisions = True
            self._decision_info = {k: data.get(k) for k in ("kind", "rank", "sampling_ratio")}
        elif stream == "analysis":
            self._analysis(data)
        return doc

    def event_page(self, doc):
        stream = self._descriptors.get(doc.get("descriptor"))
        if stream is None:
            return doc
        data = doc["data"]
        keys = list(data)
        for i in range(len(doc.get("seq_num", ()))):
            self.event({"descriptor": doc["descriptor"], "data": {k: data[k][i] for k in keys}})
        return doc

    def stop(self, doc):
        if self._uid is not None and doc.get("run_start") == self._uid:
            if self._dirty:
                self._redraw()
            self._stopped = True
        return doc

    # ------------------------------------------------------------------ cheap per-event work
    def _primary(self, data: dict) -> None:
        try:
            e = int(data["energy_index"])
            y = int(data["row_index"])
        except (KeyError, TypeError, ValueError):
            return
        if not (0 <= e < self._steps.shape[0] and 0 <= y < self._steps.shape[1]):
            return
        line = data.get(self._line_key)
        i0 = data.get(self._i0_key)
        if line is not None and i0 is not None:
            # raw counts only: the optical density is computed for the drawn image at redraw
            img = self._counts.get(e)
            if img is None:
                img = self._counts[e] = np.full(self._shape, np.nan, dtype=np.float32)
            try:
                img[y] = line
                self._i0[e, y] = i0 if isinstance(i0, (int, float)) else np.mean(i0)
            except (ValueError, TypeError):
                img[y] = np.nan
        if self._steps[e, y] != self._steps[e, y]:  # NaN: first measurement of this row
            self._steps[e, y] = self._step if self._have_decisions else self._n_rows
        self._n_rows += 1
        self.n_events += 1
        self._latest = (e, y)
        self._dirty = True

    def _analysis(self, data: dict) -> None:
        cube = data.get("completed")
        if cube is None:
            return
        cube = np.asarray(cube)
        if cube.ndim != 3 or cube.shape[0] != self._energies.size:
            return
        e = self._latest[0] if self._latest is not None else cube.shape[0] // 2
        self._final_image = np.array(cube[e], dtype=float)  # a copy of one image
        self._final_energy = e
        self._dirty = True
        self._redraw()

    # ------------------------------------------------------------------ drawing
    def _image(self) -> tuple[np.ndarray | None, int | None, str]:
        """(image (n_y, n_x) copy, energy index, what it is)."""
        if self._final_image is not None:
            return self._final_image, self._final_energy, "completed (analysis)"
        if self._latest is None:
            return None, None, ""
        e = self._latest[0]
        if self._use_planner and self.completion != "never":
            if self.completion == "compute":
                try:
                    cube, current = self.planner.completed(), True
                except (ValueError, RuntimeError) as exc:  # cannot complete yet
                    log.debug("LiveCompletionPlot: no completion yet (%s)", exc)
                    cube, current = None, False
            else:
                cube, current = _latest_completion(self.planner)
            if cube is not None and np.shape(cube)[0] == self._energies.size:
                what = "latest completion" + ("" if current else " (before the latest rows)")
                return np.array(cube[e], dtype=float), e, what
        counts = self._counts.get(e)
        if counts is None:
            return None, e, "measured rows"
        with np.errstate(divide="ignore", invalid="ignore"):
            img = -np.log(counts.astype(float) / self._i0[e][:, None])
        img[~np.isfinite(img)] = np.nan
        return img, e, "measured rows"

    def _build(self) -> None:
        if self.figure is None:
            self.figure = Figure(figsize=(9.0, 4.0), layout="constrained")
        fig = self.figure
        fig.clear()
        ax_s, ax_i = fig.subplots(1, 2)
        ax_s.set_label("sampling")
        ax_i.set_label("image")
        n_e, (n_y, n_x) = self._energies.size, self._shape
        im_s = ax_s.imshow(np.full((n_e, n_y), np.nan), origin="lower", aspect="auto",
                           interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
        ax_s.set_xlabel("spatial row index y")
        ax_s.set_ylabel("energy (eV)")
        ax_s.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax_s.yaxis.set_major_formatter(_energy_formatter(self._energies))
        ax_s.set_facecolor("0.92")
        im_i = ax_i.imshow(np.full((n_y, n_x), np.nan), cmap="gray", interpolation="nearest")
        ax_i.set_xticks([])
        ax_i.set_yticks([])
        self._artists = {"sampling": im_s, "image": im_i, "ax_s": ax_s, "ax_i": ax_i,
                         "figure": fig}

    def redraw(self) -> None:
        """Draw a frame now (also what the rate limiter calls); errors are logged, not raised."""
        self._redraw()

    def _redraw(self) -> None:
        t0 = time.perf_counter()
        self._dirty = False
        if self._uid is None:
            return
        try:
            self._draw()
            self.n_redraws += 1
        except Exception:
            log.exception("LiveCompletionPlot: redraw failed (acquisition continues)")
        t1 = time.perf_counter()
        # the next frame waits min_interval, and long enough that drawing stays <= max_busy
        wait = (t1 - t0) * (1.0 - self.max_busy) / self.max_busy
        self._next_draw = t1 + max(self.min_interval, wait)

    def _draw(self) -> None:
        if (self._artists is None or self._artists["figure"] is not self.figure
                or self._artists["sampling"].get_array().shape != self._steps.shape):
            self._build()
        a = self._artists
        steps = self._steps.copy()
        finite = steps[np.isfinite(steps)]
        a["sampling"].set_data(steps)
        a["sampling"].set_clim(0, max(float(finite.max()) if finite.size else 1.0, 1.0))
        unit = "decision" if self._have_decisions else "row"
        ratio = finite.size / max(steps.size, 1)
        a["ax_s"].set_title(f"{self._method or 'run'}: {self._n_rows} rows, ratio {ratio:.3f}\n"
                            f"colour = {unit} index", fontsize="medium")
        img, e, what = self._image()
        if img is not None:
            a["image"].set_data(img)
            ok = img[np.isfinite(img)]
            if ok.size:
                lo, hi = np.percentile(ok, [1, 99])
                a["image"].set_clim(lo, hi if hi > lo else lo + 1e-12)
            a["ax_i"].set_title(f"{what}\n{self._energies[e]:.2f} eV (index {e})",
                                fontsize="medium")
        canvas = self.figure.canvas
        if type(canvas).__name__ not in ("FigureCanvasBase", "FigureCanvasAgg"):
            canvas.draw_idle()
            canvas.flush_events()
        if self.save_to is not None:
            self._save()

    def _save(self) -> None:
        path = self.save_to
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        self.figure.savefig(tmp, dpi=self.dpi)
        os.replace(tmp, path)
