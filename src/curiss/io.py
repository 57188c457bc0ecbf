"""Read recorded stacks and reference spectra; write stacks.

Formats read by :func:`load_stack`:

* the simple curiss ``.npz`` (written by :func:`save_stack`): ``energies`` (n_E,) eV,
  ``cube`` (n_E, n_y, n_x) OD, optional ``i0`` (n_E,), ``dictionary`` (n_E, n_refs),
  ``dictionary_names`` (n_refs,) str, ``name`` str;
* the converted ALS STXM ``.npz`` stacks of ``shared/data/als_stxm_fe_L23_breier2012``:
  ``energies_eV``, ``transmitted`` (n_E, n_y, n_x) counts, ``i0`` (n_E,), optional
  Fe(III)/Fe(II) references ``oxidized_t``/``reduced_t``.

Reference spectra (:func:`load_dictionary`) come from a text file with an energy
column (eV) and one column per reference, or from an ``.npz``.

Only numpy (and h5py, for later HDF5 readers) is imported here (layering rule).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Stack",
    "load_stack",
    "save_stack",
    "interpolate_dictionary",
    "read_reference_spectra",
    "load_dictionary",
    "ALS_PRE_EDGE_EV",
]

#: Upper bound (eV) of the pre-edge region of the ALS Fe L2,3 stacks (see shared/data/README.md).
ALS_PRE_EDGE_EV = 705.0


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Stack:
    """A spectromicroscopy stack with optional reference spectra.

    Attributes
    ----------
    energies : ndarray, shape (n_E,)
        Photon energies, eV, strictly increasing.
    cube : ndarray, shape (n_E, n_y, n_x)
        Optical density.
    i0 : ndarray, shape (n_E,), optional
        Incident intensity per energy, if known.
    dictionary : ndarray, shape (n_E, n_refs), optional
        Reference spectra on ``energies``.
    dictionary_names : tuple of str
        One name per dictionary column (empty without a dictionary).
    name : str
        A label (e.g. the file stem).

    Arrays are copied to float64 and made read-only.
    """

    energies: np.ndarray
    cube: np.ndarray
    i0: np.ndarray | None = None
    dictionary: np.ndarray | None = None
    dictionary_names: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        energies = np.asarray(self.energies, dtype=np.float64)
        if energies.ndim != 1 or energies.size < 1:
            raise ValueError(f"energies must be a non-empty 1-D array, got shape {energies.shape}")
        if not np.all(np.isfinite(energies)):
            raise ValueError("energies contain NaN/Inf")
        if np.any(np.diff(energies) <= 0):
            raise ValueError("energies must be strictly increasing")
        cube = np.asarray(self.cube, dtype=np.float64)
        if cube.ndim != 3:
            raise ValueError(f"cube must be 3-D (n_E, n_y, n_x), got shape {cube.shape}")
        if cube.shape[0] != energies.size:
            raise ValueError(
                f"cube has {cube.shape[0]} energies but energies has {energies.size} values"
            )
        object.__setattr__(self, "energies", _readonly(energies))
        object.__setattr__(self, "cube", _readonly(cube))
        if self.i0 is not None:
            i0 = np.asarray(self.i0, dtype=np.float64)
            if i0.shape != energies.shape:
                raise ValueError(f"i0 must have shape {energies.shape}, got {i0.shape}")
            object.__setattr__(self, "i0", _readonly(i0))
        names = tuple(str(n) for n in self.dictionary_names)
        if self.dictionary is not None:
            dic = np.asarray(self.dictionary, dtype=np.float64)
            if dic.ndim == 1:
                dic = dic[:, None]
            if dic.ndim != 2 or dic.shape[0] != energies.size:
                raise ValueError(
                    f"dictionary must have shape (n_E={energies.size}, n_refs), got {dic.shape}"
                )
            if not np.all(np.isfinite(dic)):
                raise ValueError("dictionary contains NaN/Inf")
            if not names:
                names = tuple(f"ref{i}" for i in range(dic.shape[1]))
            if len(names) != dic.shape[1]:
                raise ValueError(
                    f"dictionary has {dic.shape[1]} columns but {len(names)} dictionary_names"
                )
            object.__setattr__(self, "dictionary", _readonly(dic))
        elif names:
            raise ValueError("dictionary_names given without a dictionary")
        object.__setattr__(self, "dictionary_names", names)
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_y, n_x)``."""
        return (int(self.cube.shape[1]), int(self.cube.shape[2]))

    @property
    def n_energies(self) -> int:
        """``n_E``."""
        return int(self.energies.size)

    @property
    def matrix(self) -> np.ndarray:
        """The stack as ``D``, shape (n_E, n_y*n_x) (a read-only view)."""
        return self.cube.reshape(self.cube.shape[0], -1)


def _subtract_pre_edge(cube: np.ndarray, energies: np.ndarray, threshold: float) -> np.ndarray:
    below = energies < threshold
    if not np.any(below):
        raise ValueError(
            f"no energies below subtract_pre_edge={threshold} eV "
            f"(grid starts at {energies[0]:g} eV)"
        )
    return cube - cube[below].mean(axis=0, keepdims=True)


def _clip_positive(a: np.ndarray, name: str, path: Path) -> np.ndarray:
    bad = a <= 0
    if np.any(bad):
        positive = a[~bad]
        floor = 0.5 * float(positive.min()) if positive.size else 1.0
        warnings.warn(
            f"{path.name}: {int(bad.sum())} non-positive {name} value(s) clipped to {floor:g} "
            "before taking the logarithm",
            RuntimeWarning,
            stacklevel=3,
        )
        a = np.where(bad, floor, a)
    return a


def _resolve_pre_edge(value: Any, default: float | None) -> float | None:
    if value is None:
        return default
    if value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"subtract_pre_edge must be None (format default), False (off) or an energy in eV, "
            f"got {value!r}"
        )
    if not np.isfinite(value):
        raise ValueError(f"subtract_pre_edge must be finite, got {value!r}")
    return float(value)


def load_stack(path: str | os.PathLike, *, subtract_pre_edge: float | bool | None = None) -> Stack:
    """Read a stack from an ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        A curiss ``.npz`` (keys ``energies``, ``cube``) or a converted ALS STXM
        ``.npz`` (keys ``energies_eV``, ``transmitted``, ``i0``).
    subtract_pre_edge : float, False or None
        Subtract from each pixel its mean OD over energies below this value (eV).
        ``None`` uses the format's default: 705 eV (:data:`ALS_PRE_EDGE_EV`) for
        the ALS files, whose I0 is not the open-beam level of the images, and no
        subtraction for curiss files. ``False`` disables it.

    Returns
    -------
    Stack
        For the ALS files: OD = -ln(transmitted / i0) (non-positive counts are
        clipped to half the smallest positive count, with a ``RuntimeWarning``),
        ``i0`` kept, and when ``oxidized_t``/``reduced_t`` are present a dictionary
        with columns ``("oxidized", "reduced", "constant")``.

    Raises
    ------
    ValueError
        Unknown format, inconsistent shapes, NaN in the data, or no energy below
        the pre-edge threshold.
    """
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise ValueError(f"{p}: unsupported stack format {p.suffix!r}; expected a .npz file")
    with np.load(p, allow_pickle=False) as z:
        keys = set(z.files)
        if {"energies", "cube"} <= keys:
            return _load_simple(z, p, subtract_pre_edge)
        if {"energies_eV", "transmitted", "i0"} <= keys:
            return _load_als(z, p, subtract_pre_edge)
    raise ValueError(
        f"{p}: not a recognised stack; need keys (energies, cube) or "
        f"(energies_eV, transmitted, i0), found {sorted(keys)}"
    )


def _load_simple(z: Any, p: Path, subtract_pre_edge: Any) -> Stack:
    energies = np.asarray(z["energies"], dtype=np.float64)
    cube = np.asarray(z["cube"], dtype=np.float64)
    if not np.all(np.isfinite(cube)):
        raise ValueError(f"{p}: cube contains NaN/Inf values")
    threshold = _resolve_pre_edge(subtract_pre_edge, None)
    if threshold is not None:
        cube = _subtract_pre_edge(cube, energies, threshold)
    dictionary = z["dictionary"] if "dictionary" in z.files else None
    names: tuple[str, ...] = ()
    if dictionary is not None and "dictionary_names" in z.files:
        names = tuple(str(n) for n in np.atleast_1d(z["dictionary_names"]))
    name = str(z["name"]) if "name" in z.files else p.stem
    i0 = z["i0"] if "i0" in z.files else None
    return Stack(energies=energies, cube=cube, i0=i0, dictionary=dictionary,
                 dictionary_names=names, name=name)


def _load_als(z: Any, p: Path, subtract_pre_edge: Any) -> Stack:
    energies = np.asarray(z["energies_eV"], dtype=np.float64)
    counts = np.asarray(z["transmitted"], dtype=np.float64)
    i0 = np.asarray(z["i0"], dtype=np.float64)
    if counts.ndim != 3 or counts.shape[0] != energies.size or i0.shape != energies.shape:
        raise ValueError(
            f"{p}: inconsistent shapes: energies_eV {energies.shape}, transmitted "
            f"{counts.shape}, i0 {i0.shape}"
        )
    if not (np.all(np.isfinite(counts)) and np.all(np.isfinite(i0))):
        raise ValueError(f"{p}: transmitted or i0 contain NaN/Inf values")
    counts = _clip_positive(counts, "transmitted", p)
    i0_pos = _clip_positive(i0, "i0", p)
    cube = -np.log(counts / i0_pos[:, None, None])
    threshold = _resolve_pre_edge(subtract_pre_edge, ALS_PRE_EDGE_EV)
    if threshold is not None:
        cube = _subtract_pre_edge(cube, energies, threshold)
    dictionary = None
    names: tuple[str, ...] = ()
    if {"oxidized_t", "reduced_t"} <= set(z.files):
        ox = np.asarray(z["oxidized_t"], dtype=np.float64)
        red = np.asarray(z["reduced_t"], dtype=np.float64)
        dictionary = np.column_stack([ox, red, np.ones_like(ox)])
        names = ("oxidized", "reduced", "constant")
    name = p.stem[: -len("_stack")] if p.stem.endswith("_stack") else p.stem
    return Stack(energies=energies, cube=cube, i0=i0, dictionary=dictionary,
                 dictionary_names=names, name=name)


def save_stack(path: str | os.PathLike, stack: Stack) -> None:
    """Write ``stack`` as a curiss ``.npz`` (readable by :func:`load_stack`).

    Parameters
    ----------
    path : str or path-like
        Destination; numpy appends ``.npz`` if missing.
    stack : Stack
    """
    if not isinstance(stack, Stack):
        raise TypeError(f"stack must be a curiss.io.Stack, got {type(stack).__name__}")
    arrays: dict[str, np.ndarray] = {
        "energies": stack.energies,
        "cube": stack.cube,
        "name": np.asarray(stack.name),
    }
    if stack.i0 is not None:
        arrays["i0"] = stack.i0
    if stack.dictionary is not None:
        arrays["dictionary"] = stack.dictionary
        arrays["dictionary_names"] = np.asarray(stack.dictionary_names, dtype=str)
    np.savez_compressed(path, **arrays)


def interpolate_dictionary(ref_energies: Any, ref_spectra: Any, energies: Any) -> np.ndarray:
    """Linearly interpolate reference spectra onto a stack's energy grid.

    Parameters
    ----------
    ref_energies : array_like, shape (m,)
        Energies (eV) of the references; any order, no duplicates.
    ref_spectra : array_like, shape (m,) or (m, n_refs)
        One spectrum per column.
    energies : array_like, shape (n_E,)
        Target grid (eV).

    Returns
    -------
    ndarray, shape (n_E, n_refs)

    Raises
    ------
    ValueError
        NaN/Inf anywhere, mismatched lengths, duplicate reference energies, or a
        reference grid that does not cover ``[energies.min(), energies.max()]``
        (no extrapolation).
    """
    x = np.asarray(ref_energies, dtype=np.float64)
    y = np.asarray(ref_spectra, dtype=np.float64)
    e = np.asarray(energies, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"ref_energies must be 1-D with >= 2 values, got shape {x.shape}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != x.size:
        raise ValueError(
            f"ref_spectra must have shape ({x.size},) or ({x.size}, n_refs), got {y.shape}"
        )
    if e.ndim != 1 or e.size < 1:
        raise ValueError(f"energies must be a non-empty 1-D array, got shape {e.shape}")
    for arr, nm in ((x, "ref_energies"), (y, "ref_spectra"), (e, "energies")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{nm} contains NaN/Inf values")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) == 0):
        raise ValueError("ref_energies contain duplicate energies")
    tol = 1e-9 * max(abs(x[0]), abs(x[-1]), 1.0)
    if x[0] > e.min() + tol or x[-1] < e.max() - tol:
        raise ValueError(
            f"reference grid [{x[0]:g}, {x[-1]:g}] eV does not cover the stack's energies "
            f"[{e.min():g}, {e.max():g}] eV (check units: eV expected)"
        )
    e = np.clip(e, x[0], x[-1])
    return np.column_stack([np.interp(e, x, y[:, j]) for j in range(y.shape[1])])


_COLUMN_RE = re.compile(r"^\s*column\.(\d+)\s*:\s*(.+?)\s*$", re.IGNORECASE)


def read_reference_spectra(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read reference spectra on their own energy grid.

    Parameters
    ----------
    path : str or path-like
        * a text file: whitespace- or comma-separated columns, first column energy
          (eV), then one column per reference; lines starting with ``#`` or ``%``
          are comments. Names come from XDI ``# Column.N: name`` lines, else from
          the last comment line if it has one label per column, else
          ``<stem>_<j>``.
        * an ``.npz`` with an energy array (``energies``, ``energies_eV`` or
          ``energy``) and either ``dictionary`` (m, n_refs) with optional
          ``dictionary_names``, or one 1-D array per reference (named by key).

    Returns
    -------
    energies : ndarray, shape (m,)
    spectra : ndarray, shape (m, n_refs)
    names : tuple of str, length n_refs
    """
    p = Path(path)
    if p.suffix.lower() == ".npz":
        return _read_refs_npz(p)
    return _read_refs_text(p)


def _read_refs_npz(p: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    with np.load(p, allow_pickle=False) as z:
        ekey = next((k for k in ("energies", "energies_eV", "energy") if k in z.files), None)
        if ekey is None:
            raise ValueError(f"{p}: no energy array (energies, energies_eV or energy) found")
        energies = np.asarray(z[ekey], dtype=np.float64)
        if "dictionary" in z.files:
            spectra = np.asarray(z["dictionary"], dtype=np.float64)
            if spectra.ndim == 1:
                spectra = spectra[:, None]
            if "dictionary_names" in z.files:
                names = tuple(str(n) for n in np.atleast_1d(z["dictionary_names"]))
            else:
                names = tuple(f"{p.stem}_{j}" for j in range(spectra.shape[1]))
        else:
            cols = [k for k in z.files
                    if k != ekey and z[k].ndim == 1 and z[k].shape == energies.shape
                    and np.issubdtype(z[k].dtype, np.number)]
            if not cols:
                raise ValueError(f"{p}: no reference spectra of length {energies.size} found")
            spectra = np.column_stack([np.asarray(z[k], dtype=np.float64) for k in cols])
            names = tuple(cols)
    if spectra.shape[0] != energies.size or len(names) != spectra.shape[1]:
        raise ValueError(f"{p}: inconsistent reference arrays {energies.shape}, {spectra.shape}")
    return energies, spectra, names


def _read_refs_text(p: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    rows: list[list[float]] = []
    comments: list[str] = []
    with open(p, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            s = line.strip()
            if not s:
                continue
            if s[0] in "#%":
                comments.append(s.lstrip("#%").strip())
                continue
            try:
                rows.append([float(t) for t in re.split(r"[,\s]+", s) if t])
            except ValueError:
                raise ValueError(f"{p}:{lineno}: not a row of numbers: {s[:60]!r}") from None
    if not rows:
        raise ValueError(f"{p}: no numeric rows found")
    ncols = len(rows[0])
    if ncols < 2:
        raise ValueError(f"{p}: need >= 2 columns (energy, spectra...), found {ncols}")
    if any(len(r) != ncols for r in rows):
        raise ValueError(f"{p}: rows have different numbers of columns")
    data = np.asarray(rows, dtype=np.float64)

    names: tuple[str, ...] | None = None
    xdi = {}
    for c in comments:
        m = _COLUMN_RE.match(c)
        if m:
            xdi[int(m.group(1))] = m.group(2).split()[0]
    if all(j in xdi for j in range(2, ncols + 1)):
        names = tuple(xdi[j] for j in range(2, ncols + 1))
    elif comments:
        tokens = comments[-1].split()
        if len(tokens) == ncols:
            names = tuple(tokens[1:])
    if names is None:
        names = tuple(f"{p.stem}_{j}" for j in range(ncols - 1))
    return data[:, 0], data[:, 1:], names


def load_dictionary(path: str | os.PathLike, energies: Any) -> np.ndarray:
    """Read reference spectra and interpolate them onto ``energies``.

    Parameters
    ----------
    path : str or path-like
        Text or ``.npz`` file, see :func:`read_reference_spectra` (energies in eV).
    energies : array_like, shape (n_E,)
        The stack's energy grid, eV.

    Returns
    -------
    ndarray, shape (n_E, n_refs)
        Use :func:`read_reference_spectra` for the column names.

    Raises
    ------
    ValueError
        If the file's grid does not cover the stack's energies, or as in
        :func:`interpolate_dictionary`.
    """
    ref_e, spectra, _ = read_reference_spectra(path)
    return interpolate_dictionary(ref_e, spectra, energies)
