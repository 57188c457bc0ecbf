"""Parse the ALS/aXis raw STXM stack format (``.hdr`` header + one ``.xim`` per energy).

Private helpers of :mod:`curiss.io`; they return plain arrays and never build a
:class:`curiss.io.Stack` (that stays in ``io`` to avoid an import cycle).

Layout (as written by the ALS STXM control software and read by aXis2000):

* ``<id>.hdr``: a text header. ``ScanDefinition`` holds ``Regions = (1, { PAxis = { ...
  Points = (n_x, x_0, ..., x_{n_x-1}); }; QAxis = { ... Points = (n_y, y_0, ...); }; })``,
  ``StackAxis = { ... Points = (n_E, E_0, ...); }`` (eV) and ``Dwell`` (ms).
* ``<id>_aNNN.xim``: one whitespace-separated text matrix per energy index NNN
  (0-based), ``n_y`` lines (rows = y, the QAxis) of ``n_x`` numbers (columns = x,
  the PAxis), transmitted counts.
* ``i0.xsp`` (optional): two columns, energy (eV) and I0.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

_XIM_RE = re.compile(r"_a(\d+)\.xim$", re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _axis_points(text: str, axis: str, path: Path) -> np.ndarray:
    """Return the ``Points`` list of the block ``axis = { ... }`` in a header."""
    m = re.search(axis + r"\s*=\s*\{[^{}]*?Points\s*=\s*\(([^)]*)\)", text, re.DOTALL)
    if m is None:
        raise ValueError(f"{path}: no '{axis} = {{ ... Points = (n, ...) }}' block in the header")
    tokens = [t for t in re.split(r"[,\s]+", m.group(1)) if t]
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise ValueError(f"{path}: {axis} Points contain a non-number: {m.group(1)[:80]!r}") from None
    if not values or values[0] != int(values[0]) or values[0] < 1:
        raise ValueError(f"{path}: {axis} Points must start with a positive count, got {tokens[:1]}")
    n = int(values[0])
    pts = np.asarray(values[1:], dtype=np.float64)
    if pts.size != n:
        raise ValueError(f"{path}: {axis} Points declares {n} values but lists {pts.size}")
    return pts


def parse_hdr(path: Path) -> dict:
    """Parse an ALS ``.hdr`` header.

    Returns
    -------
    dict
        ``x`` (n_x,) and ``y`` (n_y,) positions in µm (PAxis, QAxis), ``energies``
        (n_E,) eV (StackAxis), ``dwell_ms`` (float or None), ``time`` (str or None).
    """
    text = path.read_text(encoding="latin-1")
    m = re.search(r"Regions\s*=\s*\(\s*(\d+)", text)
    if m is not None and int(m.group(1)) != 1:
        raise ValueError(
            f"{path}: {m.group(1)} spatial regions in ScanDefinition; only single-region "
            "stacks are supported (split the regions first)"
        )
    out: dict = {
        "x": _axis_points(text, "PAxis", path),
        "y": _axis_points(text, "QAxis", path),
        "energies": _axis_points(text, "StackAxis", path),
    }
    m = re.search(r"\bDwell\s*=\s*(" + _NUMBER + ")", text)
    out["dwell_ms"] = float(m.group(1)) if m else None
    m = re.search(r'\bTime\s*=\s*"([^"]*)"', text)
    out["time"] = m.group(1) if m else None
    return out


def find_xim(hdr: Path, n_energies: int) -> list[Path]:
    """The ``.xim`` files of ``hdr``, ordered by energy index; all of 0..n_E-1 must exist."""
    stem = hdr.stem
    found: dict[int, Path] = {}
    for f in hdr.parent.iterdir():
        if not f.name.startswith(stem + "_"):
            continue
        m = _XIM_RE.search(f.name)
        if m and f.name[: m.start()] == stem:
            idx = int(m.group(1))
            if idx in found:
                raise ValueError(f"{hdr}: two .xim files for energy index {idx}: "
                                 f"{found[idx].name}, {f.name}")
            found[idx] = f
    missing = [i for i in range(n_energies) if i not in found]
    if missing:
        shown = ", ".join(f"{stem}_a{i:03d}.xim" for i in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(
            f"{hdr}: the header lists {n_energies} energies but {len(missing)} image file(s) "
            f"are missing: {shown}{more}"
        )
    extra = sorted(i for i in found if i >= n_energies)
    if extra:
        raise ValueError(
            f"{hdr}: the header lists {n_energies} energies but there are images for energy "
            f"indices up to {extra[-1]} (e.g. {found[extra[0]].name}); header and images disagree"
        )
    return [found[i] for i in range(n_energies)]


def read_xim(path: Path, n_y: int, n_x: int) -> np.ndarray:
    """Read one ``.xim`` text matrix, checking that it is (n_y rows, n_x columns).

    Returns
    -------
    ndarray, shape (n_y, n_x), float64 counts.
    """
    try:
        with warnings.catch_warnings():  # an empty file warns before we report it
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, dtype=np.float64, ndmin=2, encoding="latin-1")
        problem = None
    except ValueError as exc:  # ragged rows or a non-number
        # (numpy's advice after ";" is about loadtxt's own options, not the user's file)
        data, problem = None, str(exc).splitlines()[0].split("; use `usecols`")[0]
    if data is None or data.shape != (n_y, n_x):
        found = problem if data is None else f"found shape {data.shape}"
        hint = " (rows and columns swapped?)" if data is not None and data.shape == (n_x, n_y) else ""
        raise ValueError(
            f"{path}: expected {n_y} rows (QAxis, y) of {n_x} values (PAxis, x) as in the "
            f"header; {found}{hint} (truncated or foreign file?)"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path}: contains NaN/Inf values")
    return data


def read_xsp(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a two-column ``.xsp`` spectrum (energy eV, value); returns (energies, values)."""
    try:
        data = np.loadtxt(path, comments=("#", "%", "*"), ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a two-column numeric spectrum ({exc})") from None
    if data.ndim != 2 or data.shape[1] < 2 or data.shape[0] < 1:
        raise ValueError(f"{path}: need >= 1 row of (energy, value) columns, got shape {data.shape}")
    return data[:, 0].copy(), data[:, 1].copy()
