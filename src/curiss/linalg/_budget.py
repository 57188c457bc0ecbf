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

__all__ = ["budget", "images_first_budget", "balanced_budget", "minimum_ratio", "RatioTooSmallError"]


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


def _check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise TypeError(f"ratio must be a real number, got {ratio!r}")
    p = float(ratio)
    if not np.isfinite(p) or not (0.0 < p <= 1.0):
        raise ValueError(f"ratio must be finite and in (0, 1], got {ratio!r}")
    return p


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
    p = _check_ratio(ratio)

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


def images_first_budget(n_energies: int, shape: tuple[int, int], ratio: float, *,
                        n_rows: int = 1) -> tuple[int, int]:
    """Budget split that spends the ratio on images, keeping ``n_rows`` spatial rows.

    ``s_R = n_rows`` and ``s_E`` is the largest count with ``s_E·n_y + (n_E − s_E)·s_R ≤
    ratio·n_E·n_y``; falls back to the authors' rule (:func:`budget`) when that leaves no image.
    ``s_E`` is capped at ``n_E − 1``, and ``s_R`` stays ``n_rows`` whatever is left of the ratio:
    with very few energies or a ratio near 1 part of the budget is not spent (n_E = 2 at ratio
    1.0: one image and one row, 0.516 measured). Spending it would change the decisions of runs
    already recorded, which :func:`curiss.store.recompute` and :func:`curiss.plans.resume`
    must retrace; give ``budget_rule="authors"`` (:func:`budget`) to spend it.
    One spatial row scan costs about as much as one image when n_E ≈ n_y, and on the measured ALS
    stacks extra images reduce the worst-case error more than extra rows (docs/quality.md). The
    split of CURISS and ACURISS with ``budget_rule="images"`` and of RISS by default.

    Parameters
    ----------
    n_energies : int
        Number of energies n_E (>= 2).
    shape : (int, int)
        Field of view (n_y, n_x).
    ratio : float
        Target sampling ratio p, finite, in (0, 1].
    n_rows : int
        Spatial rows per non-imaged energy, in [1, n_y].

    Returns
    -------
    (n_images, n_rows) : tuple of int
        As :func:`budget`; the measured fraction never exceeds ``ratio``.

    Raises
    ------
    RatioTooSmallError
        When not even the authors' rule fits one image and one row.
    ValueError
        Bad sizes, ratio or ``n_rows``.
    """
    n_e, n_y, n_x = _check_sizes(n_energies, shape)
    p = _check_ratio(ratio)
    n_rows = as_int(n_rows, "n_rows", minimum=1)
    if n_rows > n_y:
        raise ValueError(f"n_rows must be <= n_y = {n_y}, got {n_rows}")
    total = p * n_e * n_y
    s_e = int(np.floor((total - n_e * n_rows) / (n_y - n_rows) + _EPS)) if n_y > n_rows else 0
    s_e = min(s_e, n_e - 1)
    if s_e < 1:
        return budget(n_e, (n_y, n_x), p)
    return s_e, n_rows


def balanced_budget(n_energies: int, shape: tuple[int, int], ratio: float, *, min_images: int = 5,
                    images_per_row: float = 2.5) -> tuple[int, int]:
    """Budget split that buys images first and a further spatial row only when images remain.

    The largest number of rows ``s_R >= 1`` for which :func:`images_first_budget` (with
    ``n_rows=s_R``) still leaves ``s_E >= min_images`` and ``s_E >= images_per_row * s_R``;
    one row when no ``s_R >= 2`` does (then it is :func:`images_first_budget`). ARP picks each row
    from the images' row basis, so rows need images first. The default split of CURISS and
    ACURISS (``budget_rule="balanced"``): measured on the ALS stacks and the phantom, the
    thresholds 5 and 2.5 keep the images-first split up to ratio ~0.05 and add a second and third
    row at 0.06-0.10, where one row limited the completion (docs/quality.md); they were tuned on
    those three stacks.

    Parameters
    ----------
    n_energies : int
        Number of energies n_E (>= 2).
    shape : (int, int)
        Field of view (n_y, n_x).
    ratio : float
        Target sampling ratio p, finite, in (0, 1].
    min_images : int
        Fewest images a split with two or more rows may leave (>= 1).
    images_per_row : float
        Fewest images per row a split with two or more rows may leave (finite, >= 0).

    Returns
    -------
    (n_images, n_rows) : tuple of int
        As :func:`budget`; the measured fraction never exceeds ``ratio``.

    Raises
    ------
    RatioTooSmallError
        When not even the authors' rule fits one image and one row.
    ValueError
        Bad sizes, ratio, ``min_images`` or ``images_per_row``.
    """
    n_e, n_y, n_x = _check_sizes(n_energies, shape)
    min_images = as_int(min_images, "min_images", minimum=1)
    if (isinstance(images_per_row, bool) or not isinstance(images_per_row, numbers.Real)
            or not np.isfinite(images_per_row) or images_per_row < 0):
        raise ValueError(f"images_per_row must be a finite number >= 0, got {images_per_row!r}")
    s_e, s_r = images_first_budget(n_e, (n_y, n_x), ratio)
    best = (s_e, s_r)
    for rows in range(2, n_y + 1):
        e, r = images_first_budget(n_e, (n_y, n_x), ratio, n_rows=rows)
        if r != rows or e < min_images or e < images_per_row * rows:
            break
        best = (e, r)
    return best
