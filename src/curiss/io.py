"""Read recorded stacks and reference spectra; write stacks and results.

Formats read by :func:`load_stack` (dispatch on the suffix, HDF5 flavour by content):

* the simple curiss ``.npz`` (written by :func:`save_stack`): ``energies`` (n_E,) eV,
  ``cube`` (n_E, n_y, n_x) OD, optional ``i0`` (n_E,), ``dictionary`` (n_E, n_refs),
  ``dictionary_names`` (n_refs,) str, ``name`` str;
* the converted ALS STXM ``.npz`` stacks of ``shared/data/als_stxm_fe_L23_breier2012``:
  ``energies_eV``, ``transmitted`` (n_E, n_y, n_x) counts, ``i0`` (n_E,), optional
  Fe(III)/Fe(II) references ``oxidized_t``/``reduced_t``.
* ``.hdr``: the ALS/aXis raw STXM format, a text header plus one ``<id>_aNNN.xim``
  text image per energy and an optional ``i0.xsp`` (:func:`read_als_hdr`);
* ``.h5``/``.hdf5``/``.hdf``/``.nxs``/``.nx5``: MANTiS data-exchange (``/exchange/data``,
  :func:`read_dataexchange`, written by :func:`write_dataexchange`) or NeXus NXstxm
  (:func:`read_nxstxm`), told apart by content.

Results are exported by :func:`write_nexus` as an NXstxm NeXus file MANTiS can open as a
stack (the completed OD cube) with the sampling mask, cluster labels and spectra,
eigenspectra and metadata alongside; :func:`read_nexus_results` reads it back.

Reference spectra (:func:`load_dictionary`) come from a text file with an energy
column (eV) and one column per reference, or from an ``.npz``.

Only numpy and h5py are imported here (layering rule); the format details live in
the private modules ``curiss._formats_als`` and ``curiss._formats_hdf5``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _formats_als as _als
from . import _formats_hdf5 as _h5
from .linalg._checks import is_real_dtype

__all__ = [
    "Stack",
    "load_stack",
    "save_stack",
    "interpolate_dictionary",
    "read_reference_spectra",
    "load_dictionary",
    "ALS_PRE_EDGE_EV",
    "read_als_hdr",
    "read_dataexchange",
    "write_dataexchange",
    "read_nxstxm",
    "write_nexus",
    "read_nexus_results",
    "HDF5_SUFFIXES",
]

#: File suffixes :func:`load_stack` opens as HDF5 (data-exchange or NeXus, by content).
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5", ".nexus")

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
    x_um, y_um : ndarray, shape (n_x,) and (n_y,), optional
        Sample positions of the columns and rows, µm, when the file records them.

    Arrays are copied to float64 and made read-only.
    """

    energies: np.ndarray
    cube: np.ndarray
    i0: np.ndarray | None = None
    dictionary: np.ndarray | None = None
    dictionary_names: tuple[str, ...] = ()
    name: str = ""
    x_um: np.ndarray | None = None
    y_um: np.ndarray | None = None

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
            if not np.all(np.isfinite(i0)):
                raise ValueError("i0 contains NaN/Inf")
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
        for attr, n in (("x_um", cube.shape[2]), ("y_um", cube.shape[1])):
            pos = getattr(self, attr)
            if pos is not None:
                pos = np.asarray(pos, dtype=np.float64)
                if pos.shape != (n,):
                    raise ValueError(f"{attr} must have shape ({n},), got {pos.shape}")
                object.__setattr__(self, attr, _readonly(pos))

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
    if np.all(below):  # the "pre-edge" would be the whole stack: every spectrum's mean removed
        raise ValueError(
            f"subtract_pre_edge={threshold} eV is above the whole energy grid "
            f"({energies[0]:g}-{energies[-1]:g} eV): give an energy below the absorption edge"
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
    """Read a stack from any supported file, choosing the reader by suffix.

    Parameters
    ----------
    path : str or path-like
        * ``.npz``: a curiss ``.npz`` (keys ``energies``, ``cube``) or a converted ALS
          STXM ``.npz`` (keys ``energies_eV``, ``transmitted``, ``i0``);
        * ``.hdr``: ALS/aXis raw stack, see :func:`read_als_hdr` (I0 from ``i0.xsp``
          next to it);
        * ``.h5``, ``.hdf5``, ``.hdf``, ``.nxs``, ``.nx5``, ``.nexus``: MANTiS
          data-exchange (:func:`read_dataexchange`) if the file has
          ``/exchange/data``, else NeXus NXstxm (:func:`read_nxstxm`, first entry and
          channel) -- including files written by :func:`write_nexus`.
    subtract_pre_edge : float, False or None
        Subtract from each pixel its mean OD over energies below this value (eV).
        ``None`` uses the format's default: 705 eV (:data:`ALS_PRE_EDGE_EV`) for
        the converted ALS ``.npz`` files, whose I0 is not the open-beam level of the
        images, and no subtraction for all other formats (including ``.hdr``, which
        may hold any edge). ``False`` disables it.

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
        (or none above) the pre-edge threshold.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".hdr":
        return read_als_hdr(p, subtract_pre_edge=subtract_pre_edge)
    if suffix in HDF5_SUFFIXES:
        kind = _h5.hdf5_kind(p)
        if kind == "dataexchange":
            return read_dataexchange(p, subtract_pre_edge=subtract_pre_edge)
        if kind == "nxstxm":
            return read_nxstxm(p, subtract_pre_edge=subtract_pre_edge)
        raise ValueError(
            f"{p}: unsupported HDF5 layout: neither data-exchange (/exchange/data) nor NeXus "
            "(an NXentry group holding an NXdata group)"
        )
    if suffix == ".xim":
        raise ValueError(f"{p}: open the stack's .hdr header, not a single .xim image")
    if suffix != ".npz":
        raise ValueError(
            f"{p}: unsupported stack format {p.suffix!r}; expected .npz, .hdr or one of "
            f"{', '.join(HDF5_SUFFIXES)}"
        )
    with _open_npz(p, "stack") as z:
        keys = set(z.files)
        if {"energies", "cube"} <= keys:
            return _load_simple(z, p, subtract_pre_edge)
        if {"energies_eV", "transmitted", "i0"} <= keys:
            return _load_als(z, p, subtract_pre_edge)
    raise ValueError(
        f"{p}: not a recognised stack; need keys (energies, cube) or "
        f"(energies_eV, transmitted, i0), found {sorted(keys)}"
    )


class _NpzArrays(Mapping):
    """The arrays of an open ``.npz``: a member that is not a readable ``.npy`` array is a
    ``ValueError`` naming the file and the key (numpy's own messages name neither)."""

    _ERRORS = (ValueError, zipfile.BadZipFile, EOFError, zlib.error)

    def __init__(self, z: Any, p: Path, what: str):
        self._z, self._p, self._what = z, p, what
        self.files = list(z.files)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.files:
            raise KeyError(key)
        try:
            a = self._z[key]
        except self._ERRORS as exc:
            raise ValueError(f"{self._p}: not a valid .npz {self._what}: array {key!r} cannot "
                             f"be read ({exc})") from exc
        if not isinstance(a, np.ndarray):  # numpy returns a member without the .npy header as bytes
            raise ValueError(f"{self._p}: not a valid .npz {self._what}: {key!r} is not a .npy array")
        return a

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


@contextlib.contextmanager
def _open_npz(p: Path, what: str) -> Iterator[_NpzArrays]:
    """``np.load(p)`` of an ``.npz`` file; a file that is not one is a ``ValueError`` naming it.

    A missing or unreadable file stays an ``OSError`` (it names the file).
    """
    if p.is_dir():
        raise ValueError(f"{p}: not a valid .npz {what}: it is a directory, not a file")
    try:
        z = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError) as exc:  # truncated or damaged zip, empty file
        raise ValueError(f"{p}: not a valid .npz {what}: not a complete zip archive of .npy "
                         f"arrays ({exc}); truncated or damaged?") from exc
    except ValueError as exc:  # numpy: no zip or .npy header, so it tried (and refused) pickle
        raise ValueError(f"{p}: not a valid .npz {what}: neither a zip archive of .npy arrays "
                         f"nor a .npy array") from exc
    if not hasattr(z, "files"):  # a bare .npy array under an .npz name
        raise ValueError(f"{p}: not a valid .npz {what}: a single .npy array, not a zip archive "
                         f"of named arrays")
    with z:
        yield _NpzArrays(z, p, what)


def _real(z: Any, key: str, p: Path) -> np.ndarray:
    """``z[key]`` as float64; a complex, bool or non-numeric array is refused (numpy would drop
    the imaginary part with only a warning, or fail with its own message)."""
    a = np.asarray(z[key])
    if not is_real_dtype(a):  # (a bool array would be read as 0/1)
        raise ValueError(f"{p}: {key} must be a real numeric array; got dtype {a.dtype}")
    return a.astype(np.float64, copy=False)


def _load_simple(z: Any, p: Path, subtract_pre_edge: Any) -> Stack:
    energies = _real(z, "energies", p)
    cube = _real(z, "cube", p)
    if energies.ndim != 1 or cube.ndim != 3 or cube.shape[0] != energies.size:
        # checked here: the pre-edge subtraction below indexes the cube by energies
        raise ValueError(f"{p}: cube must have shape (n_E, n_y, n_x) and energies (n_E,); got "
                         f"cube {cube.shape} and energies {energies.shape}")
    if not np.all(np.isfinite(cube)):
        raise ValueError(f"{p}: cube contains NaN/Inf values")
    threshold = _resolve_pre_edge(subtract_pre_edge, None)
    if threshold is not None:
        cube = _subtract_pre_edge(cube, energies, threshold)
    # the optional arrays get the same refusal as the cube (complex lost its imaginary part,
    # bool was read as 0/1)
    dictionary = _real(z, "dictionary", p) if "dictionary" in z.files else None
    names: tuple[str, ...] = ()
    if dictionary is not None and "dictionary_names" in z.files:
        names = tuple(str(n) for n in np.atleast_1d(z["dictionary_names"]))
    name = (str(z["name"]) if "name" in z.files else "") or p.stem
    i0 = _real(z, "i0", p) if "i0" in z.files else None
    x_um = _real(z, "x_um", p) if "x_um" in z.files else None
    y_um = _real(z, "y_um", p) if "y_um" in z.files else None
    return _stack_of(p, energies=energies, cube=cube, i0=i0, dictionary=dictionary,
                     dictionary_names=names, name=name, x_um=x_um, y_um=y_um)


def _load_als(z: Any, p: Path, subtract_pre_edge: Any) -> Stack:
    energies = _real(z, "energies_eV", p)
    counts = _real(z, "transmitted", p)
    i0 = _real(z, "i0", p)
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
        ox, red = _real(z, "oxidized_t", p), _real(z, "reduced_t", p)
        if ox.shape != energies.shape or red.shape != energies.shape:
            raise ValueError(f"{p}: the references must have one value per energy, shape "
                             f"{energies.shape}; got oxidized_t {ox.shape}, reduced_t {red.shape}")
        dictionary = np.column_stack([ox, red, np.ones_like(ox)])
        names = ("oxidized", "reduced", "constant")
    name = p.stem[: -len("_stack")] if p.stem.endswith("_stack") else p.stem
    x_um, y_um = _positions(z.get("x_um"), z.get("y_um"), cube.shape)
    return _stack_of(p, energies=energies, cube=cube, i0=i0, dictionary=dictionary,
                     dictionary_names=names, name=name, x_um=x_um, y_um=y_um)


def _positions(x: Any, y: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """Keep recorded positions only when they match the cube's (n_E, n_y, n_x) shape."""
    x = None if x is None or np.shape(x) != (shape[2],) else x
    y = None if y is None or np.shape(y) != (shape[1],) else y
    return x, y


def save_stack(path: str | os.PathLike, stack: Stack) -> None:
    """Write ``stack`` as a curiss ``.npz`` (readable by :func:`load_stack`).

    Parameters
    ----------
    path : str or path-like
        Destination; ``.npz`` is appended if missing (as numpy does). Written whole or not at
        all: under a temporary name next to it, renamed when complete, so a failure (a full
        disk) leaves an existing file unchanged.
    stack : Stack

    Raises
    ------
    ValueError
        The cube or the energies hold NaN/Inf (:func:`load_stack` would refuse the file), or
        the destination is a folder or in a folder that does not exist.
    """
    if not isinstance(stack, Stack):
        raise TypeError(f"stack must be a curiss.io.Stack, got {type(stack).__name__}")
    _check_finite_stack(stack)
    dest = Path(path)
    if not dest.name.endswith(".npz"):
        dest = dest.with_name(dest.name + ".npz")
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
    if stack.x_um is not None:
        arrays["x_um"] = stack.x_um
    if stack.y_um is not None:
        arrays["y_um"] = stack.y_um
    with _h5.written_whole(dest) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _check_finite_stack(stack: Stack) -> None:
    """A stack the readers would refuse is not written."""
    for name in ("energies", "cube"):
        if not np.all(np.isfinite(getattr(stack, name))):
            raise ValueError(f"stack.{name} contains NaN/Inf values; load_stack would refuse "
                             f"the file")


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
          ``dictionary_names``, or one 1-D array per reference (named by key; not ``i0``,
          ``x_um``, ``y_um``). A converted ALS stack gives ``oxidized_t`` and ``reduced_t``,
          as :func:`load_stack` reads them.

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


#: 1-D arrays of a stack's .npz that are not reference spectra (read_reference_spectra)
_NOT_SPECTRA = frozenset({"i0", "x_um", "y_um"})


def _read_refs_npz(p: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    with _open_npz(p, "reference spectra file") as z:
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
            if {"transmitted", "oxidized_t", "reduced_t"} <= set(z.files):
                # a converted ALS stack: its two references, as load_stack reads them (not its
                # I0, nor the other form of each reference)
                cols = ["oxidized_t", "reduced_t"]
            else:
                cols = [k for k in z.files
                        if k != ekey and k not in _NOT_SPECTRA and z[k].ndim == 1
                        and z[k].shape == energies.shape and np.issubdtype(z[k].dtype, np.number)]
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
    try:
        return interpolate_dictionary(ref_e, spectra, energies)
    except ValueError as exc:  # e.g. a grid in keV: say which file (a stack is read too)
        raise ValueError(f"{Path(path)}: {exc}") from None


# --------------------------------------------------------------------------- raw formats


def _od_from_counts(counts: np.ndarray, i0: np.ndarray, p: Path) -> np.ndarray:
    """OD = -ln(counts / I0); ``i0`` is (n_E,) or shaped like ``counts`` (n_E, n_y, n_x)."""
    if not (np.all(np.isfinite(counts)) and np.all(np.isfinite(i0))):
        raise ValueError(f"{p}: counts or I0 contain NaN/Inf values")
    counts = _clip_positive(counts, "transmitted", p)
    i0 = _clip_positive(i0, "i0", p)
    if i0.ndim == 1:
        i0 = i0[:, None, None]
    return -np.log(counts / i0)


def _finish(p: Path, energies: np.ndarray, cube: np.ndarray, subtract_pre_edge: Any,
            **kwargs: Any) -> Stack:
    if not np.all(np.isfinite(cube)):
        raise ValueError(f"{p}: optical density contains NaN/Inf values")
    threshold = _resolve_pre_edge(subtract_pre_edge, None)
    if threshold is not None:
        cube = _subtract_pre_edge(cube, energies, threshold)
    return _stack_of(p, energies=energies, cube=cube, **kwargs)


def _stack_of(p: Path, **kwargs: Any) -> Stack:
    """``Stack(**kwargs)``; its refusal (a repeated energy, NaN in a reference, ...) names ``p``."""
    try:
        return Stack(**kwargs)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


def _i0_on_grid(i0: Any, energies: np.ndarray, p: Path) -> np.ndarray:
    """An I0 given as (n_E,) values or an ``.xsp`` file, on the stack's energies."""
    if isinstance(i0, (str, os.PathLike)):
        src = Path(i0)
        ie, iv = _als.read_xsp(src)
        if ie.shape == energies.shape and np.allclose(ie, energies, rtol=0, atol=1e-3):
            return iv
        try:
            return interpolate_dictionary(ie, iv, energies)[:, 0]
        except ValueError as exc:
            raise ValueError(f"{src}: cannot put I0 on the stack's energies: {exc}") from None
    arr = np.asarray(i0, dtype=np.float64)
    if arr.shape != energies.shape:
        raise ValueError(
            f"{p}: i0 must be a path to a two-column .xsp file or an array of shape "
            f"{energies.shape}, got shape {arr.shape}"
        )
    return arr


def read_als_hdr(path: str | os.PathLike, *, i0: Any = None,
                 subtract_pre_edge: float | bool | None = None) -> Stack:
    """Read an ALS/aXis raw STXM stack: ``<id>.hdr`` + ``<id>_aNNN.xim`` images.

    Parameters
    ----------
    path : str or path-like
        The ``.hdr`` text header. Its ``ScanDefinition`` gives the x positions
        (``PAxis`` points, µm, n_x), the y positions (``QAxis``, µm, n_y) and the
        energies (``StackAxis``, eV, n_E). The images ``<id>_a000.xim`` …
        ``<id>_a{n_E-1:03d}.xim`` must sit next to it, each a whitespace-separated
        text matrix of transmitted counts with n_y rows (y) of n_x values (x).
    i0 : None, str, path-like or array_like of shape (n_E,)
        Incident intensity. ``None`` reads ``i0.xsp`` (two columns: energy eV, I0)
        from the header's folder; a path reads that ``.xsp`` file (interpolated
        onto the stack's energies when its grid differs; it must cover them).
    subtract_pre_edge : float, False or None
        As in :func:`load_stack`; ``None`` (default) and ``False`` mean no subtraction.

    Returns
    -------
    Stack
        ``cube`` = -ln(counts / I0), shape (n_E, n_y, n_x); ``i0`` (n_E,);
        ``x_um``, ``y_um`` from the header; ``name`` = the header's stem. Energies
        out of order in the header are sorted (images follow).

    Raises
    ------
    ValueError
        Missing header blocks, missing or extra ``.xim`` files (missing energies),
        an image whose rows/columns do not match the header (truncated file),
        no I0, or NaN/Inf.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: header file not found")
    hdr = _als.parse_hdr(p)
    energies, x, y = hdr["energies"], hdr["x"], hdr["y"]
    files = _als.find_xim(p, energies.size)
    counts = np.stack([_als.read_xim(f, y.size, x.size) for f in files])
    if i0 is None:
        default = p.parent / "i0.xsp"
        if not default.is_file():
            raise ValueError(
                f"{p}: no I0: {default.name} not found next to the header; put it there, or "
                "give load_stack(path, i0=...) a two-column .xsp file or an array with one value "
                "per energy"
            )
        i0 = default
    i0v = _i0_on_grid(i0, energies, p)
    order = np.argsort(energies, kind="stable")
    energies, counts, i0v = energies[order], counts[order], i0v[order]
    cube = _od_from_counts(counts, i0v, p)
    return _finish(p, energies, cube, subtract_pre_edge, i0=i0v, name=p.stem, x_um=x, y_um=y)


def read_dataexchange(path: str | os.PathLike, *,
                      subtract_pre_edge: float | bool | None = None) -> Stack:
    """Read an HDF5 data-exchange stack as MANTiS writes it.

    Parameters
    ----------
    path : str or path-like
        HDF5 file with ``/exchange/data`` and ``/exchange/energy`` (eV). The data
        layout comes from the ``axes`` attribute (MANTiS: ``"x:y:energy"``, i.e.
        shape (n_x, n_y, n_E)); without it, (n_x, n_y, n_E) when the last axis
        matches the energies, else (n_E, n_y, n_x).
        The OD is ``/spectromicroscopy/optical_density`` when present, else
        -ln(data / I0) with I0 from ``/spectromicroscopy/normalization/white_spectrum``
        (interpolated from ``white_spectrum_energy``) or ``/exchange/white_data``
        ((n_E,) or per pixel), else ``data`` itself if its ``units`` say OD.
    subtract_pre_edge : float, False or None
        As in :func:`load_stack`; default no subtraction.

    Returns
    -------
    Stack
        ``cube`` (n_E, n_y, n_x) OD; ``i0`` (n_E,) when the file has an I0 spectrum
        (the per-energy mean for a per-pixel white field); ``x_um``/``y_um`` from
        ``/exchange/x``/``y`` when in µm; ``name`` from ``/information/title``.

    Raises
    ------
    ValueError
        Missing groups, shapes that disagree, no I0 for raw counts, NaN/Inf.
    """
    p = Path(path)
    d = _h5.read_dataexchange(p)
    od, i0 = d["od"], d["i0"]
    if od is None:
        if i0 is None:
            raise ValueError(
                f"{p}: /exchange/data holds counts but the file has no I0 "
                "(/spectromicroscopy/normalization/white_spectrum or /exchange/white_data) "
                "and no /spectromicroscopy/optical_density"
            )
        od = _od_from_counts(d["counts"], i0, p)
    if i0 is not None and np.ndim(i0) == 3:
        i0 = i0.mean(axis=(1, 2))
    names = tuple(d["dictionary_names"]) if d["dictionary"] is not None else ()
    return _finish(p, d["energies"], od, subtract_pre_edge, i0=i0, name=d["name"],
                   dictionary=d["dictionary"], dictionary_names=names,
                   x_um=d["x"], y_um=d["y"])


def write_dataexchange(path: str | os.PathLike, stack: Stack) -> Path:
    """Write ``stack`` as a MANTiS data-exchange 1.0 HDF5 file.

    Layout: ``/exchange/data`` (n_x, n_y, n_E) = I0·exp(-OD) (transmission with
    I0 = 1 when the stack has no ``i0``), attrs ``axes="x:y:energy"``;
    ``/exchange/energy`` (eV), ``/exchange/x``, ``/exchange/y`` (µm, or pixel
    indices); ``/spectromicroscopy/normalization/white_spectrum`` = I0;
    ``/spectromicroscopy/optical_density`` (n_x, n_y, n_E) = the cube, so that
    :func:`read_dataexchange` returns the cube bit for bit. The dictionary, if
    any, goes to ``/curiss``.

    Parameters
    ----------
    path : str or path-like
        Destination (overwritten); ``.h5`` or ``.hdf5`` suffix recommended.
    stack : Stack

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        The cube or the energies hold NaN/Inf (:func:`load_stack` would refuse the file), or
        the destination is a folder or in a folder that does not exist.
    """
    if not isinstance(stack, Stack):
        raise TypeError(f"stack must be a curiss.io.Stack, got {type(stack).__name__}")
    _check_finite_stack(stack)
    p = Path(path)
    _h5.write_dataexchange(p, energies=stack.energies, od=stack.cube, i0=stack.i0,
                           x=stack.x_um, y=stack.y_um, name=stack.name,
                           dictionary=stack.dictionary, dictionary_names=stack.dictionary_names)
    return p


def read_nxstxm(path: str | os.PathLike, *, entry: str | None = None, channel: str | None = None,
                i0: Any = None, subtract_pre_edge: float | bool | None = None) -> Stack:
    """Read an image stack from a NeXus NXstxm file (ALS, CLS, Diamond, PSI; MANTiS layout).

    Parameters
    ----------
    path : str or path-like
        HDF5 file with an NXentry (``definition = "NXstxm"`` preferred) holding an
        NXdata group whose signal (``data``) is 3-D with axes ``energy`` (or
        ``photon_energy``, eV), ``sample_y``, ``sample_x`` (µm), in the order of the
        group's ``axes`` attribute, the older 1-based ``axis`` attributes, or
        ``*_indices`` attributes (default (n_E, n_y, n_x)).
    entry, channel : str, optional
        The NXentry and NXdata group; default the first NXstxm entry and its
        ``default`` (else first) NXdata group, like MANTiS.
    i0 : None, array_like of shape (n_E,) or path
        I0, used instead of the file's monitor: one value per energy, in the file's energy
        order, or a two-column ``.xsp`` file. By default the entry's NXmonitor ``control/data``
        ((n_E,) or per pixel) is used. Ignored when the signal is marked as OD
        (files from :func:`write_nexus`).
    subtract_pre_edge : float, False or None
        As in :func:`load_stack`; default no subtraction.

    Returns
    -------
    Stack
        ``cube`` (n_E, n_y, n_x) OD = -ln(data / I0) (or the signal itself if its
        attributes mark it as optical density); ``i0`` (n_E,) (per-energy mean of a
        per-pixel monitor); ``x_um``, ``y_um``; ``name`` from the entry's title.

    Raises
    ------
    ValueError
        No NXentry/NXdata, not a 3-D stack, axis lengths that disagree with the
        signal's shape, no I0 for counts, NaN/Inf.
    """
    p = Path(path)
    d = _h5.read_nxstxm(p, entry=entry, channel=channel)
    od, i0v = d["od"], d["i0"]
    if od is None:
        if i0 is not None:  # given: used instead of the file's monitor
            if isinstance(i0, (str, os.PathLike)):  # an .xsp file: interpolated by energy
                i0v = _i0_on_grid(i0, d["energies"], p)
            else:  # values in the file's energy order (as read_als_hdr takes them)
                order = d["energy_order"]
                i0v = _i0_on_grid(i0, d["energies"][np.argsort(order)], p)[order]
        if i0v is None:
            raise ValueError(
                f"{p}:/{d['entry']}/{d['channel']}: the signal holds counts but the entry has no "
                "NXmonitor (control/data) with I0; pass i0= (one value per energy)"
            )
        od = _od_from_counts(d["counts"], i0v, p)
        if i0 is None and float(np.median(od)) < _RING_CURRENT_OD:
            # NXstxm's control/data is meant to normalise for flux variations and often holds
            # the storage-ring current, not the incident flux: counts / a ring current in mA
            # give an OD far below 0 nearly everywhere (a thin sample whose monitor reads a
            # little low gives a median slightly below 0: not warned about)
            warnings.warn(f"{p}: the optical density computed with the file's NXmonitor "
                          f"(of /{d['entry']}) as I0 is negative for most pixels (median "
                          f"{float(np.median(od)):.3g}): the monitor may hold a ring current, "
                          "not the incident flux; pass i0= (one value per energy in the file's "
                          "order, or an .xsp file)", RuntimeWarning, stacklevel=2)
    if i0v is not None and np.ndim(i0v) == 3:
        i0v = i0v.mean(axis=(1, 2))
    return _finish(p, d["energies"], od, subtract_pre_edge, i0=i0v, name=d["name"],
                   x_um=d["x"], y_um=d["y"])


#: median OD below which an NXstxm monitor used as I0 is said to look like a ring current:
#: counts more than ~10 % above the monitor for most pixels (a ring current in mA under counts
#: of 1e4 gives about -3 to -9; a thin film under a monitor a few % low, a few -0.01)
_RING_CURRENT_OD = -0.1


# --------------------------------------------------------------------------- results export


def _as_float_array(value: Any, name: str, shape: tuple[int, ...] | None, *,
                    allow_nan: bool = False) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if allow_nan:
        if np.any(np.isinf(arr)):
            raise ValueError(f"{name} contains Inf values")
    elif not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/Inf values")
    return arr


def _spectra(value: Any, name: str, n_e: int) -> np.ndarray:
    arr = _as_float_array(value, name, None)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n_e:
        raise ValueError(f"{name} must have shape (n_E={n_e}, k), got {np.shape(value)}")
    return arr


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON-serialisable")


def _check_measured_against_mask(measured: np.ndarray, mask: np.ndarray) -> None:
    """Refuse a ``measured`` cube that disagrees with ``mask`` (finite exactly where True)."""
    finite = np.isfinite(measured)
    missing = mask & ~finite
    if missing.any():
        where = tuple(int(i) for i in np.argwhere(missing)[0])
        raise ValueError(f"measured is NaN/Inf at {int(missing.sum())} entries that mask says "
                         f"were measured (first at (energy, y, x) = {where})")
    extra = finite & ~mask
    if extra.any():
        where = tuple(int(i) for i in np.argwhere(extra)[0])
        raise ValueError(f"measured has values at {int(extra.sum())} entries that mask says were "
                         f"not measured (first at (energy, y, x) = {where}), e.g. the full stack "
                         f"of a replay; give np.where(mask, measured, np.nan)")


def write_nexus(path: str | os.PathLike, *, energies: Any, completed: Any, mask: Any = None,
                labels: Any = None, cluster_spectra: Any = None, eigenspectra: Any = None,
                measured: Any = None, metadata: Mapping[str, Any] | None = None,
                sample_x: Any = None, sample_y: Any = None, count_time: Any = None) -> Path:
    """Export an acquisition's results as an NXstxm NeXus (HDF5) file.

    Layout (``entry1`` is an NXentry with ``definition = ["NXstxm"]``)::

        /entry1/counter0      NXdata, signal "data", axes [energy, sample_y, sample_x]
            data (n_E, n_y, n_x)  completed OD (attr curiss_quantity="optical_density")
            energy (n_E,) eV, sample_y (n_y,), sample_x (n_x,) µm (pixel indices if
            unknown), count_time (n_E,) s, stxm_scan_type "sample image stack"
        /entry1/sampling      NXcollection: mask (n_E, n_y, n_x) uint8, measured
        /entry1/analysis      NXprocess: labels, cluster_spectra, eigenspectra
        /entry1/curiss        NXnote: data = JSON of ``metadata``

    ``counter0`` is the only NXdata group, so MANTiS (NXstxm plugin) opens it as the
    stack; note that MANTiS treats the signal as raw data (choose I0 = 1 there, as
    the values are already OD). :func:`load_stack` reads it back as a Stack.

    Parameters
    ----------
    path : str or path-like
        Destination, overwritten (``.nxs`` recommended).
    energies : array_like, shape (n_E,)
        eV, strictly increasing.
    completed : array_like, shape (n_E, n_y, n_x)
        Completed optical density, finite.
    mask : array_like of bool, shape (n_E, n_y, n_x), optional
        True where measured.
    labels : array_like of int, shape (n_y, n_x), optional
        Cluster label per pixel.
    cluster_spectra : array_like, shape (n_E, n_clusters), optional
    eigenspectra : array_like, shape (n_E, n_components), optional
    measured : array_like, shape (n_E, n_y, n_x), optional
        Measured OD; NaN allowed where not measured. With ``mask``, it must be finite exactly
        where ``mask`` is True.
    metadata : mapping, optional
        JSON-serialisable (numpy scalars/arrays are converted); stored as a JSON
        string. ``title``, ``start_time`` and ``end_time`` also fill the NXentry fields.
    sample_x, sample_y : array_like, shape (n_x,) and (n_y,), optional
        Positions, µm.
    count_time : float or array_like of shape (n_E,), optional
        Dwell per pixel, s (NXstxm requires the field; NaN when unknown).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError, TypeError
        Wrong shapes, dtypes, non-finite values, ``measured`` that disagrees with ``mask``, or
        non-serialisable metadata.
    """
    e = _as_float_array(energies, "energies", None)
    if e.ndim != 1 or e.size < 1:
        raise ValueError(f"energies must be a non-empty 1-D array, got shape {e.shape}")
    if np.any(np.diff(e) <= 0):
        raise ValueError("energies must be strictly increasing")
    cube = _as_float_array(completed, "completed", None)
    if cube.ndim != 3 or cube.shape[0] != e.size:
        raise ValueError(f"completed must have shape (n_E={e.size}, n_y, n_x), got {cube.shape}")
    n_e, n_y, n_x = cube.shape
    arrays: dict[str, Any] = {"energies": e, "completed": cube}
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != bool:
            if m.dtype.kind not in "iu" or not np.isin(m, (0, 1)).all():
                raise TypeError(f"mask must be boolean (or 0/1 integers), got dtype {m.dtype}")
            m = m.astype(bool)
        if m.shape != cube.shape:
            raise ValueError(f"mask must have shape {cube.shape}, got {m.shape}")
        arrays["mask"] = m
    if measured is not None:
        arrays["measured"] = _as_float_array(measured, "measured", cube.shape, allow_nan=True)
        if mask is not None:
            _check_measured_against_mask(arrays["measured"], arrays["mask"])
    if labels is not None:
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got dtype {lab.dtype}")
        if lab.shape != (n_y, n_x):
            raise ValueError(f"labels must have shape {(n_y, n_x)}, got {lab.shape}")
        arrays["labels"] = lab.astype(np.int64)
    if cluster_spectra is not None:
        arrays["cluster_spectra"] = _spectra(cluster_spectra, "cluster_spectra", n_e)
    if eigenspectra is not None:
        arrays["eigenspectra"] = _spectra(eigenspectra, "eigenspectra", n_e)
    for key, pos, n in (("sample_x", sample_x, n_x), ("sample_y", sample_y, n_y)):
        arrays[key] = None if pos is None else _as_float_array(pos, key, (n,))
    if count_time is None:
        arrays["count_time"] = np.full(n_e, np.nan)
    else:
        ct = _as_float_array(count_time, "count_time", None, allow_nan=True)
        if ct.ndim == 0:
            ct = np.full(n_e, float(ct))
        elif ct.shape != (n_e,):
            raise ValueError(f"count_time must be a scalar or have shape ({n_e},), got {ct.shape}")
        arrays["count_time"] = ct
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, got {type(metadata).__name__}")
    meta = dict(metadata or {})
    if any(not isinstance(k, str) for k in meta):
        raise TypeError("metadata keys must be str")
    try:
        meta = json.loads(json.dumps(meta, default=_json_default))
    except ValueError as exc:  # e.g. circular references
        raise ValueError(f"metadata is not JSON-serialisable: {exc}") from None
    title = str(meta.get("title", "curiss export"))
    p = Path(path)
    _h5.write_results(p, arrays, meta, title)
    return p


def read_nexus_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by :func:`write_nexus`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        ``energies`` (n_E,), ``completed`` (n_E, n_y, n_x), ``mask`` (n_E, n_y, n_x)
        bool or None, ``measured`` or None, ``labels`` (n_y, n_x) int or None,
        ``cluster_spectra`` / ``eigenspectra`` (n_E, k) or None, ``sample_x`` /
        ``sample_y`` (µm) or None, ``count_time`` (n_E,), ``metadata`` dict.

    Raises
    ------
    ValueError
        Not an HDF5 file or not a curiss export.
    """
    return _h5.read_results(Path(path))
