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
from numbers import Integral, Real

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.positioner import PositionerBase
from ophyd.status import DeviceStatus
from ophyd.utils import LimitError

from ._samples import SampleBase

__all__ = ["LineDetector", "Monochromator", "RasterStage", "STXM", "SimPositioner", "make_stxm"]


def _nonneg_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float >= 0, got {type(value).__name__}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite float >= 0, got {value}")
    return value


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
        Initial position (not checked against the limits).
    readback_name : str, optional
        Read key of the readback (default: the device name).
    """

    readback = Cpt(Signal, value=0.0, kind="hinted")
    setpoint = Cpt(Signal, value=0.0, kind="normal")

    def __init__(self, prefix: str = "", *, name: str, limits=(0.0, 0.0), egu: str = "",
                 move_time: float = 0.0, init_pos: float = 0.0,
                 readback_name: str | None = None, **kwargs) -> None:
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
        init_pos = float(init_pos)
        self.setpoint.put(init_pos)
        self.readback.put(init_pos)

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
        """Start a move to ``new_position``; return its :class:`ophyd.status.MoveStatus`."""
        return self.move(new_position, wait=wait, moved_cb=moved_cb, timeout=timeout)

    def fail_next_moves(self, count: int = 1) -> None:
        """Fault injection: the next ``count`` moves fail (their status fails, nothing moves)."""
        self._failing_moves = getattr(self, "_failing_moves", 0) + int(count)

    def move(self, position: float, wait: bool = False, timeout: float | None = None,
             moved_cb=None):
        """Move to ``position`` (see :meth:`set`); block only when ``wait`` is True."""
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
        """Stop a move in progress: the readback stays where it was."""
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
    name : str
        Device name.
    x_limits, y_limits : (float, float)
        Soft limits of each axis in µm.
    move_time : float, default 0.0
        Seconds each axis move takes.
    init_pos : (float, float), default (0.0, 0.0)
        Initial (y, x) in µm.
    """

    x = Cpt(SimPositioner, egu="um")
    y = Cpt(SimPositioner, egu="um")

    def __init__(self, prefix: str = "", *, name: str, x_limits=(0.0, 0.0), y_limits=(0.0, 0.0),
                 move_time: float = 0.0, init_pos=(0.0, 0.0), **kwargs) -> None:
        super().__init__(prefix, name=name, **kwargs)
        y0, x0 = (float(v) for v in init_pos)
        for axis, limits, pos in ((self.x, x_limits, x0), (self.y, y_limits, y0)):
            axis.limits = limits
            axis.move_time = move_time
            axis.setpoint.put(pos)
            axis.readback.put(pos)


class LineDetector(Device):
    """Simulated line detector: one trigger measures one spatial row of the sample.

    ``trigger()`` reads the monochromator energy readback and the stage y
    readback, asks the sample for the transmitted counts of that row
    (:meth:`SampleBase.measure_row`, which also adds the absorbed dose) and puts
    them into ``line``.  Errors (energy off the sample's grid range, y between
    or outside rows) are raised from ``trigger()``.

    Signals (read keys for ``name="detector"``)
    -----------------------------------------------
    line : ``detector_line``, array (n_x,) of counts
    i0 : ``detector_i0``, incident photons per pixel (default 1e4, so ~1 % Poisson noise)
    dwell : ``detector_dwell``, seconds per pixel (default 1e-3; metadata only)
    noise : ``detector_noise`` (configuration), draw Poisson counts (True) or
        return the expectation ``i0 * exp(-OD)`` (False)

    Parameters
    ----------
    name : str
        Device name.
    sample : SampleBase
        What is measured.
    mono : Monochromator
        Source of the energy (its readback).
    stage : RasterStage
        Source of the row position (``stage.y`` readback).
    i0, dwell, noise
        Initial values of the signals of the same names.
    seed : None, int or numpy.random.Generator
        Seed of the detector's own noise generator.

    Attributes
    ----------
    fault : None
        Kept for compatibility; must be None. Use :meth:`inject_fault`.

    Notes
    -----
    Fault injection (for reliability tests): :meth:`inject_fault` queues faults that the next
    triggers produce, one per trigger: ``"nan"`` (the line is NaN), ``"short"`` (the line misses
    pixels), ``"zeros"`` (zero counts), ``"i0_zero"`` (the incident beam reads 0: beam loss),
    ``"timeout"`` (the trigger never completes).
    """

    FAULTS = ("nan", "short", "zeros", "i0_zero", "timeout")

    line = Cpt(Signal, value=np.zeros(1), kind="normal")
    i0 = Cpt(Signal, value=1e4, kind="normal")
    dwell = Cpt(Signal, value=1e-3, kind="normal")
    noise = Cpt(Signal, value=True, kind="config")

    def __init__(self, prefix: str = "", *, name: str, sample: SampleBase, mono: SimPositioner,
                 stage: RasterStage, i0: float = 1e4, dwell: float = 1e-3, noise: bool = True,
                 seed: None | int | np.random.Generator = None, **kwargs) -> None:
        if not isinstance(sample, SampleBase):
            raise TypeError(f"sample must be a SampleBase (PhantomSample, ReplaySample), "
                            f"got {type(sample).__name__}")
        super().__init__(prefix, name=name, **kwargs)
        self._sample = sample
        self._mono = mono
        self._stage = stage
        i0 = float(i0)
        if not (np.isfinite(i0) and i0 > 0):
            raise ValueError(f"i0 must be a finite float > 0, got {i0}")
        self.i0.put(i0)
        self.dwell.put(_nonneg_float("dwell", dwell))
        if not isinstance(noise, (bool, np.bool_)):  # "False" would count as True
            raise TypeError(f"noise must be True or False, got {noise!r}")
        self.noise.put(bool(noise))
        self.line.put(np.zeros(sample.shape[1]))
        self.reseed(seed)
        self.fault = None
        self._faults: list[str] = []
        self._i0_restore: float | None = None

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` triggers produce the fault ``kind`` (see the class notes)."""
        if kind not in self.FAULTS:
            raise ValueError(f"unknown fault {kind!r}; choose from {self.FAULTS}")
        self._faults.extend([kind] * int(count))

    @property
    def pending_faults(self) -> list[str]:
        """Faults still queued for the next triggers."""
        return list(self._faults)

    @property
    def sample(self) -> SampleBase:
        """The sample being measured."""
        return self._sample

    def reseed(self, seed: None | int | np.random.Generator = None) -> None:
        """Replace the noise generator with ``numpy.random.default_rng(seed)``."""
        if seed is not None and not isinstance(seed, (Integral, np.random.Generator)):
            raise TypeError(
                f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}"
            )
        self._rng = np.random.default_rng(seed)

    def describe(self) -> dict:
        """As :meth:`ophyd.Device.describe`, with ``dtype_numpy`` of the line (float64 counts)."""
        desc = super().describe()
        if self.line.name in desc:
            desc[self.line.name]["dtype_numpy"] = np.dtype(np.float64).str
        return desc

    def trigger(self) -> DeviceStatus:
        """Measure the row at the current energy and y; return a finished status."""
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
            self.i0.put(0.0)
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
        Incident photons per pixel.
    dwell : float, default 1e-3
        Dwell per pixel in seconds (recorded, does not change the counts).
    noise : bool, default True
        Poisson noise on (True) or expected counts (False).
    seed : None, int or numpy.random.Generator
        Seed of the detector's noise generator.

    Returns
    -------
    STXM
        With ``mono`` (limits: energy grid range padded by 1 eV, at the first
        energy), ``stage`` (limits: rows/pixels padded by one pixel, at pixel
        (0, 0)), ``detector`` and ``sample``.
    """
    if not isinstance(sample, SampleBase):
        raise TypeError(f"sample must be a SampleBase (PhantomSample, ReplaySample), "
                        f"got {type(sample).__name__}")
    move_time = _nonneg_float("move_time", move_time)
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
