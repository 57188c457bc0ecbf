"""Synthetic spectromicroscopy phantoms with a known ground truth.

A phantom is a small sample made of a few materials.  Each material has an
XANES-like absorption spectrum (an L-edge-like shape: pre-edge slope, two
arctan edge steps and Lorentzian white lines, shifted by a fraction of an eV
to a few eV between materials like Fe(II)/Fe(III) at the Fe L3 edge) and a
non-negative thickness map made of elliptic particles (some overlapping, each
with a smooth thickness gradient) on an empty background.  The optical-density
cube is the bilinear mixture

    cube[e, y, x] = sum_m spectra[e, m] * thickness[m, y, x],

so the noise-free cube, unfolded to D = cube.reshape(n_E, n_y * n_x), has rank
at most ``n_materials``.

Only numpy is used.  Randomness comes from ``seed`` (None, an int or a
:class:`numpy.random.Generator`); the same int gives the same phantom.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from .linalg._checks import as_rng

__all__ = ["Phantom", "make_phantom", "BACKGROUND_LABEL"]

#: Label of empty (zero-thickness) pixels in :attr:`Phantom.labels`.
BACKGROUND_LABEL = -1

#: Maximum optical density of the noise-free cube (thickness maps are scaled to it).
_PEAK_OD = 1.5

#: Minimum fraction of empty pixels in a phantom (layouts are redrawn until met).
_MIN_BACKGROUND = 0.1


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic sample with known truth.

    All arrays are read-only (``writeable=False``); copy them to modify.

    Attributes
    ----------
    energies : ndarray, shape (n_E,)
        Photon energies in eV, strictly increasing.
    cube : ndarray, shape (n_E, n_y, n_x)
        Optical density as "measured": ``truth`` plus Gaussian noise of standard
        deviation ``noise`` (the very same array as ``truth`` when ``noise == 0``).
    truth : ndarray, shape (n_E, n_y, n_x)
        Noise-free optical density, ``einsum("em,myx->eyx", spectra, thickness)``.
    spectra : ndarray, shape (n_E, n_materials)
        Absorption of unit thickness of each material (OD per unit thickness),
        positive; each column's maximum (over a fine energy grid) is between 0.8 and 1.2.
    thickness : ndarray, shape (n_materials, n_y, n_x)
        Non-negative thickness maps (arbitrary units, scaled so that
        ``truth.max() == 1.5``); exactly 0 on the empty background (at least
        10 % of the pixels, except in the rare case that 50 redraws all fail).
    labels : ndarray of int, shape (n_y, n_x)
        Dominant material (largest thickness) per pixel, in ``0 .. n_materials-1``;
        ``BACKGROUND_LABEL`` (-1) where every thickness is 0.
    noise : float
        Standard deviation of the Gaussian noise added to ``cube`` (OD units).
    """

    energies: np.ndarray
    cube: np.ndarray
    truth: np.ndarray
    spectra: np.ndarray
    thickness: np.ndarray
    labels: np.ndarray
    noise: float = 0.0

    @property
    def dictionary(self) -> np.ndarray:
        """Reference spectra on the phantom's grid, shape (n_E, n_materials) (= ``spectra``)."""
        return self.spectra

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial shape ``(n_y, n_x)``."""
        return (int(self.cube.shape[1]), int(self.cube.shape[2]))

    @property
    def n_energies(self) -> int:
        """Number of energies n_E."""
        return int(self.energies.shape[0])

    @property
    def n_materials(self) -> int:
        """Number of materials."""
        return int(self.spectra.shape[1])

    @property
    def background(self) -> np.ndarray:
        """Boolean map (n_y, n_x), True where the sample is empty (zero thickness)."""
        return self.labels == BACKGROUND_LABEL

    @property
    def D(self) -> np.ndarray:
        """The stack unfolded to (n_E, n_y * n_x) (a read-only view of ``cube``)."""
        return self.cube.reshape(self.cube.shape[0], -1)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _material_spectra(energies: np.ndarray, n_materials: int, rng: np.random.Generator,
                      lo: float, hi: float) -> np.ndarray:
    """L-edge-like absorption spectra, shape (n_E, n_materials)."""
    width = hi - lo
    params = []
    # Chemical shift between consecutive materials: ~1.5 eV on a 30 eV range,
    # squeezed so that all shifts together stay within 15 % of the range.
    step = width * min(0.05, 0.15 / max(n_materials - 1, 1))

    def jitter(scale: float) -> float:
        return 1.0 + scale * rng.uniform(-1.0, 1.0)

    for m in range(n_materials):
        frac = m / max(n_materials - 1, 1)
        shift = m * step + 0.004 * width * rng.uniform(-1.0, 1.0)
        gamma = 0.015 * width * jitter(0.15)                  # white-line half width
        edge_w = 0.02 * width * jitter(0.15)                  # edge-step width
        p3a = lo + 0.26 * width + shift                       # L3 low-energy peak
        p3b = p3a + 0.05 * width * jitter(0.1)                # L3 high-energy peak
        p2 = lo + 0.70 * width + shift                        # L2 peak
        # Reduced-like materials have the low-energy L3 peak dominant, oxidised-like the high one.
        a_low = (0.85 - 0.6 * frac) * jitter(0.05)
        a_high = (0.25 + 0.6 * frac) * jitter(0.05)
        step3 = 0.35 * jitter(0.1)
        pre0 = 0.06 + 0.03 * frac
        a_l2 = 0.3 * jitter(0.1)

        params.append((pre0, step3, edge_w, gamma, p3a, p3b, p2, a_low, a_high, a_l2))

    def evaluate(e: np.ndarray, pr) -> np.ndarray:
        pre0, step3, edge_w, gamma, p3a, p3b, p2, a_low, a_high, a_l2 = pr

        def lorentz(center, half_width):
            return 1.0 / (1.0 + ((e - center) / half_width) ** 2)

        def arctan_step(center, w):
            return 0.5 + np.arctan((e - center) / w) / np.pi

        return (pre0 * (1.0 - 0.4 * (e - lo) / width)           # smooth pre-edge slope
                + step3 * arctan_step(p3a + 0.5 * gamma, edge_w)  # L3 edge step
                + 0.5 * step3 * arctan_step(p2 + 0.5 * gamma, edge_w)  # L2 edge step
                + a_low * lorentz(p3a, gamma)
                + a_high * lorentz(p3b, gamma)
                + a_l2 * lorentz(p2, 1.5 * gamma))

    # Normalise on a fine grid (not the sampled one) so that a material's
    # absorption does not depend on n_energies; then vary the strength.
    fine = np.linspace(lo, hi, 4001)
    strength = rng.uniform(0.8, 1.2, size=n_materials)
    spectra = np.empty((energies.size, n_materials))
    for m, pr in enumerate(params):
        spectra[:, m] = evaluate(energies, pr) / evaluate(fine, pr).max() * strength[m]
    return spectra


def _ellipse(yy, xx, cy, cx, a, b, angle, amp, grad, grad_angle):
    """Dome-shaped particle with a linear thickness gradient; 0 outside the ellipse."""
    c, s = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * c + (yy - cy) * s) / a
    v = (-(xx - cx) * s + (yy - cy) * c) / b
    r2 = u * u + v * v
    dome = np.sqrt(np.clip(1.0 - r2, 0.0, None))
    g = ((xx - cx) * np.cos(grad_angle) + (yy - cy) * np.sin(grad_angle)) / max(a, b)
    return amp * dome * (1.0 + grad * g)


def _thickness_maps(shape: tuple[int, int], n_materials: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Thickness maps (n_materials, n_y, n_x), >= 0, with empty background."""
    n_y, n_x = shape
    yy, xx = np.meshgrid(np.arange(n_y, dtype=float), np.arange(n_x, dtype=float),
                         indexing="ij")
    size = min(n_y, n_x)
    area = n_y * n_x
    # ~50 % coverage: particles per material scale with the area of the field.
    mean_a = 0.14 * size
    per_material = max(1, int(round(0.55 * area / (np.pi * 0.7 * mean_a**2) / n_materials)))
    per_material = min(per_material, 12)
    thickness = np.zeros((n_materials, n_y, n_x))
    centres: list[tuple[float, float, float, int]] = []  # (cy, cx, minor semi-axis, material)
    for m in range(n_materials):
        # the first particle of each material is placed freely and thick (so that
        # every material dominates somewhere); later ones may sit on particles of
        # other materials (mixed pixels), one of them always does when m > 0.
        count = max(2 if m > 0 else 1, per_material + int(rng.integers(-1, 2)))
        for j in range(count):
            a = max(1.0, mean_a * rng.uniform(0.5, 1.6))
            b = max(1.0, a * rng.uniform(0.55, 1.0))
            others = [c for c in centres if c[3] != m]
            overlap = j > 0 and others and (j == 1 or rng.random() < 0.3)
            if overlap:
                oy, ox, orad, _ = others[int(rng.integers(len(others)))]
                ang = rng.uniform(0, 2 * np.pi)
                dist = rng.uniform(0.2, 0.8) * orad  # centre inside the other particle
                cy = float(np.clip(oy + dist * np.sin(ang), 0, n_y - 1))
                cx = float(np.clip(ox + dist * np.cos(ang), 0, n_x - 1))
                amp = rng.uniform(0.3, 0.7)
            else:
                cy = rng.uniform(0, n_y - 1)
                cx = rng.uniform(0, n_x - 1)
                amp = rng.uniform(0.6, 1.0) if j > 0 else 1.0
            thickness[m] += _ellipse(yy, xx, cy, cx, a, b, rng.uniform(0, np.pi), amp,
                                     rng.uniform(-0.5, 0.5), rng.uniform(0, 2 * np.pi))
            centres.append((cy, cx, b, m))
    return thickness


def make_phantom(
    n_energies: int = 60,
    shape: tuple[int, int] = (32, 32),
    n_materials: int = 3,
    *,
    seed: None | int | np.random.Generator = None,
    energy_range: tuple[float, float] = (700.0, 730.0),
    noise: float = 0.0,
) -> Phantom:
    """Make a synthetic spectromicroscopy phantom with a known low-rank truth.

    Parameters
    ----------
    n_energies : int, default 60
        Number of energies n_E (>= 2), evenly spaced over ``energy_range``.
    shape : (int, int), default (32, 32)
        Spatial shape ``(n_y, n_x)``, each >= 4.
    n_materials : int, default 3
        Number of materials, 1 <= n_materials <= n_energies.  Beyond ~6 the
        spectra become increasingly similar (all shifts fit in 15 % of the range).
    seed : None, int or numpy.random.Generator, optional
        Source of randomness (spectra jitter, particles, noise).  An int gives a
        reproducible phantom.
    energy_range : (float, float), default (700.0, 730.0)
        First and last energy in eV, ``low < high``.  The L-edge-like features
        sit at fixed fractions of the range (L3 at ~26 %, L2 at ~70 %), i.e. at
        the Fe L3/L2 edges for the default range.
    noise : float, default 0.0
        Standard deviation (OD units) of Gaussian noise added to ``cube``;
        ``truth`` always holds the noise-free cube.

    Returns
    -------
    Phantom
        With ``energies`` (n_E,), ``cube`` and ``truth`` (n_E, n_y, n_x),
        ``spectra`` (n_E, n_materials), ``thickness`` (n_materials, n_y, n_x)
        and ``labels`` (n_y, n_x) (-1 on the background).  The noise-free cube
        has maximum OD 1.5 and rank <= n_materials.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> ph = make_phantom(40, (16, 16), 2, seed=0)
    >>> ph.cube.shape, ph.spectra.shape, ph.thickness.shape
    ((40, 16, 16), (40, 2), (2, 16, 16))
    """
    n_energies = _check_int("n_energies", n_energies, 2)
    n_materials = _check_int("n_materials", n_materials, 1)
    if n_materials > n_energies:
        raise ValueError(
            f"n_materials must be <= n_energies ({n_energies}), got {n_materials}"
        )
    try:
        shape_t = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a pair of ints (n_y, n_x), got {shape!r}") from None
    if len(shape_t) != 2:
        raise ValueError(f"shape must be a pair (n_y, n_x), got {shape!r}")
    n_y = _check_int("shape[0] (n_y)", shape_t[0], 4)
    n_x = _check_int("shape[1] (n_x)", shape_t[1], 4)
    try:
        lo, hi = (float(v) for v in energy_range)
    except (TypeError, ValueError):
        raise TypeError(
            f"energy_range must be a pair of floats (low, high) in eV, got {energy_range!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"energy_range must be finite with low < high, got {energy_range!r}")
    if isinstance(noise, bool) or not isinstance(noise, Real):
        raise TypeError(f"noise must be a float >= 0, got {type(noise).__name__}")
    noise = float(noise)
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite float >= 0, got {noise}")
    rng = as_rng(seed, "seed")  # (True was drawn as seed 1)

    energies = np.linspace(lo, hi, n_energies)
    spectra = _material_spectra(energies, n_materials, rng, lo, hi)
    # Redraw the (rare) layouts that leave less than 10 % of the field empty.
    for _ in range(50):
        thickness = _thickness_maps((n_y, n_x), n_materials, rng)
        if np.mean(thickness.sum(axis=0) == 0) >= _MIN_BACKGROUND:
            break
    truth = np.einsum("em,myx->eyx", spectra, thickness)
    scale = _PEAK_OD / truth.max()
    thickness *= scale
    truth *= scale
    total = thickness.sum(axis=0)
    labels = np.where(total > 0, np.argmax(thickness, axis=0), BACKGROUND_LABEL).astype(np.intp)
    if noise > 0:
        cube = truth + rng.normal(0.0, noise, size=truth.shape)
    else:
        cube = truth
    for arr in (energies, cube, truth, spectra, thickness, labels):
        arr.setflags(write=False)
    return Phantom(energies=energies, cube=cube, truth=truth, spectra=spectra,
                   thickness=thickness, labels=labels, noise=noise)
