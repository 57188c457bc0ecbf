"""HDF5 layouts: MANTiS data-exchange, NeXus NXstxm, and the curiss results export.

Private helpers of :mod:`curiss.io`; they move plain arrays in and out of files
and never build a :class:`curiss.io.Stack` (that stays in ``io``).

Data-exchange, version 1.0, as MANTiS (``file_plugins/file_dataexch_hdf5.py``,
``data_stack.fill_h5_struct_from_stk``) writes it::

    /implements   "information:exchange:spectromicroscopy"
    /version      "1.0"
    /information/{title, comment, file_creation_datetime}
    /exchange/data      (n_x, n_y, n_E) raw counts, attrs signal=1, axes="x:y:energy"
    /exchange/energy    (n_E,) attrs units="ev"
    /exchange/x, /exchange/y   (n_x,), (n_y,) positions
    /exchange/white_data       optional I0 (n_E,) or like data
    /spectromicroscopy/normalization/{white_spectrum, white_spectrum_energy}   I0 spectrum
    /spectromicroscopy/optical_density   optional, same layout as /exchange/data

NeXus NXstxm (as MANTiS ``file_nexus_hdf5.py`` reads the ALS/CLS/Diamond/PSI files)::

    /<entry> NXentry, definition = ["NXstxm"]
        /<channel> NXdata (e.g. counter0), attrs signal="data",
                   axes=["energy", "sample_y", "sample_x"] (or older per-dataset
                   ``axis`` attributes, 1-based)
            data (n_E, n_y, n_x) counts, energy (or photon_energy), sample_x, sample_y,
            count_time, stxm_scan_type = ["sample image stack"]
        /control NXmonitor, data: I0, (n_E,) or shaped like the signal
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

#: Marker attribute: the signal holds optical density (not counts).
OD_MARKER = "curiss_quantity"
_OD_WORDS = {"od", "optical density", "optical_density", "absorbance"}


def decode(value: Any) -> Any:
    """bytes / numpy bytes / 0-d arrays -> str; arrays of strings -> list of str."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return decode(value[()])
        if value.dtype.kind in "SOU":
            return [decode(v) for v in value.tolist()]
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _scalar_str(value: Any) -> str:
    v = decode(value)
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v)


def _nx_class(obj: Any) -> str:
    return _scalar_str(obj.attrs.get("NX_class", "")) if "NX_class" in obj.attrs else ""


def _is_od(ds: Any) -> bool:
    for key in (OD_MARKER, "units", "long_name", "signal_type", "quantity"):
        if key in ds.attrs:
            word = _scalar_str(ds.attrs[key]).strip().lower()
            if word in _OD_WORDS or word.startswith("optical density"):
                return True
    return False


def _is_pixel(ds: Any) -> bool:
    """Positions stored as pixel indices (no physical coordinates)."""
    return "units" in ds.attrs and _scalar_str(ds.attrs["units"]).strip().lower() in ("pixel", "pixels")


_AXIS_ALIASES = {
    "energy": "E", "photon_energy": "E", "energies": "E", "e": "E", "z": "E", "ev": "E",
    "sample_x": "x", "x": "x", "sample_y": "y", "y": "y",
}


def _axes_order(names: list[str], where: str) -> tuple[int, int, int]:
    """Positions of (E, y, x) in a list of 3 axis names."""
    canon = [_AXIS_ALIASES.get(n.strip().lower()) for n in names]
    if len(canon) != 3 or sorted(c or "?" for c in canon) != ["E", "x", "y"]:
        raise ValueError(
            f"{where}: axes {names} are not a permutation of energy, sample_y, sample_x "
            "(only 3-D image stacks are supported, not line scans or single images)"
        )
    return (canon.index("E"), canon.index("y"), canon.index("x"))


def _split_axes(raw: Any) -> list[str]:
    v = decode(raw)
    if isinstance(v, str):
        return [t for t in v.replace(",", ":").split(":") if t.strip()]
    return [str(t) for t in v]


def _sort_energy(d: dict, keys: tuple[str, ...]) -> dict:
    """Sort ``d['energies']`` increasingly and reorder axis 0 of ``d[k]`` (k in keys);
    ``d['energy_order']``: the permutation applied (file index of each sorted energy)."""
    e = d["energies"]
    d["energy_order"] = np.arange(e.size)
    if e.size > 1 and np.any(np.diff(e) <= 0):
        order = np.argsort(e, kind="stable")
        d["energy_order"] = order
        d["energies"] = e[order]
        for k in keys:
            if d.get(k) is not None and np.ndim(d[k]) >= 1:
                d[k] = d[k][order]
    return d


def _open(path: Path, mode: str = "r") -> h5py.File:
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        if mode != "r":
            raise ValueError(f"{path}: cannot create the HDF5 file: {exc}") from None
        raise ValueError(
            f"{path}: not a readable HDF5 file (missing, truncated or unsupported format): {exc}"
        ) from None


def check_destination(path: Path) -> None:
    """Refuse a destination that cannot be written, naming it (not the temporary file)."""
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"{path}: its folder {path.parent} does not exist")


def _damaged(func):
    """Report a file that h5py can open but not read as a ``ValueError`` naming it (a damaged
    file, or one laid out differently: a group where a dataset belongs, an integer ``axes``)."""
    @functools.wraps(func)
    def wrapper(path, *args, **kwargs):
        try:
            return func(path, *args, **kwargs)
        except (OSError, RuntimeError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"{path}: damaged or unsupported HDF5 layout "
                             f"({type(exc).__name__}: {exc})") from exc
    return wrapper


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write the file to; renamed over ``path`` when the
    block ends without error, removed otherwise: a failure half-way leaves neither a partial
    file nor a changed old one. The destination is checked first (:func:`check_destination`)."""
    check_destination(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _create(path: Path) -> Iterator[h5py.File]:
    """A new HDF5 file at ``path``, written whole or not at all (:func:`written_whole`)."""
    with written_whole(path) as tmp:
        with _open(tmp, "w") as f:
            yield f


@_damaged
def hdf5_kind(path: Path) -> str:
    """``"dataexchange"``, ``"nxstxm"`` or ``"unknown"`` from the file's content."""
    with _open(path) as f:
        if "exchange" in f and isinstance(f["exchange"], h5py.Group) and "data" in f["exchange"]:
            return "dataexchange"
        for name in f:
            obj = f[name]
            if isinstance(obj, h5py.Group) and _nx_class(obj) == "NXentry":
                if any(isinstance(obj[c], h5py.Group) and _nx_class(obj[c]) == "NXdata" for c in obj):
                    return "nxstxm"
    return "unknown"


# ---------------------------------------------------------------------- data-exchange


@_damaged
def read_dataexchange(path: Path) -> dict:
    """Read a MANTiS data-exchange file into arrays in curiss order (E, y, x).

    Returns
    -------
    dict with ``energies`` (n_E,), ``od`` (n_E, n_y, n_x) or None, ``counts``
    (n_E, n_y, n_x) or None, ``i0`` (n_E,) or (n_E, n_y, n_x) or None, ``x``, ``y``
    (or None), ``name``, ``dictionary`` (n_E, n_refs) or None, ``dictionary_names``.
    """
    with _open(path) as f:
        if "exchange" not in f or "data" not in f["exchange"] or "energy" not in f["exchange"]:
            raise ValueError(f"{path}: not a data-exchange file (need /exchange/data and /exchange/energy)")
        ex = f["exchange"]
        energies = np.asarray(ex["energy"][()], dtype=np.float64).ravel()
        ds = ex["data"]
        raw = np.asarray(ds[()])
        if raw.ndim != 3:
            raise ValueError(f"{path}: /exchange/data must be 3-D, got shape {raw.shape}")
        n_e = energies.size
        if "axes" in ds.attrs:
            names = _split_axes(ds.attrs["axes"])
            if len(names) == 2:  # MANTiS 0.9: "x:y", energy last
                names = names + ["energy"]
            order = _axes_order(names, f"{path}:/exchange/data")
        elif raw.shape[0] == raw.shape[2] == n_e:  # n_x = n_E: either layout fits
            raise ValueError(
                f"{path}: /exchange/data has shape {raw.shape} and /exchange/energy {n_e} "
                "values: (x, y, E) and (E, y, x) both fit, and the dataset has no 'axes' "
                "attribute to say which; add one (e.g. axes='energy:y:x')")
        elif raw.shape[2] == n_e:  # MANTiS layout (x, y, E)
            order = (2, 1, 0)
        elif raw.shape[0] == n_e:  # image-per-energy layout (E, y, x)
            order = (0, 1, 2)
        else:
            raise ValueError(
                f"{path}: /exchange/data has shape {raw.shape} but /exchange/energy has {n_e} "
                "values; no axis matches the energies"
            )

        def to_eyx(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.transpose(a, order), dtype=np.float64)

        data = to_eyx(raw)
        if data.shape[0] != n_e:
            raise ValueError(
                f"{path}: /exchange/data energy axis has {data.shape[0]} values but "
                f"/exchange/energy has {n_e}"
            )
        out: dict = {"energies": energies, "od": None, "counts": None, "i0": None,
                     "x": None, "y": None, "dictionary": None, "dictionary_names": ()}
        for key, n in (("x", data.shape[2]), ("y", data.shape[1])):
            if key in ex:
                pos = np.asarray(ex[key][()], dtype=np.float64).ravel()
                if pos.size != n:
                    raise ValueError(f"{path}: /exchange/{key} has {pos.size} values, data has {n}")
                out[key] = None if _is_pixel(ex[key]) else pos
        sm = f.get("spectromicroscopy")
        unit_i0 = False
        if sm is not None and "normalization" in sm and "white_spectrum" in sm["normalization"]:
            norm = sm["normalization"]
            ws = np.asarray(norm["white_spectrum"][()], dtype=np.float64).ravel()
            unit_i0 = bool(norm["white_spectrum"].attrs.get("curiss_unit_i0", False))
            if "white_spectrum_energy" in norm:
                we = np.asarray(norm["white_spectrum_energy"][()], dtype=np.float64).ravel()
            else:
                we = energies
            if we.shape != ws.shape:
                raise ValueError(f"{path}: white_spectrum {ws.shape} and white_spectrum_energy "
                                 f"{we.shape} differ in length")
            if we.shape == energies.shape and np.allclose(we, energies, rtol=0, atol=1e-6):
                out["i0"] = ws
            else:
                o = np.argsort(we)
                lo, hi = we[o[0]], we[o[-1]]
                if lo > energies.min() + 1e-6 or hi < energies.max() - 1e-6:
                    raise ValueError(
                        f"{path}: white_spectrum covers [{lo:g}, {hi:g}] eV but the stack spans "
                        f"[{energies.min():g}, {energies.max():g}] eV"
                    )
                out["i0"] = np.interp(energies, we[o], ws[o])
        elif "white_data" in ex:
            wd = np.asarray(ex["white_data"][()], dtype=np.float64)
            if wd.shape == raw.shape:
                out["i0"] = to_eyx(wd)
            elif wd.size == n_e:
                out["i0"] = wd.ravel()
            else:
                raise ValueError(f"{path}: /exchange/white_data has shape {wd.shape}; expected "
                                 f"({n_e},) or the shape of /exchange/data {raw.shape}")
        if sm is not None and "optical_density" in sm:
            od = np.asarray(sm["optical_density"][()])
            if od.shape != raw.shape:
                raise ValueError(f"{path}: /spectromicroscopy/optical_density has shape {od.shape}, "
                                 f"/exchange/data has {raw.shape}")
            out["od"] = to_eyx(od)
            out["counts"] = data
        elif _is_od(ds):
            out["od"] = data
        else:
            out["counts"] = data
        if unit_i0:
            out["i0"] = None if out["od"] is not None else out["i0"]
        title = f.get("information/title")
        out["name"] = _scalar_str(title[()]) if title is not None else path.stem
        cur = f.get("curiss")
        if cur is not None and "dictionary" in cur:
            out["dictionary"] = np.asarray(cur["dictionary"][()], dtype=np.float64)
            out["dictionary_names"] = tuple(decode(cur["dictionary_names"][()])) \
                if "dictionary_names" in cur else ()
    return _sort_energy(out, ("od", "counts", "i0", "dictionary"))


def write_dataexchange(path: Path, *, energies: np.ndarray, od: np.ndarray, i0: np.ndarray | None,
                       x: np.ndarray | None, y: np.ndarray | None, name: str,
                       dictionary: np.ndarray | None, dictionary_names: tuple[str, ...]) -> None:
    """Write the MANTiS data-exchange 1.0 layout; ``od`` is (n_E, n_y, n_x)."""
    n_e, n_y, n_x = od.shape
    unit_i0 = i0 is None
    i0v = np.ones(n_e) if unit_i0 else np.asarray(i0, dtype=np.float64)
    counts = i0v[:, None, None] * np.exp(-od)
    with _create(path) as f:
        f.create_dataset("implements", data="information:exchange:spectromicroscopy")
        f.create_dataset("version", data="1.0")
        info = f.create_group("information")
        info.create_dataset("title", data=name)
        info.create_dataset("comment", data="written by curiss")
        info.create_dataset("file_creation_datetime",
                            data=_dt.datetime.now().strftime("%Y-%m-%dT%H:%M"))
        ex = f.create_group("exchange")
        ds = ex.create_dataset("data", data=counts.transpose(2, 1, 0))
        ds.attrs["signal"] = 1
        ds.attrs["axes"] = "x:y:energy"
        ds.attrs["units"] = "counts" if not unit_i0 else "transmission"
        e = ex.create_dataset("energy", data=energies)
        e.attrs["units"] = "ev"
        for key, pos, n in (("x", x, n_x), ("y", y, n_y)):
            d = ex.create_dataset(key, data=np.arange(n, dtype=np.float64) if pos is None else pos)
            d.attrs["units"] = "pixel" if pos is None else "um"
        sm = f.create_group("spectromicroscopy")
        sm.create_dataset("optical_density", data=od.transpose(2, 1, 0))
        norm = sm.create_group("normalization")
        ws = norm.create_dataset("white_spectrum", data=i0v)
        ws.attrs["units"] = "counts"
        if unit_i0:
            ws.attrs["curiss_unit_i0"] = True
        wse = norm.create_dataset("white_spectrum_energy", data=energies)
        wse.attrs["units"] = "ev"
        if dictionary is not None:
            cur = f.create_group("curiss")
            cur.create_dataset("dictionary", data=dictionary)
            cur.create_dataset("dictionary_names", data=_sbytes(*dictionary_names))  # UTF-8


# ---------------------------------------------------------------------- NXstxm


def _entries(f: h5py.File) -> list[str]:
    names = [n for n in f if isinstance(f[n], h5py.Group) and _nx_class(f[n]) == "NXentry"]
    stxm = [n for n in names if "definition" in f[n]
            and _scalar_str(f[n]["definition"][()]).strip() == "NXstxm"]
    return stxm or names


def _find_axis(grp: h5py.Group, canon: str) -> str | None:
    for name in grp:
        if isinstance(grp[name], h5py.Dataset) and _AXIS_ALIASES.get(name.lower()) == canon \
                and name.lower() not in ("z",):
            return name
    return None


@_damaged
def read_nxstxm(path: Path, entry: str | None = None, channel: str | None = None) -> dict:
    """Read one NXstxm image stack into arrays in curiss order (E, y, x).

    Returns
    -------
    dict with ``energies``, ``od`` or ``counts`` (n_E, n_y, n_x), ``i0`` ((n_E,),
    (n_E, n_y, n_x) or None, from the entry's NXmonitor ``control``), ``x``, ``y``,
    ``name``, ``entry``, ``channel``, ``count_time``.
    """
    with _open(path) as f:
        entries = _entries(f)
        if not entries:
            raise ValueError(f"{path}: no NXentry group found (not a NeXus file?)")
        if entry is None:
            entry = entries[0]
        elif entry not in f or _nx_class(f[entry]) != "NXentry":
            raise ValueError(f"{path}: no NXentry {entry!r}; available: {entries}")
        ent = f[entry]
        channels = [c for c in ent if isinstance(ent[c], h5py.Group) and _nx_class(ent[c]) == "NXdata"]
        if not channels:
            raise ValueError(f"{path}:/{entry}: no NXdata group")
        if channel is None:
            default = _scalar_str(ent.attrs["default"]) if "default" in ent.attrs else None
            channel = default if default in channels else channels[0]
        elif channel not in channels:
            raise ValueError(f"{path}:/{entry}: no NXdata {channel!r}; available: {channels}")
        grp = ent[channel]
        where = f"{path}:/{entry}/{channel}"
        signal = _scalar_str(grp.attrs["signal"]) if "signal" in grp.attrs else "data"
        if signal not in grp:
            raise ValueError(f"{where}: signal dataset {signal!r} not found")
        ds = grp[signal]
        raw = np.asarray(ds[()])
        if raw.ndim != 3:
            raise ValueError(f"{where}/{signal}: need a 3-D image stack, got shape {raw.shape} "
                             "(line scans, point spectra and single images are not stacks)")
        names = {c: _find_axis(grp, c) for c in ("E", "y", "x")}
        if names["E"] is None:
            raise ValueError(f"{where}: no energy (or photon_energy) dataset")
        if "axes" in grp.attrs:
            order = _axes_order(_split_axes(grp.attrs["axes"]), where)
        elif all(n is not None and "axis" in grp[n].attrs for n in names.values()):
            order = tuple(int(grp[names[c]].attrs["axis"]) - 1 for c in ("E", "y", "x"))
        elif all(n is not None and f"{n}_indices" in grp.attrs for n in names.values()):
            order = tuple(int(np.ravel(grp.attrs[f"{names[c]}_indices"])[0]) for c in ("E", "y", "x"))
        else:
            order = (0, 1, 2)
        if sorted(order) != [0, 1, 2]:
            raise ValueError(f"{where}: axis order {order} is not a permutation of (0, 1, 2)")

        def to_eyx(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(np.transpose(a, order), dtype=np.float64)

        data = to_eyx(raw)
        energies = np.asarray(grp[names["E"]][()], dtype=np.float64).ravel()
        out: dict = {"energies": energies, "od": None, "counts": None, "i0": None,
                     "x": None, "y": None, "entry": entry, "channel": channel,
                     "count_time": None}
        if data.shape[0] != energies.size:
            raise ValueError(f"{where}: {signal} has {data.shape[0]} energies along its energy axis "
                             f"but {names['E']} has {energies.size} values")
        for c, n in (("y", data.shape[1]), ("x", data.shape[2])):
            if names[c] is not None:
                pos = np.asarray(grp[names[c]][()], dtype=np.float64).ravel()
                if pos.size != n:
                    raise ValueError(f"{where}: {names[c]} has {pos.size} values but {signal} has "
                                     f"{n} along that axis")
                out[c] = None if _is_pixel(grp[names[c]]) else pos
        if "count_time" in grp:
            ct = np.asarray(grp["count_time"][()], dtype=np.float64)
            out["count_time"] = ct.ravel() if ct.size == energies.size else None
        if _is_od(ds):
            out["od"] = data
        else:
            out["counts"] = data
            monitors = [m for m in ent if isinstance(ent[m], h5py.Group)
                        and _nx_class(ent[m]) == "NXmonitor" and "data" in ent[m]]
            mon = "control" if "control" in monitors else (monitors[0] if monitors else None)
            if mon is not None:
                i0 = np.asarray(ent[mon]["data"][()], dtype=np.float64)
                if i0.shape == raw.shape:
                    out["i0"] = to_eyx(i0)
                elif i0.size == energies.size:
                    out["i0"] = i0.ravel()
                else:
                    raise ValueError(f"{path}:/{entry}/{mon}/data has shape {i0.shape}; expected "
                                     f"({energies.size},) or the signal's shape {raw.shape}")
        title = ent.get("title")
        out["name"] = _scalar_str(title[()]) if isinstance(title, h5py.Dataset) else path.stem
    return _sort_energy(out, ("od", "counts", "i0", "count_time"))


# ---------------------------------------------------------------------- results export

_ENTRY = "entry1"
_CHANNEL = "counter0"


def _sbytes(*words: str) -> np.ndarray:
    return np.array([w.encode("utf-8") for w in words])


def write_results(path: Path, arrays: dict, metadata: dict | None, title: str) -> None:
    """Write the curiss NXstxm export. ``arrays`` holds validated numpy arrays."""
    completed = arrays["completed"]
    n_e, n_y, n_x = completed.shape
    now = _dt.datetime.now(_dt.timezone.utc).isoformat()
    with _create(path) as f:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["default"] = _ENTRY
        f.attrs["creator"] = "curiss"
        f.attrs["file_time"] = now
        f.attrs["HDF5_Version"] = h5py.version.hdf5_version
        ent = f.create_group(_ENTRY)
        ent.attrs["NX_class"] = "NXentry"
        ent.attrs["default"] = _CHANNEL
        ent.create_dataset("definition", data=_sbytes("NXstxm"))
        ent.create_dataset("title", data=_sbytes(title))
        ent.create_dataset("start_time", data=_sbytes(str((metadata or {}).get("start_time", now))))
        ent.create_dataset("end_time", data=_sbytes(str((metadata or {}).get("end_time", now))))
        # The stack: the only NXdata group, so MANTiS (which picks the first NXdata) opens it.
        grp = ent.create_group(_CHANNEL)
        grp.attrs["NX_class"] = "NXdata"
        grp.attrs["signal"] = "data"
        grp.attrs["axes"] = _sbytes("energy", "sample_y", "sample_x")
        grp.attrs["energy_indices"] = 0
        grp.attrs["sample_y_indices"] = 1
        grp.attrs["sample_x_indices"] = 2
        ds = grp.create_dataset("data", data=completed, compression="gzip", shuffle=True)
        ds.attrs["long_name"] = "optical density (completed)"
        ds.attrs["units"] = ""
        ds.attrs[OD_MARKER] = "optical_density"
        e = grp.create_dataset("energy", data=arrays["energies"])
        e.attrs["units"] = "eV"
        for key, n in (("sample_y", n_y), ("sample_x", n_x)):
            pos = arrays.get(key)
            d = grp.create_dataset(key, data=np.arange(n, dtype=np.float64) if pos is None else pos)
            d.attrs["units"] = "pixel" if pos is None else "um"
        ct = grp.create_dataset("count_time", data=arrays["count_time"])
        ct.attrs["units"] = "s"
        grp.create_dataset("stxm_scan_type", data=_sbytes("sample image stack"))
        # Acquisition (not NXdata, so viewers do not mistake it for another channel).
        if arrays.get("mask") is not None or arrays.get("measured") is not None:
            acq = ent.create_group("sampling")
            acq.attrs["NX_class"] = "NXcollection"
            if arrays.get("mask") is not None:
                m = acq.create_dataset("mask", data=arrays["mask"].astype(np.uint8),
                                       compression="gzip", shuffle=True)
                m.attrs["long_name"] = "True (1) where measured; (n_E, n_y, n_x)"
                m.attrs["curiss_dtype"] = "bool"
                acq.attrs["sampling_ratio"] = float(arrays["mask"].mean())
            if arrays.get("measured") is not None:
                acq.create_dataset("measured", data=arrays["measured"], compression="gzip",
                                   shuffle=True).attrs["long_name"] = "measured optical density"
        keys = ("labels", "cluster_spectra", "eigenspectra")
        if any(arrays.get(k) is not None for k in keys):
            ana = ent.create_group("analysis")
            ana.attrs["NX_class"] = "NXprocess"
            ana.create_dataset("program", data="curiss")
            for k, desc in zip(keys, ("cluster label per pixel (n_y, n_x)",
                                      "mean spectrum per cluster (n_E, n_clusters)",
                                      "SVD eigenspectra (n_E, n_components)")):
                if arrays.get(k) is not None:
                    ana.create_dataset(k, data=arrays[k]).attrs["long_name"] = desc
        note = ent.create_group("curiss")
        note.attrs["NX_class"] = "NXnote"
        note.create_dataset("type", data="application/json")
        note.create_dataset("data", data=json.dumps(metadata or {}, sort_keys=True))


@_damaged
def read_results(path: Path) -> dict:
    """Read a file written by :func:`write_results`."""
    with _open(path) as f:
        if _ENTRY not in f or _CHANNEL not in f[_ENTRY]:
            raise ValueError(f"{path}: not a curiss export (no /{_ENTRY}/{_CHANNEL})")
        ent = f[_ENTRY]
        grp = ent[_CHANNEL]
        out: dict = {
            "energies": np.asarray(grp["energy"][()], dtype=np.float64),
            "completed": np.asarray(grp["data"][()]),
            "sample_x": None, "sample_y": None,
            "count_time": np.asarray(grp["count_time"][()]),
            "mask": None, "measured": None, "labels": None,
            "cluster_spectra": None, "eigenspectra": None, "metadata": {},
        }
        for key in ("sample_x", "sample_y"):
            if _scalar_str(grp[key].attrs.get("units", "")) != "pixel":
                out[key] = np.asarray(grp[key][()])
        if "sampling" in ent:
            acq = ent["sampling"]
            if "mask" in acq:
                out["mask"] = np.asarray(acq["mask"][()]).astype(bool)
            if "measured" in acq:
                out["measured"] = np.asarray(acq["measured"][()])
        if "analysis" in ent:
            for k in ("labels", "cluster_spectra", "eigenspectra"):
                if k in ent["analysis"]:
                    out[k] = np.asarray(ent["analysis"][k][()])
        if "curiss" in ent and "data" in ent["curiss"]:
            out["metadata"] = json.loads(_scalar_str(ent["curiss"]["data"][()]))
    return out
