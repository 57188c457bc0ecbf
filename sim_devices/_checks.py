"""Input checks shared by the sample models and the devices (private): reals, positive floats
and the detector's ``i0``. Counts, booleans and seeds use :mod:`curiss.linalg._checks`
(``as_int``, ``as_bool``, ``check_seed``), so their messages read like curiss's own.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__: list[str] = []

#: Largest ``i0`` (incident photons per pixel) a detector accepts: its Poisson counts must stay
#: below :data:`POISSON_LAM_MAX` (a margin of ~9x, for negative OD, where counts exceed i0).
I0_MAX = 1e18

#: numpy's largest Poisson mean: ``Generator.poisson`` raises "lam value too large" above it.
POISSON_LAM_MAX = float(np.iinfo(np.int64).max - 10 * np.sqrt(np.iinfo(np.int64).max))


def check_real(name: str, value, what: str) -> float:
    """``value`` as a float; a bool, a str, None or an array is refused (``what`` says the unit)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number ({what}), got {value!r} "
                        f"({type(value).__name__})")
    return float(value)


def positive_float(name: str, value, *, maximum: float | None = None, why: str = "") -> float:
    """A finite float > 0 (at most ``maximum``, ``why`` says why); bools and strings refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a positive float, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite float > 0, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}{why}, got {value:g}")
    return value


def check_i0(value, name: str = "i0") -> float:
    """Incident photons per pixel: a finite float in (0, :data:`I0_MAX`]."""
    return positive_float(name, value, maximum=I0_MAX,
                          why=f" photons per pixel (numpy's Poisson sampling handles expected "
                              f"counts up to about {POISSON_LAM_MAX:.2g})")
