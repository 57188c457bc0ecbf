"""Sample models for the simulated STXM: the truth the line detector measures.

A sample holds an optical-density cube (n_E, n_y, n_x) on an energy grid and a
raster of stage positions (µm).  The detector asks it for one spatial row of
transmitted counts at a time (:meth:`measure_row`), which also accumulates the
absorbed dose per pixel.
"""

from __future__ import annotations

import threading
from numbers import Integral

import numpy as np

from curiss.datasets import Phantom, make_phantom

from curiss.linalg._checks import as_bool, as_rng, is_real_dtype

from ._checks import POISSON_LAM_MAX, check_real
from ._checks import positive_float as _positive_float

__all__ = ["PhantomSample", "ReplaySample", "SampleBase"]


class SampleBase:
    """An optical-density cube on an energy grid and a raster of positions.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        Energy grid in eV, finite and strictly increasing (n_E >= 1).
    cube : array_like, shape (n_E, n_y, n_x)
        Optical density (OD = -ln(I/I0)), finite.  Copied; never modified.
    pixel_size : float, default 1.0
        Raster step in µm (both axes).
    origin : (float, float), default (0.0, 0.0)
        Stage position (y, x) in µm of pixel (0, 0).

    Raises
    ------
    TypeError
        ``energies`` or ``cube`` not real numbers (complex, bool, text): converting them to float
        would drop the imaginary part or read True as 1.
    ValueError
        A shape, grid or value the sample cannot hold (see above).
    """

    def __init__(self, energies, cube, *, pixel_size: float = 1.0,
                 origin: tuple[float, float] = (0.0, 0.0)) -> None:
        for name, value in (("energies", energies), ("cube", cube)):
            arr = np.asarray(value)
            if not is_real_dtype(arr):
                raise TypeError(f"{name} must hold real numbers (OD, eV); got dtype {arr.dtype}")
        energies = np.array(energies, dtype=float)
        cube = np.array(cube, dtype=float)
        if energies.ndim != 1 or energies.size < 1:
            raise ValueError(f"energies must be 1-D with at least one value, got shape {energies.shape}")
        if not np.all(np.isfinite(energies)):
            raise ValueError("energies must be finite")
        if energies.size > 1 and not np.all(np.diff(energies) > 0):
            raise ValueError("energies must be strictly increasing")
        if cube.ndim != 3:
            raise ValueError(f"cube must be 3-D (n_E, n_y, n_x), got shape {cube.shape}")
        if cube.shape[0] != energies.size:
            raise ValueError(
                f"cube has {cube.shape[0]} energies but energies has {energies.size}"
            )
        if cube.shape[1] < 1 or cube.shape[2] < 1:
            raise ValueError(f"cube must have at least one pixel, got shape {cube.shape}")
        if not np.all(np.isfinite(cube)):
            raise ValueError("cube must be finite (no NaN/inf); fill or crop missing pixels first")
        self._pixel_size = _positive_float("pixel_size", pixel_size)
        try:
            y0, x0 = (float(v) for v in origin)
        except (TypeError, ValueError):
            raise TypeError(f"origin must be a pair of floats (y, x) in µm, got {origin!r}") from None
        if not (np.isfinite(y0) and np.isfinite(x0)):
            raise ValueError(f"origin must be finite, got {origin!r}")
        energies.setflags(write=False)
        cube.setflags(write=False)
        self._energies = energies
        self._cube = cube
        n_y, n_x = cube.shape[1:]
        self._y = y0 + self._pixel_size * np.arange(n_y)
        self._x = x0 + self._pixel_size * np.arange(n_x)
        self._y.setflags(write=False)
        self._x.setflags(write=False)
        self._dose = np.zeros((n_y, n_x))
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ data
    @property
    def energies(self) -> np.ndarray:
        """Energy grid (n_E,) in eV (read-only)."""
        return self._energies

    @property
    def cube(self) -> np.ndarray:
        """True optical density (n_E, n_y, n_x) (read-only)."""
        return self._cube

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial shape ``(n_y, n_x)``."""
        return (int(self._cube.shape[1]), int(self._cube.shape[2]))

    @property
    def pixel_size(self) -> float:
        """Raster step in µm."""
        return self._pixel_size

    @property
    def y_positions(self) -> np.ndarray:
        """Stage y position of each row, (n_y,) µm (read-only)."""
        return self._y

    @property
    def x_positions(self) -> np.ndarray:
        """Stage x position of each pixel of a row, (n_x,) µm (read-only)."""
        return self._x

    @property
    def dose(self) -> np.ndarray:
        """Accumulated absorbed dose per pixel, (n_y, n_x) (a copy).

        Arbitrary units: the expected number of absorbed photons,
        ``i0 * (1 - exp(-OD))`` summed over every measurement of the pixel.
        """
        with self._lock:
            return self._dose.copy()

    def reset_dose(self) -> None:
        """Set the accumulated dose back to zero."""
        with self._lock:
            self._dose[:] = 0.0

    # ------------------------------------------------------------- geometry
    def row_index(self, y_position: float) -> int:
        """Index of the row at stage position ``y_position``.

        Parameters
        ----------
        y_position : float
            Stage y in µm (a real number: a bool or a string is refused).

        Returns
        -------
        int
            The row in ``0 .. n_y-1`` whose position (:attr:`y_positions`) is nearest.

        Raises
        ------
        TypeError
            If ``y_position`` is not a real number.
        ValueError
            If it is not finite, or farther than half a pixel from every row.
        """
        y = check_real("y_position", y_position, "stage y in µm")
        if not np.isfinite(y):
            raise ValueError(f"y_position must be finite, got {y_position!r}")
        i = int(np.argmin(np.abs(self._y - y)))
        if abs(self._y[i] - y) > 0.5 * self._pixel_size * (1 + 1e-9):
            raise ValueError(
                f"y position {y} µm is not on the sample: rows span "
                f"[{self._y[0]}, {self._y[-1]}] µm with step {self._pixel_size} µm "
                "(allowed: within half a pixel of a row)"
            )
        return i

    def od_at(self, energy: float, row_index: int) -> np.ndarray:
        """True optical density of one spatial row at one energy.

        Parameters
        ----------
        energy : float
            Energy in eV within the grid range (linear interpolation between
            grid points; exactly the grid value on a grid point).
        row_index : int
            Row y in ``0 .. n_y-1``.

        Returns
        -------
        ndarray, shape (n_x,)
            Optical density (a new array).

        Raises
        ------
        TypeError
            If ``energy`` is not a real number or ``row_index`` not an int.
        ValueError
            If the energy is outside the grid range or the row does not exist.
        """
        e = check_real("energy", energy, "eV")
        grid = self._energies
        n_y = self._cube.shape[1]
        if isinstance(row_index, bool) or not isinstance(row_index, Integral):
            raise TypeError(f"row_index must be an int, got {type(row_index).__name__}")
        if not 0 <= row_index < n_y:
            raise ValueError(f"row_index must be in 0..{n_y - 1}, got {row_index}")
        tol = 1e-9 * max(1.0, abs(grid[-1]))
        if not (grid[0] - tol <= e <= grid[-1] + tol):
            raise ValueError(
                f"energy {e} eV is outside the sample's grid [{grid[0]}, {grid[-1]}] eV"
            )
        if grid.size == 1:
            return self._cube[0, row_index].copy()
        k = int(np.searchsorted(grid, e, side="right")) - 1
        k = min(max(k, 0), grid.size - 2)
        w = (e - grid[k]) / (grid[k + 1] - grid[k])
        w = min(max(w, 0.0), 1.0)
        if w == 0.0:
            return self._cube[k, row_index].copy()
        if w == 1.0:
            return self._cube[k + 1, row_index].copy()
        return (1.0 - w) * self._cube[k, row_index] + w * self._cube[k + 1, row_index]

    # ------------------------------------------------------------ measuring
    def measure_row(self, energy: float, y_position: float, *, i0: float,
                    rng: None | int | np.random.Generator = None,
                    noise: bool = True) -> np.ndarray:
        """Transmitted counts of the spatial row at ``y_position`` and ``energy``.

        Parameters
        ----------
        energy : float
            Energy in eV (see :meth:`od_at`).
        y_position : float
            Stage y in µm (see :meth:`row_index`).
        i0 : float
            Incident photons per pixel (> 0).
        rng : None, int or numpy.random.Generator
            Source of the Poisson noise (an int is a seed, >= 0; a bool is refused). Checked even
            when ``noise`` is False.
        noise : bool, default True
            Draw ``Poisson(i0 * exp(-OD))``; when False return the expectation. True or False
            only (the string ``"False"`` is refused, not taken as true).

        Returns
        -------
        ndarray of float, shape (n_x,)
            Counts per pixel.

        Raises
        ------
        TypeError
            An argument of the wrong type (``energy``/``y_position`` not real numbers, ``noise``
            not a bool, ``rng`` a bool or a float, ``i0`` not a number).
        ValueError
            ``i0`` not finite and > 0, a negative ``rng`` seed, an energy or a position off the
            sample (:meth:`od_at`, :meth:`row_index`), or, with noise, expected counts above what
            numpy's Poisson sampling handles (about 9.2e18). Nothing is measured and the dose is
            unchanged.

        Notes
        -----
        Adds ``i0 * (1 - exp(-max(OD, 0)))`` to :attr:`dose` for every pixel of the row: the
        absorbed dose is never negative, also where a pre-edge-subtracted OD is (the cost model,
        :mod:`curiss.cost`, clips OD at 0 the same way).
        """
        noise = as_bool(noise, "noise")
        rng = as_rng(rng, "rng")  # checked before anything is measured
        i0 = _positive_float("i0", i0)
        row = self.row_index(y_position)
        od = self.od_at(energy, row)
        expected = i0 * np.exp(-od)
        if noise:
            peak = float(expected.max())
            if not peak <= POISSON_LAM_MAX:
                raise ValueError(
                    f"expected counts up to {peak:.3g} in this row (i0 = {i0:.3g} times exp(-OD)) "
                    f"are more than numpy's Poisson sampling handles (about "
                    f"{POISSON_LAM_MAX:.2g}); lower i0, or pass noise=False"
                )
            counts = rng.poisson(expected).astype(float)
        else:
            counts = expected
        with self._lock:
            self._dose[row] += -i0 * np.expm1(-np.maximum(od, 0.0))
        return counts

    def __repr__(self) -> str:
        n_y, n_x = self.shape
        return (f"{type(self).__name__}(n_energies={self._energies.size}, shape=({n_y}, {n_x}), "
                f"energy_range=({self._energies[0]}, {self._energies[-1]}), "
                f"pixel_size={self._pixel_size})")


class ReplaySample(SampleBase):
    """A sample that replays a recorded optical-density cube.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        Energy grid in eV, strictly increasing.
    cube : array_like, shape (n_E, n_y, n_x)
        Optical density (e.g. an ALS stack converted with
        ``-log(transmitted / i0[:, None, None])``), finite.  Copied.
    pixel_size : float, default 1.0
        Raster step in µm.
    origin : (float, float), default (0.0, 0.0)
        Stage position (y, x) in µm of pixel (0, 0).
    """


class PhantomSample(SampleBase):
    """A synthetic sample made by :func:`curiss.datasets.make_phantom`.

    Parameters
    ----------
    n_energies, shape, n_materials, seed, energy_range
        Passed to :func:`curiss.datasets.make_phantom` (noise-free).
    pixel_size : float, default 1.0
        Raster step in µm.
    origin : (float, float), default (0.0, 0.0)
        Stage position (y, x) in µm of pixel (0, 0).

    Attributes
    ----------
    phantom : curiss.datasets.Phantom
        The full truth (spectra, thickness maps, labels).
    """

    def __init__(self, n_energies: int = 60, shape: tuple[int, int] = (32, 32),
                 n_materials: int = 3, *, seed: None | int | np.random.Generator = None,
                 energy_range: tuple[float, float] = (700.0, 730.0),
                 pixel_size: float = 1.0, origin: tuple[float, float] = (0.0, 0.0)) -> None:
        self.phantom: Phantom = make_phantom(n_energies, shape, n_materials, seed=seed,
                                             energy_range=energy_range)
        super().__init__(self.phantom.energies, self.phantom.truth, pixel_size=pixel_size,
                         origin=origin)

    @property
    def spectra(self) -> np.ndarray:
        """Material spectra (n_E, n_materials) = the phantom's dictionary."""
        return self.phantom.spectra

    @property
    def dictionary(self) -> np.ndarray:
        """Reference spectra (n_E, n_materials) (= :attr:`spectra`)."""
        return self.phantom.spectra

    @property
    def labels(self) -> np.ndarray:
        """Dominant material per pixel (n_y, n_x), -1 on the background."""
        return self.phantom.labels
