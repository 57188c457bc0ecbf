"""Input checks shared by the sample models and the devices (private).

Counts and booleans reuse :mod:`curiss.linalg._checks` (``as_int``, ``as_bool``), so their
messages read like curiss's own. Seeds are checked here: curiss's seed checks
(``curiss.planners._base.validate_seed``, ``curiss.datasets._as_rng``) are private and name
``seed`` only, while :meth:`SampleBase.measure_row` calls its seed ``rng``; this one has the same
rules and wording as ``curiss.datasets`` with the argument's name as a parameter.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from curiss.linalg._checks import as_bool, as_int

__all__: list[str] = []

#: Largest ``i0`` (incident photons per pixel) a detector accepts: its Poisson counts must stay
#: below :data:`POISSON_LAM_MAX` (a margin of ~9x, for negative OD, where counts exceed i0).
I0_MAX = 1e18

#: numpy's largest Poisson mean: ``Generator.poisson`` raises "lam value too large" above it.
POISSON_LAM_MAX = float(np.iinfo(np.int64).max - 10 * np.sqrt(np.iinfo(np.int64).max))


def check_bool(name: str, value) -> bool:
    """``value`` as a bool: True/False or a numpy bool only (``"False"`` would count as True)."""
    return as_bool(value, name)


def check_count(value, name: str = "count") -> int:
    """A non-negative int (numpy ints too); a float, a str or a bool is refused, not truncated."""
    return as_int(value, name, minimum=0)


def check_seed(name: str, seed):
    """Return ``seed`` if it is None, a non-negative int or a numpy Generator, else raise.

    Raises
    ------
    TypeError
        A bool (it would be drawn as seed 0 or 1), a float, a str, ...
    ValueError
        A negative int (numpy's message would not name the argument).
    """
    if isinstance(seed, (bool, np.bool_)) or (
            seed is not None and not isinstance(seed, (Integral, np.random.Generator))):
        raise TypeError(f"{name} must be None, a non-negative int or a numpy.random.Generator, "
                        f"got {seed!r} ({type(seed).__name__})")
    if isinstance(seed, Integral) and seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return seed


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
