"""Sampling budget of CURISS: how many full images and how many spatial rows per other energy.

Authors' rule (Meier et al., arXiv:2602.03744): for a sampling ratio p, a stack of n_E energies and
a field of view of n_y lines by n_x pixels,

    s_E = ceil(n_y n_E p / (n_y + n_E))                           full images,
    s_R = floor((p n_E n_x n_y - s_E n_x n_y) / ((n_E - s_E) n_x))  spatial rows per other energy;

if s_R < 1, s_E is recomputed with floor; if still s_E < 1 or s_R < 1 the ratio is too small.
The measured fraction (s_E n_y + (n_E - s_E) s_R) / (n_E n_y) never exceeds p.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._checks import as_int

__all__ = ["budget", "minimum_ratio", "RatioTooSmallError"]


class RatioTooSmallError(ValueError):
    """A sampling ratio below the smallest one a strategy can spend (the message names it)."""

# Absolute slack for ceil/floor of quantities of size <= max(n_y, n_E): guards round-off such as
# floor(0.9999999999999999) when the exact value is an integer (e.g. ratio == minimum_ratio(...)).
_EPS = 1e-9


def _check_sizes(n_energies, shape) -> tuple[int, int, int]:
    n_e = as_int(n_energies, "n_energies")
    if n_e < 2:
        raise ValueError(
            f"n_energies must be >= 2 (at least one energy is imaged and one is not), got {n_e}"
        )
    try:
        n_y, n_x = shape
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair (n_y, n_x), got {shape!r}") from None
    n_y = as_int(n_y, "shape[0] (n_y)", minimum=1)
    n_x = as_int(n_x, "shape[1] (n_x)", minimum=1)
    return n_e, n_y, n_x


def minimum_ratio(n_energies: int, shape: tuple[int, int]) -> float:
    """Smallest sampling ratio accepted by :func:`budget`.

    It corresponds to one full image and one spatial row at each other energy (s_E = s_R = 1):
    ``(n_y + n_E - 1) / (n_E * n_y)``.

    Parameters
    ----------
    n_energies : int
        Number of energies n_E (>= 2).
    shape : (int, int)
        Field of view (n_y, n_x): lines by pixels per line.

    Returns
    -------
    float
        The minimum ratio, in (0, 1].
    """
    n_e, n_y, _ = _check_sizes(n_energies, shape)
    return (n_y + n_e - 1) / (n_e * n_y)


def budget(n_energies: int, shape: tuple[int, int], ratio: float) -> tuple[int, int]:
    """Number of full images s_E and spatial rows per non-imaged energy s_R for a sampling ratio.

    Parameters
    ----------
    n_energies : int
        Number of energies n_E (>= 2).
    shape : (int, int)
        Field of view (n_y, n_x).
    ratio : float
        Target sampling ratio p (fraction of the n_E * n_y * n_x values measured), finite, in (0, 1].

    Returns
    -------
    (n_images, n_rows) : tuple of int
        ``s_E`` in [1, n_E - 1] (s_E is clipped to n_E - 1 so that at least one energy is left
        for row scans) and ``s_R`` in [1, n_y] (clipped to n_y).

    Raises
    ------
    RatioTooSmallError
        (a ``ValueError``) ``"ratio too small: minimum is ..."`` when
        ``ratio < minimum_ratio(n_energies, shape)``.
    ValueError
        ratio not finite or outside (0, 1]; bad sizes.
    """
    n_e, n_y, n_x = _check_sizes(n_energies, shape)
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise TypeError(f"ratio must be a real number, got {ratio!r}")
    p = float(ratio)
    if not np.isfinite(p) or not (0.0 < p <= 1.0):
        raise ValueError(f"ratio must be finite and in (0, 1], got {ratio!r}")

    x = n_y * n_e * p / (n_y + n_e)

    def rows_for(s_e: int) -> int:
        s_e = min(s_e, n_e - 1)
        s_r = math.floor((p * n_e * n_x * n_y - s_e * n_x * n_y) / ((n_e - s_e) * n_x) + _EPS)
        return min(s_r, n_y)

    s_e = min(math.ceil(x - _EPS), n_e - 1)
    s_r = rows_for(s_e)
    if s_r < 1:
        s_e = min(math.floor(x + _EPS), n_e - 1)
        s_r = rows_for(s_e) if s_e >= 1 else 0
    if s_e < 1 or s_r < 1:
        minimum = minimum_ratio(n_e, (n_y, n_x))
        raise RatioTooSmallError(
            f"ratio too small: minimum is {minimum:.4g} for n_energies={n_e}, "
            f"shape=({n_y}, {n_x}) (got ratio={p:.4g})"
        )
    return int(s_e), int(s_r)
