"""Simulated STXM devices (ophyd v1): monochromator, raster stage, line detector.

The devices are plain ophyd objects, usable from bluesky plans
(``bps.mv(mono, 710.0)``, ``bps.trigger_and_read([detector, mono, stage.y])``).
The line detector measures one spatial row (n_x pixels) per trigger, at the
current monochromator and stage-y *readbacks*, from a sample model
(:class:`~sim_devices.SampleBase`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from numbers import Real

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.positioner import PositionerBase
from ophyd.status import DeviceStatus
from ophyd.utils import LimitError

from curiss.linalg._checks import as_bool, as_int, as_rng, check_seed

from ._checks import check_i0
from ._samples import SampleBase

__all__ = ["LineDetector", "Monochromator", "RasterStage", "STXM", "SimPositioner", "make_stxm"]


def _nonneg_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float >= 0, got {type(value).__name__}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite float >= 0, got {value}")
    return value


def _init_position(name: str, value) -> float:
    """An initial position: a finite real number (a NaN readback would be read as a position)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name}: init_pos must be a finite number, got {value!r} "
                        f"({type(value).__name__})")
    if not np.isfinite(value):
        raise ValueError(f"{name}: init_pos must be a finite number, got {value!r}")
    return float(value)


def _init_pair(name: str, value) -> tuple[float, float]:
    """An initial stage position ``(y, x)``: two finite real numbers."""
    what = f"{name}: init_pos must be a pair of finite numbers (y, x) in µm, got {value!r}"
    try:
        pair = tuple(value)
    except TypeError:
        raise TypeError(what) from None
    if len(pair) != 2 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, Real)
                             for v in pair):
        raise TypeError(what)
    if not all(np.isfinite(v) for v in pair):
        raise ValueError(what)
    return float(pair[0]), float(pair[1])


def _check_limits(limits) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in limits)
    except (TypeError, ValueError):
        raise TypeError(f"limits must be a pair of floats (low, high), got {limits!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"limits must be finite with low <= high, got {limits!r}")
    return (lo, hi)


class SimPositioner(Device, PositionerBase):
    """A soft positioner with readback and setpoint signals and a simulated move time.

    Parameters
    ----------
    prefix : str
        Unused (ophyd convention).
    name : str
        Device name; the readback's read key is ``name`` unless ``readback_name``
        is given, the setpoint's is ``name + "_setpoint"``.
    limits : (float, float), default (0, 0)
        Soft limits (inclusive); a move outside raises
        :class:`ophyd.utils.LimitError` (a ValueError) before anything moves.
        ``low == high`` disables the check (ophyd convention).
    egu : str
        Engineering units.
    move_time : float, default 0.0
        Seconds a move takes.  0: ``set()`` returns a finished status; otherwise
        the status finishes from a timer thread after ``move_time`` (``set``
        never blocks).  The setpoint changes at once, the readback when the
        move finishes.
    init_pos : float, default 0.0
        Initial position, in ``egu``: a finite real number (not checked against the limits).
    readback_name : str, optional
        Read key of the readback (default: the device name).
    **kwargs
        Passed to :class:`ophyd.Device` (``read_attrs``, ``parent``, ...).

    Raises
    ------
    TypeError
        ``init_pos`` not a real number (a str, a bool, None).
    ValueError
        ``init_pos`` NaN or infinite; ``limits`` or ``move_time`` out of range.
    """

    readback = Cpt(Signal, value=0.0, kind="hinted")
    setpoint = Cpt(Signal, value=0.0, kind="normal")

    def __init__(self, prefix: str = "", *, name: str, limits=(0.0, 0.0), egu: str = "",
                 move_time: float = 0.0, init_pos: float = 0.0,
                 readback_name: str | None = None, **kwargs) -> None:
        init_pos = _init_position(name, init_pos)
        super().__init__(prefix, name=name, **kwargs)
        self.readback.name = readback_name if readback_name is not None else self.name
        self.setpoint.name = f"{self.readback.name}_setpoint"
        self._limits = _check_limits(limits)
        self._egu = str(egu)
        self.move_time = move_time
        self._move_lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._token = 0
        self._status = None  # the latest move's status (a superseded one must not stop the next)
        self.setpoint.put(init_pos)
        self.readback.put(init_pos)

    def describe(self) -> dict:
        """As :meth:`ophyd.Device.describe`, with ``units`` (:attr:`egu`, when set) on the
        readback and setpoint, as an EPICS motor's describe gives them."""
        desc = super().describe()
        if self._egu:
            for key in desc.values():
                key.setdefault("units", self._egu)
        return desc

    # ----------------------------------------------------------- properties
    @property
    def move_time(self) -> float:
        """Seconds a move takes (>= 0)."""
        return self._move_time

    @move_time.setter
    def move_time(self, value: float) -> None:
        self._move_time = _nonneg_float("move_time", value)

    @property
    def limits(self) -> tuple[float, float]:
        """Soft limits ``(low, high)``."""
        return self._limits

    @limits.setter
    def limits(self, value) -> None:
        self._limits = _check_limits(value)

    @property
    def egu(self) -> str:
        """Engineering units."""
        return self._egu

    @property
    def position(self) -> float:
        """Current position (the readback)."""
        return float(self.readback.get())

    def locate(self) -> dict:
        """``{"setpoint": ..., "readback": ...}`` (bluesky ``Locatable`` protocol)."""
        return {"setpoint": float(self.setpoint.get()), "readback": self.position}

    def check_value(self, value) -> None:
        """Raise if ``value`` is not a finite number within the limits.

        Raises
        ------
        TypeError
            If ``value`` is not a real number.
        ophyd.utils.LimitError
            If it is outside the limits (a subclass of ValueError).
        """
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{self.name}: position must be a real number, got {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"{self.name}: position must be finite, got {value}")
        lo, hi = self._limits
        if lo != hi and not (lo <= value <= hi):
            raise LimitError(
                f"{self.name}: position {value} {self._egu} is outside the limits "
                f"[{lo}, {hi}] {self._egu}"
            )

    # --------------------------------------------------------------- moving
    def set(self, new_position: float, *, timeout: float | None = None,
            moved_cb=None, wait: bool = False):
        """Start a move to ``new_position`` (the bluesky ``Movable`` protocol: ``bps.mv``).

        Parameters
        ----------
        new_position : float
            Target, in :attr:`egu` (eV for a :class:`Monochromator`, µm for a stage axis): a
            finite real number within :attr:`limits`.
        timeout : float, optional
            Seconds after which the move's status fails if it has not finished (ophyd's
            ``MoveStatus`` timeout); None: no timeout.
        moved_cb : callable, optional
            Called as ``moved_cb(status, obj=self)`` when the move finishes (ophyd convention).
        wait : bool, default False
            Block until the move has finished.

        Returns
        -------
        ophyd.status.MoveStatus
            Finished at once when :attr:`move_time` is 0, otherwise after ``move_time``
            seconds; failed if the move is superseded by another move or stopped. A move made
            to fail by :meth:`fail_next_moves` returns a failed ``DeviceStatus`` at once
            (nothing moves, ``wait`` does not block, ``moved_cb`` is not called).

        Raises
        ------
        TypeError
            If ``new_position`` is not a real number.
        ValueError
            If it is NaN or infinite; :class:`ophyd.utils.LimitError` (a ValueError) if it is
            outside the limits. Nothing moves.
        """
        return self.move(new_position, wait=wait, moved_cb=moved_cb, timeout=timeout)

    def fail_next_moves(self, count: int = 1) -> None:
        """Fault injection: make the next ``count`` moves fail (their status fails, nothing moves).

        Parameters
        ----------
        count : int, default 1
            Number of moves to fail, added to those already queued: a non-negative integer
            (numpy integers too; 0 adds none). A float, a string or a bool is refused, not
            truncated or converted.

        Raises
        ------
        TypeError
            If ``count`` is not an integer.
        ValueError
            If it is negative. Nothing is queued.
        """
        count = as_int(count, "count", minimum=0)
        self._failing_moves = getattr(self, "_failing_moves", 0) + count

    def move(self, position: float, wait: bool = False, timeout: float | None = None,
             moved_cb=None):
        """Move to ``position``; block only when ``wait`` is True (as :meth:`set`).

        Parameters
        ----------
        position : float
            Target in :attr:`egu`: a finite real number within :attr:`limits`.
        wait : bool, default False
            Block until the move has finished.
        timeout : float, optional
            Seconds after which the status fails if the move has not finished; None: none.
        moved_cb : callable, optional
            Called as ``moved_cb(status, obj=self)`` when the move finishes.

        Returns
        -------
        ophyd.status.MoveStatus
            The move's status (a failed ``DeviceStatus`` for a move failed by
            :meth:`fail_next_moves`); see :meth:`set`.

        Raises
        ------
        TypeError
            If ``position`` is not a real number.
        ValueError
            If it is not finite or (:class:`ophyd.utils.LimitError`) outside the limits.
        """
        self.check_value(position)
        position = float(position)
        if getattr(self, "_failing_moves", 0) > 0:
            self._failing_moves -= 1
            status = DeviceStatus(self)
            status.set_exception(RuntimeError(f"{self.name}: simulated failure to reach {position}"))
            return status
        with self._move_lock:
            # A move still in progress is superseded: its timer is cancelled and
            # PositionerBase.move fails its status. That status must not call stop() on
            # failure: with a timeout its failure handler runs on another thread, after this
            # move has started, and stop() would cancel this move instead.
            self._cancel_timer()
            self._moving = False
            if self._status is not None and not self._status.done:
                self._status._call_stop_on_failure = False  # ophyd's DeviceStatus flag
            status = PositionerBase.move(self, position, moved_cb=moved_cb, timeout=timeout)
            self._status = status
            self._token += 1
            token = self._token
            self.setpoint.put(position)
            self._run_subs(sub_type=self.SUB_START, timestamp=None)
            self._moving = True
            if self._move_time == 0:
                self._finish(position, token, locked=True)
            else:
                self._timer = threading.Timer(self._move_time, self._finish,
                                              args=(position, token))
                self._timer.daemon = True
                self._timer.start()
        if wait:
            status.wait()
        return status

    def _finish(self, position: float, token: int, locked: bool = False) -> None:
        if not locked:
            with self._move_lock:
                if token != self._token:  # superseded by a newer move
                    return
                self._timer = None
                self._complete(position)
        else:
            self._complete(position)

    def _complete(self, position: float) -> None:
        self.readback.put(position)
        self._moving = False
        self._set_position(position)
        self._done_moving(success=True)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def stop(self, *, success: bool = False) -> None:
        """Stop a move in progress: the readback stays where it was.

        The setpoint is set back to the readback and the move's status finishes. Without a move
        in progress, nothing happens.

        Parameters
        ----------
        success : bool, default False
            Whether the stopped move's status counts as a success (ophyd convention); False
            fails it.
        """
        with self._move_lock:
            self._cancel_timer()
            self._token += 1
            was_moving = self._moving
            self._moving = False
        if was_moving:
            self.setpoint.put(self.position)
            PositionerBase.stop(self, success=success)

    @property
    def moving(self) -> bool:
        """True while a move is in progress."""
        return self._moving


class Monochromator(SimPositioner):
    """Simulated monochromator: energy in eV, read key ``<name>_energy``.

    Parameters as :class:`SimPositioner` (``egu`` defaults to ``"eV"``).
    """

    def __init__(self, prefix: str = "", *, name: str, egu: str = "eV", **kwargs) -> None:
        kwargs.setdefault("readback_name", f"{name}_energy")
        super().__init__(prefix, name=name, egu=egu, **kwargs)

    @property
    def energy(self) -> Signal:
        """The energy readback signal (read key ``<name>_energy``)."""
        return self.readback


class RasterStage(Device):
    """Simulated raster stage with ``x`` and ``y`` positioners (µm).

    Read keys ``<name>_x`` and ``<name>_y`` (plus ``..._setpoint``).

    Parameters
    ----------
    prefix : str
        Unused (ophyd convention).
    name : str
        Device name.
    x_limits, y_limits : (float, float)
        Soft limits of each axis in µm.
    move_time : float, default 0.0
        Seconds each axis move takes.
    init_pos : (float, float), default (0.0, 0.0)
        Initial (y, x) in µm: two finite real numbers.
    **kwargs
        Passed to :class:`ophyd.Device`.

    Raises
    ------
    TypeError
        ``init_pos`` not a pair of real numbers.
    ValueError
        ``init_pos`` with a NaN or an infinite value; limits or ``move_time`` out of range.
    """

    x = Cpt(SimPositioner, egu="um")
    y = Cpt(SimPositioner, egu="um")

    def __init__(self, prefix: str = "", *, name: str, x_limits=(0.0, 0.0), y_limits=(0.0, 0.0),
                 move_time: float = 0.0, init_pos=(0.0, 0.0), **kwargs) -> None:
        y0, x0 = _init_pair(name, init_pos)
        super().__init__(prefix, name=name, **kwargs)
        for axis, limits, pos in ((self.x, x_limits, x0), (self.y, y_limits, y0)):
            axis.limits = limits
            axis.move_time = move_time
            axis.setpoint.put(pos)
            axis.readback.put(pos)


class _BoolSignal(Signal):
    """A soft signal that holds True or False: a put of anything else (``"False"``, 0) raises."""

    def check_value(self, value, **kwargs) -> None:
        super().check_value(value, **kwargs)
        as_bool(value, self.name)


class _I0Signal(Signal):
    """A soft signal for the incident photons per pixel: a put must be a float in (0, 1e18].

    (The ``"i0_zero"`` fault puts 0 with ``force=True``: beam loss is a reading, not a setting.)
    """

    def check_value(self, value, **kwargs) -> None:
        super().check_value(value, **kwargs)
        check_i0(value, self.name)

    def put(self, value, *, force: bool = False, **kwargs) -> None:
        super().put(value, force=force, **kwargs)
        if not force and self.parent is not None:
            # a setting after an "i0_zero" fault: the next trigger keeps it (it used to put back
            # the flux from before the fault)
            self.parent._i0_restore = None


class LineDetector(Device):
    """Simulated line detector: one trigger measures one spatial row of the sample.

    ``trigger()`` reads the monochromator energy readback and the stage y
    readback, asks the sample for the transmitted counts of that row
    (:meth:`SampleBase.measure_row`, which also adds the absorbed dose) and puts
    them into ``line``.  Errors (energy off the sample's grid range, y between
    or outside rows) are raised from ``trigger()``.

    Parameters
    ----------
    prefix : str
        Unused (ophyd convention).
    name : str
        Device name.
    sample : SampleBase
        What is measured.
    mono : Monochromator
        Source of the energy (its readback).
    stage : RasterStage
        Source of the row position (``stage.y`` readback).
    i0 : float, default 1e4
        Incident photons per pixel: finite, > 0 and at most 1e18 (numpy's Poisson sampling
        handles expected counts up to about 9.2e18). A bool or a string is refused.
    dwell : float, default 1e-3
        Seconds per pixel, >= 0 (recorded; does not change the counts).
    noise : bool, default True
        True or False only (``"False"`` would count as True).
    seed : None, int or numpy.random.Generator
        Seed of the detector's own noise generator (an int >= 0; a bool is refused).
    **kwargs
        Passed to :class:`ophyd.Device`.

    Attributes
    ----------
    line : ophyd.Signal
        Read key ``<name>_line`` (``detector_line``): the counts of the last row, array of
        shape (n_x,), float64.
    i0 : ophyd.Signal
        Read key ``<name>_i0``: incident photons per pixel (default 1e4, so ~1 % Poisson noise).
        A put is checked like the ``i0`` parameter.
    dwell : ophyd.Signal
        Read key ``<name>_dwell``: seconds per pixel (default 1e-3; metadata only).
    noise : ophyd.Signal
        Configuration key ``<name>_noise``: draw Poisson counts (True) or return the
        expectation ``i0 * exp(-OD)`` (False). A put of anything but True or False raises.
    fault : None
        Kept for compatibility; must be None. Use :meth:`inject_fault`.

    Raises
    ------
    TypeError
        ``sample`` not a :class:`SampleBase`; ``i0``, ``dwell``, ``noise`` or ``seed`` of the
        wrong type.
    ValueError
        ``i0`` not in (0, 1e18], ``dwell`` negative or not finite, a negative ``seed``.

    Notes
    -----
    Fault injection (for reliability tests): :meth:`inject_fault` queues faults that the next
    triggers produce, one per trigger: ``"nan"`` (the line is NaN), ``"short"`` (the line misses
    pixels), ``"zeros"`` (zero counts), ``"i0_zero"`` (the incident beam reads 0: beam loss),
    ``"timeout"`` (the trigger never completes).
    """

    FAULTS = ("nan", "short", "zeros", "i0_zero", "timeout")

    line = Cpt(Signal, value=np.zeros(1), kind="normal")
    i0 = Cpt(_I0Signal, value=1e4, kind="normal")
    dwell = Cpt(Signal, value=1e-3, kind="normal")
    noise = Cpt(_BoolSignal, value=True, kind="config")

    def __init__(self, prefix: str = "", *, name: str, sample: SampleBase, mono: SimPositioner,
                 stage: RasterStage, i0: float = 1e4, dwell: float = 1e-3, noise: bool = True,
                 seed: None | int | np.random.Generator = None, **kwargs) -> None:
        if not isinstance(sample, SampleBase):
            raise TypeError(f"sample must be a SampleBase (PhantomSample, ReplaySample), "
                            f"got {type(sample).__name__}")
        i0 = check_i0(i0)
        dwell = _nonneg_float("dwell", dwell)
        noise = as_bool(noise, "noise")  # "False" would count as True
        seed = check_seed(seed, "seed")
        super().__init__(prefix, name=name, **kwargs)
        self._sample = sample
        self._mono = mono
        self._stage = stage
        self.i0.put(i0)
        self.dwell.put(dwell)
        self.noise.put(noise)
        self.line.put(np.zeros(sample.shape[1]))
        self.reseed(seed)
        self.fault = None
        self._faults: list[str] = []
        self._i0_restore: float | None = None

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` triggers produce the fault ``kind`` (see the class notes).

        Parameters
        ----------
        kind : str
            One of :attr:`FAULTS`: ``"nan"``, ``"short"``, ``"zeros"``, ``"i0_zero"``,
            ``"timeout"``.
        count : int, default 1
            Number of triggers that produce it, queued after the faults already pending
            (:attr:`pending_faults`): a non-negative integer (numpy integers too; 0 queues
            none). A float, a string or a bool is refused, not truncated or converted.

        Raises
        ------
        ValueError
            An unknown ``kind``, or a negative ``count``. Nothing is queued.
        TypeError
            ``count`` not an integer.
        """
        if kind not in self.FAULTS:
            raise ValueError(f"unknown fault {kind!r}; choose from {self.FAULTS}")
        count = as_int(count, "count", minimum=0)
        self._faults.extend([kind] * count)

    @property
    def pending_faults(self) -> list[str]:
        """Faults still queued for the next triggers."""
        return list(self._faults)

    @property
    def sample(self) -> SampleBase:
        """The sample being measured."""
        return self._sample

    def reseed(self, seed: None | int | np.random.Generator = None) -> None:
        """Replace the noise generator with ``numpy.random.default_rng(seed)``.

        Parameters
        ----------
        seed : None, int or numpy.random.Generator, default None
            None: fresh entropy (not reproducible); an int >= 0: that seed; a Generator: used
            as is (shared, not copied). A bool, a float or a negative int is refused.

        Raises
        ------
        TypeError
            ``seed`` of the wrong type (a bool, a float, a str).
        ValueError
            A negative ``seed``. The generator is unchanged.
        """
        self._rng = as_rng(seed, "seed")

    def describe(self) -> dict:
        """As :meth:`ophyd.Device.describe`, with ``dtype_numpy`` of the line (float64 counts)."""
        desc = super().describe()
        if self.line.name in desc:
            desc[self.line.name]["dtype_numpy"] = np.dtype(np.float64).str
        return desc

    def trigger(self) -> DeviceStatus:
        """Measure the row at the current energy and y into :attr:`line`.

        Reads the monochromator's energy readback (eV) and the stage's y readback (µm), asks the
        sample for that row (:meth:`SampleBase.measure_row` with the ``i0`` and ``noise``
        signals and the detector's generator; this adds the row's dose) and puts the counts,
        shape (n_x,), into :attr:`line`. The next queued fault (:meth:`inject_fault`), if any,
        replaces or spoils that reading.

        Returns
        -------
        ophyd.status.DeviceStatus
            Finished (successfully) on return, except after a ``"timeout"`` fault: that status
            never finishes and nothing is measured.

        Raises
        ------
        ValueError
            From :meth:`SampleBase.measure_row`: the energy is outside the sample's grid, y is
            not within half a pixel of a row, or (with noise) the expected counts are beyond
            numpy's Poisson sampling. Raised here, not through the status; no dose is added.
        NotImplementedError
            If :attr:`fault` was set (use :meth:`inject_fault`).
        """
        if self.fault is not None:
            raise NotImplementedError("LineDetector.fault is reserved; use inject_fault()")
        fault = self._faults.pop(0) if self._faults else None
        status = DeviceStatus(self)
        if fault == "timeout":
            return status  # never finishes
        energy = self._mono.position
        y = self._stage.y.position
        if self._i0_restore is not None:  # the beam is back after an "i0_zero" fault
            self.i0.put(self._i0_restore)
            self._i0_restore = None
        i0 = float(self.i0.get())
        if fault == "i0_zero":
            counts = np.zeros(self._sample.shape[1])
            self._i0_restore = i0
            self.i0.put(0.0, force=True)  # a reading (beam loss), not a setting: not checked
        else:
            counts = self._sample.measure_row(energy, y, i0=i0, rng=self._rng,
                                              noise=bool(self.noise.get()))
            if fault == "nan":
                counts = np.full_like(counts, np.nan)
            elif fault == "short":
                counts = counts[:-3]
            elif fault == "zeros":
                counts = np.zeros_like(counts)
        self.line.put(counts)
        status.set_finished()
        return status


@dataclass(frozen=True, eq=False)
class STXM:
    """A ready set of simulated STXM devices around one sample (see :func:`make_stxm`)."""

    mono: Monochromator
    stage: RasterStage
    detector: LineDetector
    sample: SampleBase

    @property
    def energies(self) -> np.ndarray:
        """The sample's energy grid (n_E,) eV."""
        return self.sample.energies

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial shape ``(n_y, n_x)``."""
        return self.sample.shape

    @property
    def y_positions(self) -> np.ndarray:
        """Stage y of each row (n_y,) µm."""
        return self.sample.y_positions

    @property
    def x_positions(self) -> np.ndarray:
        """Stage x of each pixel (n_x,) µm."""
        return self.sample.x_positions

    @property
    def devices(self) -> list:
        """``[detector, mono, stage]``."""
        return [self.detector, self.mono, self.stage]


def make_stxm(sample: SampleBase, *, move_time: float = 0.0, i0: float = 1e4,
              dwell: float = 1e-3, noise: bool = True,
              seed: None | int | np.random.Generator = None) -> STXM:
    """Build a simulated STXM (devices "mono", "stage", "detector") around ``sample``.

    Parameters
    ----------
    sample : SampleBase
        :class:`PhantomSample` or :class:`ReplaySample`.
    move_time : float, default 0.0
        Seconds every monochromator and stage move takes (0: instantaneous).
    i0 : float, default 1e4
        Incident photons per pixel, in (0, 1e18] (numpy's Poisson sampling handles expected
        counts up to about 9.2e18); a bool or a string is refused.
    dwell : float, default 1e-3
        Dwell per pixel in seconds, >= 0 (recorded, does not change the counts).
    noise : bool, default True
        Poisson noise on (True) or expected counts (False); True or False only.
    seed : None, int or numpy.random.Generator
        Seed of the detector's noise generator (an int >= 0; a bool is refused).

    Returns
    -------
    STXM
        With ``mono`` (limits: energy grid range padded by 1 eV, at the first
        energy), ``stage`` (limits: rows/pixels padded by one pixel, at pixel
        (0, 0)), ``detector`` and ``sample``.

    Raises
    ------
    TypeError
        An argument of the wrong type (``i0`` a bool or a string, ``noise`` not a bool, ``seed``
        a bool or a float, ...).
    ValueError
        A value out of range (``i0`` not in (0, 1e18], a negative ``move_time``, ``dwell`` or
        ``seed``). Checked before any device is made.
    """
    if not isinstance(sample, SampleBase):
        raise TypeError(f"sample must be a SampleBase (PhantomSample, ReplaySample), "
                        f"got {type(sample).__name__}")
    move_time = _nonneg_float("move_time", move_time)
    i0 = check_i0(i0)
    dwell = _nonneg_float("dwell", dwell)
    noise = as_bool(noise, "noise")
    seed = check_seed(seed, "seed")
    e = sample.energies
    mono = Monochromator(name="mono", limits=(e[0] - 1.0, e[-1] + 1.0), move_time=move_time,
                         init_pos=e[0])
    ys, xs, p = sample.y_positions, sample.x_positions, sample.pixel_size
    stage = RasterStage(name="stage", x_limits=(xs[0] - p, xs[-1] + p),
                        y_limits=(ys[0] - p, ys[-1] + p), move_time=move_time,
                        init_pos=(ys[0], xs[0]))
    detector = LineDetector(name="detector", sample=sample, mono=mono, stage=stage, i0=i0,
                            dwell=dwell, noise=noise, seed=seed)
    return STXM(mono=mono, stage=stage, detector=detector, sample=sample)
