"""Private input-validation helpers shared by the :mod:`curiss.linalg` kernels."""

from __future__ import annotations

import numbers

import numpy as np

__all__: list[str] = []


def check_seed(seed, name: str = "seed"):
    """Return ``seed`` if it is None, a non-negative int or a ``numpy.random.Generator``.

    A bool is refused (it would be drawn as seed 0 or 1), and so is a negative int (numpy's own
    message does not name the argument).
    """
    if isinstance(seed, (bool, np.bool_)) or (
            seed is not None and not isinstance(seed, (numbers.Integral, np.random.Generator))):
        raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got {seed!r} "
                        f"({type(seed).__name__})")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return seed


def is_real_dtype(arr: np.ndarray) -> bool:
    """Whether ``arr`` holds real numbers: an integer or floating dtype (not bool, complex, text
    or object), which float64 represents without reinterpreting them."""
    return arr.dtype != bool and np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)


def as_rng(rng: None | int | np.random.Generator, name: str = "rng") -> np.random.Generator:
    """Normalise ``rng`` (None, int seed or Generator, checked by :func:`check_seed`, which names
    ``name`` in its message) to a Generator; a Generator is returned as is."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(check_seed(rng, name))


def as_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python int, checking type and bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def as_bool(value, name: str) -> bool:
    """Return ``value`` as a Python bool: True/False (or a numpy bool) only, so that a string
    such as ``"False"`` is refused instead of counting as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def as_float(value, name: str, *, minimum: float | None = None) -> float:
    """Return ``value`` as a finite Python float, optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_rtol(value, name: str) -> float:
    """A relative singular-value cut (``s > value * s_1``) as a float in [0, 1): 1 or more keeps
    no singular value at all (a rank-0 result, all zeros)."""
    value = as_float(value, name, minimum=0.0)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1) (a fraction of the largest singular value; "
                         f"1 or more keeps none and gives a rank-0, all-zero result); got {value}")
    return value


def as_matrix(a, name: str, *, finite: bool = True) -> np.ndarray:
    """Return ``a`` as a 2-D float64 array (no copy when possible), checking finiteness."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf; all entries must be finite")
    return arr


def as_index_array(idx, name: str, *, upper: int | None = None, distinct: bool = True) -> np.ndarray:
    """Return ``idx`` as a 1-D ``intp`` array of indices in ``[0, upper)``."""
    arr = np.asarray(idx)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.intp)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must contain integers, got dtype {arr.dtype}")
    arr = arr.astype(np.intp)
    if arr.min() < 0 or (upper is not None and arr.max() >= upper):
        bound = f"[0, {upper})" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be indices in {bound}, got min {arr.min()}, max {arr.max()}")
    if distinct and np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must not contain repeated indices")
    return arr


def pow2_scale(maxabs: float, *, even: bool = False) -> float:
    """A power of two close to ``maxabs`` (> 0, finite): ``2**k`` with ``maxabs / 2**k`` in [1, 2)
    ([1, 4) with an even ``k`` when ``even``).  Dividing by it is exact, so kernels that normalise
    their input with it give bit-identical results for data of ordinary magnitude.  Returns 1.0
    when ``maxabs`` is 0."""
    if maxabs == 0.0:
        return 1.0
    k = int(np.frexp(maxabs)[1]) - 1
    if even and k % 2:
        k -= 1
    return float(np.ldexp(1.0, k))
