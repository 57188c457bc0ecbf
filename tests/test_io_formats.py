"""Tests of the recorded-stack readers (ALS .hdr/.xim, data-exchange, NXstxm) and the NeXus export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from curiss.io import (
    Stack,
    load_dictionary,
    load_stack,
    read_als_hdr,
    read_dataexchange,
    read_nexus_results,
    read_nxstxm,
    read_reference_spectra,
    save_stack,
    write_dataexchange,
    write_nexus,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ALS = DATA / "als_stxm_fe_L23_breier2012"
SEEDS = [0, 1, 2]


# --------------------------------------------------------------------------- helpers


def _points(n_or_values: np.ndarray) -> str:
    v = np.asarray(n_or_values)
    return f"({v.size}, " + ", ".join(f"{x:.3f}" for x in v) + ")"


def _write_als(folder: Path, stem: str, energies, x, y, counts, i0=None) -> Path:
    """An ALS/aXis raw stack: header + one .xim (rows = y) per energy + optional i0.xsp."""
    folder.mkdir(parents=True, exist_ok=True)
    hdr = folder / f"{stem}.hdr"
    hdr.write_text(
        f'ScanDefinition = {{ Label = "{stem}.hdr"; Type = "NEXAFS Image Scan"; '
        'Flags = "Image Stack"; Dwell = 1.5;\n'
        "\tRegions = (1,\n{\n"
        f'\t\t\tPAxis = {{ Name = "Sample X"; Unit = "um"; Min = 0; Max = 1; Dir = 1;\n'
        f"\t\t\t\tPoints = {_points(x)};\n}};\n\n"
        f'\t\t\tQAxis = {{ Name = "Sample Y"; Unit = "um"; Min = 0; Max = 1; Dir = 1;\n'
        f"\t\t\t\tPoints = {_points(y)};\n}};\n}});\n\n"
        f'\tStackAxis = {{ Name = "Energy"; Unit = "eV"; Min = 0; Max = 1; Dir = 1;\n'
        f"\t\tPoints = {_points(energies)};\n}};\n"
        '\tChannels = (1,\n{ Name = "counter1"; Unit = "counts";});\n};\n'
        ' Time = "2007 December 14 18:52:00";\n'
    )
    for k, img in enumerate(counts):
        np.savetxt(folder / f"{stem}_a{k:03d}.xim", img, fmt="%.6f", delimiter="\t")
    if i0 is not None:
        np.savetxt(folder / "i0.xsp", np.column_stack([energies, i0]), fmt="%.17g")
    return hdr


def _random_raw(seed: int, n_e: int = 6, n_y: int = 3, n_x: int = 5):
    """Integer counts (exact in text), I0, positions on a 3-decimal grid (as in .hdr files)."""
    rng = np.random.default_rng(seed)
    energies = np.round(700.0 + np.sort(rng.choice(np.arange(0, 30000), n_e, replace=False)) / 1000, 3)
    x = np.round(-10.0 + 0.08 * np.arange(n_x), 3)
    y = np.round(5.0 + 0.05 * np.arange(n_y), 3)
    counts = rng.integers(50, 1000, size=(n_e, n_y, n_x)).astype(np.float64)
    i0 = 1000.0 + 500.0 * rng.random(n_e)
    return energies, x, y, counts, i0


def _stack(seed: int, *, with_i0: bool = True, n_e: int = 7, n_y: int = 4, n_x: int = 6) -> Stack:
    rng = np.random.default_rng(seed)
    energies = np.cumsum(0.1 + rng.random(n_e)) + 280.0
    dic = rng.random((n_e, 2))
    return Stack(
        energies=energies,
        cube=rng.normal(0.5, 0.3, size=(n_e, n_y, n_x)),
        i0=(1e4 * (1 + rng.random(n_e))) if with_i0 else None,
        dictionary=dic if with_i0 else None,
        dictionary_names=("a", "b") if with_i0 else (),
        name=f"stack{seed}",
        x_um=rng.normal(size=n_x).cumsum() if with_i0 else None,
        y_um=np.arange(n_y) * 0.25 if with_i0 else None,
    )


def _nxstxm(path: Path, energies, x, y, counts_eyx, control, *, layout: str = "axes") -> Path:
    """An NXstxm file laid out like the ALS/CLS/Diamond STXM NeXus files."""
    with h5py.File(path, "w") as f:
        f.attrs["NX_class"] = "NXroot"
        ent = f.create_group("entry0")
        ent.attrs["NX_class"] = b"NXentry"
        ent.create_dataset("definition", data=np.array([b"NXstxm"]))
        ent.create_dataset("title", data=np.array([b"my sample"]))
        grp = ent.create_group("counter0")
        grp.attrs["NX_class"] = b"NXdata"
        grp.attrs["signal"] = b"data"
        grp.create_dataset("energy", data=energies)
        grp.create_dataset("sample_x", data=x)
        grp.create_dataset("sample_y", data=y)
        grp.create_dataset("count_time", data=np.full(len(energies), 1e-3))
        grp.create_dataset("stxm_scan_type", data=np.array([b"sample image stack"]))
        if layout == "axes":
            grp.attrs["axes"] = np.array([b"energy", b"sample_y", b"sample_x"])
            grp.create_dataset("data", data=counts_eyx)
            ctrl = control
        else:  # pre-specification files: data (x, y, E) and 1-based "axis" attributes
            grp.create_dataset("data", data=counts_eyx.transpose(2, 1, 0))
            grp["sample_x"].attrs["axis"] = 1
            grp["sample_y"].attrs["axis"] = 2
            grp["energy"].attrs["axis"] = 3
            ctrl = control if np.ndim(control) == 1 else control.transpose(2, 1, 0)
        if control is not None:
            mon = ent.create_group("control")
            mon.attrs["NX_class"] = b"NXmonitor"
            mon.create_dataset("data", data=ctrl)
    return path


# --------------------------------------------------------------------------- ALS .hdr/.xim


@pytest.fixture(scope="module", params=["71214078", "71214098"])
def als_pair(request):
    sid = request.param
    hdr = ALS / sid / f"{sid}.hdr"
    npz = ALS / f"{sid}_stack.npz"
    if not (hdr.is_file() and npz.is_file()):
        pytest.skip("shared/data ALS stacks not available")
    return read_als_hdr(hdr), npz


def test_als_hdr_equals_converted_npz(als_pair):
    stack, npz = als_pair
    with np.load(npz) as z:
        energies, counts, i0 = z["energies_eV"], z["transmitted"], z["i0"]
        x_um, y_um = z["x_um"], z["y_um"]
    assert stack.cube.shape == counts.shape
    np.testing.assert_array_equal(stack.energies, energies)
    np.testing.assert_array_equal(stack.i0, i0)
    np.testing.assert_array_equal(stack.x_um, x_um)
    np.testing.assert_array_equal(stack.y_um, y_um)
    # same transmitted counts up to the float32 rounding of the npz (same orientation)
    recovered = stack.i0[:, None, None] * np.exp(-stack.cube)
    np.testing.assert_allclose(recovered, counts, rtol=2e-7, atol=1e-4)
    # load_stack dispatches on .hdr (no pre-edge subtraction by default) and agrees with
    # the npz reader once the same pre-edge subtraction is applied
    ref = load_stack(npz)  # ALS npz default: subtract the mean OD below 705 eV
    pre = stack.energies < 705.0
    np.testing.assert_allclose(stack.cube - stack.cube[pre].mean(axis=0), ref.cube, atol=1e-6)
    assert stack.name == npz.stem.replace("_stack", "")


@pytest.mark.parametrize("seed", SEEDS)
def test_als_hdr_synthetic_orientation_and_od(tmp_path, seed):
    energies, x, y, counts, i0 = _random_raw(seed)
    hdr = _write_als(tmp_path / "raw", "12345678", energies, x, y, counts, i0)
    s = load_stack(hdr)
    assert s.cube.shape == (energies.size, y.size, x.size)  # rows = y (QAxis), cols = x (PAxis)
    np.testing.assert_array_equal(s.energies, energies)
    np.testing.assert_array_equal(s.x_um, x)
    np.testing.assert_array_equal(s.y_um, y)
    np.testing.assert_array_equal(s.i0, i0)
    np.testing.assert_allclose(s.cube, -np.log(counts / i0[:, None, None]), rtol=0, atol=1e-13)
    # an explicit I0 array overrides i0.xsp; a finer .xsp grid is interpolated
    s2 = read_als_hdr(hdr, i0=2 * i0)
    np.testing.assert_allclose(s2.cube, s.cube + np.log(2.0), atol=1e-12)
    fine_e = np.linspace(energies[0] - 1, energies[-1] + 1, 400)
    xsp = tmp_path / "other.xsp"
    np.savetxt(xsp, np.column_stack([fine_e, 3.0 + 0 * fine_e]))
    np.testing.assert_allclose(read_als_hdr(hdr, i0=xsp).i0, 3.0)


def test_als_hdr_errors(tmp_path):
    energies, x, y, counts, i0 = _random_raw(7)
    good = _write_als(tmp_path / "a", "1", energies, x, y, counts, i0)
    assert load_stack(good).cube.shape == counts.shape

    trunc = _write_als(tmp_path / "b", "1", energies, x, y, counts, i0)
    img = trunc.parent / "1_a002.xim"
    img.write_text("\n".join(img.read_text().splitlines()[:-1]) + "\n")  # drop the last row
    with pytest.raises(ValueError, match=r"1_a002\.xim.*truncated"):
        read_als_hdr(trunc)
    img.write_text(img.read_text()[:-20])  # cut inside a row: ragged
    with pytest.raises(ValueError, match=r"1_a002\.xim") as info:
        read_als_hdr(trunc)
    assert "usecols" not in str(info.value)  # numpy's advice on its own options, not the file's

    missing = _write_als(tmp_path / "c", "1", energies, x, y, counts, i0)
    (missing.parent / "1_a004.xim").unlink()
    with pytest.raises(ValueError, match=r"missing: 1_a004\.xim"):
        read_als_hdr(missing)

    extra = _write_als(tmp_path / "d", "1", energies[:-1], x, y, counts, i0=None)
    np.savetxt(extra.parent / "i0.xsp", np.column_stack([energies[:-1], i0[:-1]]))
    with pytest.raises(ValueError, match="disagree"):
        read_als_hdr(extra)

    swapped = _write_als(tmp_path / "e", "1", energies, x, y, counts.transpose(0, 2, 1), i0)
    with pytest.raises(ValueError, match="swapped"):
        read_als_hdr(swapped)

    narrow = _write_als(tmp_path / "f", "1", energies, x[:-1], y, counts, i0)
    with pytest.raises(ValueError, match=r"expected 3 rows .* of 4 values"):
        read_als_hdr(narrow)

    no_i0 = _write_als(tmp_path / "g", "1", energies, x, y, counts, i0=None)
    with pytest.raises(ValueError, match="no I0"):
        read_als_hdr(no_i0)
    with pytest.raises(ValueError, match="i0 must be"):
        read_als_hdr(no_i0, i0=np.ones(energies.size + 1))
    short = tmp_path / "short.xsp"
    np.savetxt(short, np.column_stack([energies[:3], i0[:3]]))
    with pytest.raises(ValueError, match="does not cover"):
        read_als_hdr(no_i0, i0=short)

    bad_hdr = tmp_path / "h" / "1.hdr"
    bad_hdr.parent.mkdir()
    bad_hdr.write_text(good.read_text().replace("StackAxis", "Stack"))
    with pytest.raises(ValueError, match="StackAxis"):
        read_als_hdr(bad_hdr)
    lying = tmp_path / "i" / "1.hdr"
    lying.parent.mkdir()
    lying.write_text(good.read_text().replace(f"Points = ({energies.size},", "Points = (99,"))
    with pytest.raises(ValueError, match="declares 99 values"):
        read_als_hdr(lying)
    with pytest.raises(ValueError, match="single .xim"):
        load_stack(good.parent / "1_a000.xim")


# --------------------------------------------------------------------------- data-exchange


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("with_i0", [True, False])
def test_dataexchange_round_trip_exact(tmp_path, seed, with_i0):
    s = _stack(seed, with_i0=with_i0)
    p = write_dataexchange(tmp_path / "s.h5", s)
    r = load_stack(p)
    np.testing.assert_array_equal(r.cube, s.cube)
    np.testing.assert_array_equal(r.energies, s.energies)
    assert r.name == s.name
    for attr in ("i0", "x_um", "y_um", "dictionary"):
        a, b = getattr(r, attr), getattr(s, attr)
        assert (a is None) == (b is None), attr
        if b is not None:
            np.testing.assert_array_equal(a, b)
    assert r.dictionary_names == s.dictionary_names
    # the MANTiS view of the file: data (n_x, n_y, n_E) counts + white spectrum give the same OD
    with h5py.File(p, "r") as f:
        data = f["exchange/data"][()]
        assert f["exchange/data"].attrs["axes"] == "x:y:energy"
        ws = f["spectromicroscopy/normalization/white_spectrum"][()]
        assert f["version"][()] in (b"1.0", "1.0")
    assert data.shape == (s.cube.shape[2], s.cube.shape[1], s.cube.shape[0])
    np.testing.assert_allclose(-np.log(data / ws).transpose(2, 1, 0), s.cube, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_dataexchange_mantis_style_counts(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n_e, n_y, n_x = 5, 3, 4
    energies = np.linspace(700, 710, n_e)
    counts = rng.integers(100, 900, size=(n_e, n_y, n_x)).astype(float)
    i0_e = np.linspace(695, 715, 41)  # I0 on its own, wider grid
    i0_v = 1000 + 10 * (i0_e - 700)
    p = tmp_path / "m.hdf5"
    with h5py.File(p, "w") as f:
        f["implements"] = "information:exchange:spectromicroscopy"
        f["version"] = "1.0"
        f["exchange/data"] = counts.transpose(2, 1, 0)  # (x, y, E), no axes attribute
        f["exchange/energy"] = energies
        f["spectromicroscopy/normalization/white_spectrum"] = i0_v
        f["spectromicroscopy/normalization/white_spectrum_energy"] = i0_e
    s = read_dataexchange(p)
    expected_i0 = 1000 + 10 * (energies - 700)
    np.testing.assert_allclose(s.i0, expected_i0, rtol=1e-12)
    np.testing.assert_allclose(s.cube, -np.log(counts / expected_i0[:, None, None]), atol=1e-12)
    assert s.x_um is None or s.x_um.shape == (n_x,)

    # image-per-energy layout (E, y, x) with a per-pixel white field
    q = tmp_path / "e.h5"
    white = rng.uniform(900, 1100, size=(n_e, n_y, n_x))
    with h5py.File(q, "w") as f:
        f["exchange/data"] = counts
        f["exchange/energy"] = energies
        f["exchange/white_data"] = white
    np.testing.assert_allclose(load_stack(q).cube, -np.log(counts / white), atol=1e-12)


def test_dataexchange_errors(tmp_path):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["exchange/data"] = np.ones((4, 3, 5))
        f["exchange/energy"] = np.arange(6.0)
    with pytest.raises(ValueError, match="no axis matches the energies"):
        load_stack(p)
    with h5py.File(p, "w") as f:
        f["exchange/data"] = np.ones((4, 3, 5))
        f["exchange/energy"] = np.arange(5.0)
    with pytest.raises(ValueError, match="no I0"):
        load_stack(p)
    with h5py.File(p, "w") as f:
        f["exchange/data"] = np.ones((4, 3, 5))
        f["exchange/data"].attrs["axes"] = "x:y:energy"
        f["exchange/energy"] = np.arange(5.0)
        f["exchange/x"] = np.arange(7.0)
        f["exchange/white_data"] = np.ones(5)
    with pytest.raises(ValueError, match=r"/exchange/x has 7 values"):
        load_stack(p)
    with pytest.raises(TypeError, match="Stack"):
        write_dataexchange(tmp_path / "x.h5", np.zeros((2, 2, 2)))


# --------------------------------------------------------------------------- NXstxm


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", ["axes", "axis_attrs"])
@pytest.mark.parametrize("per_pixel", [False, True])
def test_nxstxm_read(tmp_path, seed, layout, per_pixel):
    rng = np.random.default_rng(seed)
    n_e, n_y, n_x = 6, 3, 5
    energies = 280 + np.cumsum(rng.uniform(0.1, 1.0, n_e))
    x, y = np.linspace(-5, 5, n_x), np.linspace(1, 2, n_y)
    counts = rng.uniform(10, 900, size=(n_e, n_y, n_x))
    control = rng.uniform(900, 1100, size=(n_e, n_y, n_x) if per_pixel else n_e)
    p = _nxstxm(tmp_path / "s.hdf5", energies, x, y, counts, control, layout=layout)
    s = load_stack(p)
    i0b = control if per_pixel else control[:, None, None]
    np.testing.assert_array_equal(s.cube, -np.log(counts / i0b))
    np.testing.assert_array_equal(s.energies, energies)
    np.testing.assert_array_equal(s.x_um, x)
    np.testing.assert_array_equal(s.y_um, y)
    np.testing.assert_allclose(s.i0, control.mean(axis=(1, 2)) if per_pixel else control)
    assert s.name == "my sample"


def test_nxstxm_sorts_energies_and_errors(tmp_path):
    rng = np.random.default_rng(3)
    energies = np.array([290.0, 280.0, 285.0])
    x, y = np.arange(4.0), np.arange(2.0)
    counts = rng.uniform(10, 100, size=(3, 2, 4))
    p = _nxstxm(tmp_path / "u.nxs", energies, x, y, counts, np.full(3, 200.0))
    s = read_nxstxm(p)
    np.testing.assert_array_equal(s.energies, [280.0, 285.0, 290.0])
    np.testing.assert_array_equal(s.cube[0], -np.log(counts[1] / 200.0))

    no_i0 = _nxstxm(tmp_path / "n.nxs", np.sort(energies), x, y, counts, None)
    with pytest.raises(ValueError, match="no NXmonitor"):
        load_stack(no_i0)
    np.testing.assert_allclose(read_nxstxm(no_i0, i0=np.full(3, 5.0)).cube, -np.log(counts / 5.0))

    bad_x = _nxstxm(tmp_path / "x.nxs", np.sort(energies), np.arange(5.0), y, counts, np.ones(3))
    with pytest.raises(ValueError, match="sample_x has 5 values"):
        load_stack(bad_x)
    bad_e = _nxstxm(tmp_path / "e.nxs", np.arange(4.0), x, y, counts, np.ones(3))
    with pytest.raises(ValueError, match="energy has 4 values"):
        load_stack(bad_e)
    with h5py.File(tmp_path / "img.nxs", "w") as f:
        ent = f.create_group("entry")
        ent.attrs["NX_class"] = "NXentry"
        grp = ent.create_group("counter0")
        grp.attrs["NX_class"] = "NXdata"
        grp["data"] = np.ones((2, 4))
        grp["energy"] = [280.0]
    with pytest.raises(ValueError, match="3-D image stack"):
        load_stack(tmp_path / "img.nxs")
    with pytest.raises(ValueError, match="no NXentry 'nope'"):
        read_nxstxm(p, entry="nope")
    with pytest.raises(ValueError, match="no NXdata 'nope'"):
        read_nxstxm(p, channel="nope")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["foo"] = np.ones(3)
    with pytest.raises(ValueError, match="unsupported HDF5 layout"):
        load_stack(tmp_path / "other.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        load_stack(tmp_path / "junk.h5")
    with pytest.raises(ValueError, match="unsupported stack format '.tif'"):
        load_stack(tmp_path / "a.tif")


# --------------------------------------------------------------------------- export


def _results(seed: int, n_e: int = 8, n_y: int = 5, n_x: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_e, n_y, n_x)) < 0.3
    measured = np.where(mask, rng.normal(size=mask.shape), np.nan)
    return dict(
        energies=700 + np.cumsum(rng.uniform(0.1, 1, n_e)),
        completed=rng.normal(size=(n_e, n_y, n_x)),
        mask=mask,
        labels=rng.integers(0, 4, size=(n_y, n_x)),
        cluster_spectra=rng.random((n_e, 4)),
        eigenspectra=rng.normal(size=(n_e, 3)),
        measured=measured,
        metadata={"uid": f"run-{seed}", "method": "acuriss", "sampling_ratio": np.float64(0.3),
                  "shape": np.array([n_y, n_x]), "nested": {"tol": 1e-3, "names": ["a", "b"]}},
        sample_x=np.linspace(0, 1, n_x),
        sample_y=np.linspace(0, 2, n_y),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_write_nexus_round_trip(tmp_path, seed):
    res = _results(seed)
    p = write_nexus(tmp_path / "out.nxs", **res)
    back = read_nexus_results(p)
    for key in ("energies", "completed", "mask", "labels", "cluster_spectra", "eigenspectra",
                "sample_x", "sample_y"):
        np.testing.assert_array_equal(back[key], res[key], err_msg=key)
    np.testing.assert_array_equal(back["measured"], res["measured"])  # NaN where not measured
    assert back["mask"].dtype == bool
    assert back["metadata"] == json.loads(json.dumps(
        {**res["metadata"], "sampling_ratio": 0.3, "shape": res["metadata"]["shape"].tolist()}))
    # load_stack opens the export as a stack of the completed OD
    s = load_stack(p)
    np.testing.assert_array_equal(s.cube, res["completed"])
    np.testing.assert_array_equal(s.energies, res["energies"])
    np.testing.assert_array_equal(s.x_um, res["sample_x"])
    assert s.i0 is None


def test_write_nexus_is_nxstxm_as_mantis_reads_it(tmp_path):
    res = _results(5)
    p = write_nexus(tmp_path / "out.nxs", energies=res["energies"], completed=res["completed"])
    with h5py.File(p, "r") as f:
        entries = [e for e in f if f[e].attrs.get("NX_class") in (b"NXentry", "NXentry")]
        assert len(entries) == 1
        ent = f[entries[0]]
        assert ent["definition"][0].decode("utf-8") == "NXstxm"
        nxdata = [c for c in ent if ent[c].attrs.get("NX_class") in (b"NXdata", "NXdata")]
        assert len(nxdata) == 1  # MANTiS opens the first NXdata group as the stack
        grp = ent[nxdata[0]]
        axes = [a.decode("UTF-8") for a in grp.attrs["axes"]]
        order = [axes.index("sample_x"), axes.index("sample_y"), axes.index("energy")]
        absdata = np.transpose(grp[grp.attrs["signal"]][()], axes=order)  # MANTiS (x, y, E)
        assert grp["count_time"].shape == (res["energies"].size,)
        assert grp["stxm_scan_type"][0].decode("utf-8") == "sample image stack"
        n_x, n_y = len(grp["sample_x"]), len(grp["sample_y"])
    np.testing.assert_array_equal(absdata, res["completed"].transpose(2, 1, 0))
    assert (n_x, n_y) == (res["completed"].shape[2], res["completed"].shape[1])
    back = read_nexus_results(p)
    assert back["mask"] is None and back["labels"] is None and back["metadata"] == {}
    assert back["sample_x"] is None


def test_write_nexus_errors(tmp_path):
    res = _results(1)
    p = tmp_path / "e.nxs"
    n_e, n_y, n_x = res["completed"].shape
    with pytest.raises(ValueError, match="completed must have shape"):
        write_nexus(p, energies=res["energies"], completed=res["completed"][0])
    with pytest.raises(ValueError, match="strictly increasing"):
        write_nexus(p, energies=res["energies"][::-1], completed=res["completed"])
    with pytest.raises(ValueError, match="mask must have shape"):
        write_nexus(p, energies=res["energies"], completed=res["completed"], mask=res["mask"][:, 1:])
    with pytest.raises(TypeError, match="mask must be boolean"):
        write_nexus(p, energies=res["energies"], completed=res["completed"],
                    mask=res["mask"] * 0.5)
    with pytest.raises(TypeError, match="labels must be integers"):
        write_nexus(p, energies=res["energies"], completed=res["completed"],
                    labels=np.zeros((n_y, n_x)))
    with pytest.raises(ValueError, match="labels must have shape"):
        write_nexus(p, energies=res["energies"], completed=res["completed"],
                    labels=np.zeros((n_x, n_y), int))
    with pytest.raises(ValueError, match="cluster_spectra must have shape"):
        write_nexus(p, energies=res["energies"], completed=res["completed"],
                    cluster_spectra=np.zeros((n_e + 1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        bad = res["completed"].copy()
        bad[0, 0, 0] = np.nan
        write_nexus(p, energies=res["energies"], completed=bad)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        write_nexus(p, energies=res["energies"], completed=res["completed"],
                    metadata={"f": object()})
    # measured must be finite exactly where mask is True (it used to be written unchecked)
    full = np.where(res["mask"], res["measured"], 1.0)
    with pytest.raises(ValueError, match="values at .* entries that mask says were not measured"):
        write_nexus(p, energies=res["energies"], completed=res["completed"], mask=res["mask"],
                    measured=full)
    holed = res["measured"].copy()
    holed[np.argwhere(res["mask"])[0][0], np.argwhere(res["mask"])[0][1],
          np.argwhere(res["mask"])[0][2]] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf at 1 entries that mask says were measured"):
        write_nexus(p, energies=res["energies"], completed=res["completed"], mask=res["mask"],
                    measured=holed)
    assert not p.exists()
    with pytest.raises(ValueError, match="not a curiss export"):
        read_nexus_results(_nxstxm(tmp_path / "n.nxs", np.arange(2.0), np.arange(3.0),
                                   np.arange(2.0), np.ones((2, 2, 3)), np.ones(2)))


# --------------------------------------------------------------------------- Stack positions


def test_stack_positions_validated_and_saved(tmp_path):
    s = _stack(0)
    with pytest.raises(ValueError, match="x_um must have shape"):
        Stack(energies=s.energies, cube=s.cube, x_um=np.arange(3.0))
    save_stack(tmp_path / "s.npz", s)
    r = load_stack(tmp_path / "s.npz")
    np.testing.assert_array_equal(r.x_um, s.x_um)
    np.testing.assert_array_equal(r.y_um, s.y_um)


def test_dataexchange_keeps_non_ascii_reference_names(tmp_path):
    st = Stack(energies=[700.0, 710.0, 720.0], cube=np.ones((3, 2, 2)),
               dictionary=np.eye(3)[:, :2], dictionary_names=("Fe³⁺", "α-Fe2O3"))
    p = write_dataexchange(tmp_path / "u.h5", st)
    assert load_stack(p).dictionary_names == ("Fe³⁺", "α-Fe2O3")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["u.h5"]  # no temporary file left


def test_a_failed_hdf5_write_leaves_no_partial_file_and_the_old_one_intact(tmp_path, monkeypatch):
    import curiss._formats_hdf5 as h5fmt

    st = Stack(energies=[700.0, 710.0, 720.0], cube=np.ones((3, 2, 2)),
               dictionary=np.eye(3)[:, :2], dictionary_names=("a", "b"))
    old = write_dataexchange(tmp_path / "old.h5", st)
    before = old.read_bytes()

    def fail(*words):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5fmt, "_sbytes", fail)  # fails after the arrays are written
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataexchange(tmp_path / "new.h5", st)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataexchange(old, st)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["old.h5"]
    assert old.read_bytes() == before


def test_a_failed_npz_write_leaves_no_partial_file_and_the_old_one_intact(tmp_path, monkeypatch):
    """save_stack wrote straight onto the target: a full disk left a truncated .npz that
    load_stack refused ("not a complete zip archive"), and the old file was gone."""
    from curiss.io import save_stack

    st = Stack(energies=[700.0, 710.0, 720.0], cube=np.ones((3, 2, 2)))
    save_stack(tmp_path / "old.npz", st)
    before = (tmp_path / "old.npz").read_bytes()
    real = np.savez_compressed

    def fail(fh, **arrays):
        real(fh, **arrays)
        raise OSError(27, "File too large")

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(OSError, match="File too large"):
        save_stack(tmp_path / "old.npz", Stack(energies=[700.0, 710.0], cube=np.zeros((2, 4, 4))))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["old.npz"]
    assert (tmp_path / "old.npz").read_bytes() == before
    monkeypatch.setattr(np, "savez_compressed", real)
    save_stack(tmp_path / "run", st)  # the suffix numpy used to add is still added
    np.testing.assert_array_equal(load_stack(tmp_path / "run.npz").cube, st.cube)


@pytest.mark.parametrize("writer", ["save_stack", "write_dataexchange", "write_nexus"])
def test_writers_refuse_what_their_readers_would_refuse_and_name_the_destination(tmp_path, writer):
    """A NaN cube was written and then refused by load_stack; a folder or a missing folder as
    destination was reported under the temporary file's name (.x.nxs.6422.part)."""
    import curiss.io as cio

    def write(path, cube):
        st = Stack(energies=[700.0, 710.0], cube=cube)
        if writer == "write_nexus":
            return cio.write_nexus(path, energies=st.energies, completed=st.cube)
        return getattr(cio, writer)(path, st)

    bad = np.ones((2, 3, 3))
    bad[1, 2, 0] = np.nan
    if writer != "write_nexus":  # (write_nexus has always refused it)
        with pytest.raises(ValueError, match="stack.cube contains NaN/Inf"):
            write(tmp_path / "nan.x", bad)
    folder = tmp_path / "d.npz"  # (save_stack would add .npz to another name)
    folder.mkdir()
    with pytest.raises(ValueError, match=f"{folder}: is a directory"):
        write(folder, np.ones((2, 3, 3)))
    folder.rmdir()
    missing = tmp_path / "nodir" / ("x.npz" if writer == "save_stack" else "x.h5")
    with pytest.raises(ValueError, match=f"{missing}: its folder .* does not exist"):
        write(missing, np.ones((2, 3, 3)))
    assert sorted(x.name for x in tmp_path.iterdir()) == []


def test_an_hdf5_file_laid_out_wrongly_is_a_value_error_naming_it(tmp_path):
    """h5py opened these, then TypeError/RuntimeError escaped (a traceback from the CLI)."""
    group = tmp_path / "group.h5"
    with h5py.File(group, "w") as f:
        f.create_group("exchange/data")  # a group where the dataset belongs
        f["exchange/energy"] = np.arange(3.0)
    with pytest.raises(ValueError, match=f"{group}: damaged or unsupported HDF5 layout"):
        load_stack(group)
    axes = tmp_path / "axes.nxs"
    with h5py.File(axes, "w") as f:
        entry = f.create_group("entry1")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("counter0")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "data"
        data.attrs["axes"] = np.int64(3)  # not a list of names
        data["data"] = np.ones((2, 3, 3))
        data["energy"] = np.arange(2.0)
    with pytest.raises(ValueError, match=f"{axes}: damaged or unsupported HDF5 layout"):
        load_stack(axes)


def test_an_npz_stack_error_names_the_file_and_an_empty_name_falls_back_to_it(tmp_path):
    from curiss.io import save_stack

    p = tmp_path / "descending.npz"
    np.savez(p, energies=np.array([720.0, 710.0]), cube=np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=f"{p}: energies must be strictly increasing"):
        load_stack(p)
    save_stack(tmp_path / "unnamed.npz", Stack(energies=[700.0, 710.0], cube=np.ones((2, 2, 2))))
    assert load_stack(tmp_path / "unnamed.npz").name == "unnamed"  # not ""


def test_nxstxm_takes_a_given_i0_in_the_files_energy_order(tmp_path):
    """The reader sorted the energies, then paired the given I0 with the sorted grid: a file
    recorded from high to low energy got each I0 at the wrong energy (read_als_hdr takes the
    values in file order)."""
    rng = np.random.default_rng(1)
    energies = np.array([720.0, 715.0, 705.0, 710.0])
    i0 = np.array([4000.0, 3000.0, 1000.0, 2000.0])  # one per recorded energy
    od = rng.uniform(0.1, 1.0, (4, 2, 3))
    p = _nxstxm(tmp_path / "down.nxs", energies, np.arange(3.0), np.arange(2.0),
                i0[:, None, None] * np.exp(-od), None)
    s = read_nxstxm(p, i0=i0)
    order = np.argsort(energies)
    np.testing.assert_array_equal(s.energies, energies[order])
    np.testing.assert_allclose(s.i0, i0[order])
    np.testing.assert_allclose(s.cube, od[order], atol=1e-12)


def test_dataexchange_with_as_many_x_pixels_as_energies_needs_its_axes(tmp_path):
    """Without an 'axes' attribute a (6, 4, 6) dataset on 6 energies was read as (x, y, E),
    silently swapping x and energy in a file laid out (E, y, x)."""
    rng = np.random.default_rng(2)
    counts = rng.uniform(10.0, 100.0, (6, 4, 6))  # (E, y, x)
    p = tmp_path / "eyx.h5"
    with h5py.File(p, "w") as f:
        f["exchange/data"] = counts
        f["exchange/energy"] = np.linspace(700.0, 710.0, 6)
        f["exchange/white_data"] = np.full(6, 200.0)
    with pytest.raises(ValueError, match=r"eyx.h5: /exchange/data has shape \(6, 4, 6\) .* both "
                                         r"fit, .* no 'axes' attribute"):
        load_stack(p)
    with h5py.File(p, "a") as f:
        f["exchange/data"].attrs["axes"] = "energy:y:x"
    s = load_stack(p)
    np.testing.assert_allclose(s.cube, -np.log(counts / 200.0))


def test_refusals_of_hdf5_als_and_reference_files_name_the_file(tmp_path):
    """A repeated energy in an NXstxm, data-exchange or .hdr stack, and a reference grid in keV,
    were refused without the file's name (curiss compare reads a stack and a reference file)."""
    x, y = np.arange(3.0), np.arange(2.0)
    counts = np.full((3, 2, 3), 50.0)
    nxs = _nxstxm(tmp_path / "dup.nxs", np.array([700.0, 700.0, 701.0]), x, y, counts,
                  np.full(3, 100.0))
    with pytest.raises(ValueError, match=r"dup.nxs: energies must be strictly increasing"):
        load_stack(nxs)
    hdr = _write_als(tmp_path / "als", "dup", np.array([700.0, 701.0, 701.0]), x, y, counts,
                     i0=np.full(3, 100.0))
    with pytest.raises(ValueError, match=r"dup.hdr: energies must be strictly increasing"):
        load_stack(hdr)
    refs = tmp_path / "ref_kev.txt"
    refs.write_text("7.10 0.1\n7.20 0.5\n7.30 0.9\n")
    with pytest.raises(ValueError, match=r"ref_kev.txt: reference grid .* does not cover"):
        load_dictionary(refs, np.array([7110.0, 7150.0]))


def test_reference_spectra_of_a_converted_als_stack_are_its_two_references(tmp_path):
    """read_reference_spectra / load_dictionary on a converted ALS .npz took its I0 spectrum and
    both forms of each reference as five 'references'."""
    e = np.linspace(700.0, 720.0, 8)
    arrays = dict(energies_eV=e, transmitted=np.full((8, 2, 3), 0.5), i0=np.full(8, 900.0),
                  x_um=np.arange(3.0), y_um=np.arange(2.0),
                  oxidized_r=np.linspace(0, 2, 8), reduced_r=np.linspace(0, 1, 8),
                  oxidized_t=np.linspace(0, 1.2, 8), reduced_t=np.linspace(0, 0.9, 8))
    np.savez(tmp_path / "als_stack.npz", **arrays)
    ref_e, spectra, names = read_reference_spectra(tmp_path / "als_stack.npz")
    assert names == ("oxidized_t", "reduced_t")
    np.testing.assert_array_equal(spectra, np.column_stack([arrays["oxidized_t"],
                                                            arrays["reduced_t"]]))
    stack = load_stack(tmp_path / "als_stack.npz", subtract_pre_edge=None)
    np.testing.assert_array_equal(stack.dictionary[:, :2], spectra)  # as load_stack reads them
    # another .npz: every 1-D array of the grid's length but i0 and the positions
    np.savez(tmp_path / "refs.npz", energies=e, i0=np.ones(8), x_um=np.arange(8.0), a=np.ones(8))
    assert read_reference_spectra(tmp_path / "refs.npz")[2] == ("a",)


def test_nxstxm_monitor_that_holds_a_ring_current_is_said_and_a_given_i0_replaces_it(tmp_path):
    """NXstxm's control/data normalises for flux variations (often the storage-ring current,
    ~500 mA). Used as I0 it gave an OD near -9 with no word, and i0= could not replace it."""
    rng = np.random.default_rng(4)
    energies = np.linspace(700.0, 710.0, 5)
    flux = np.linspace(2e4, 1.5e4, 5)
    od = rng.uniform(0.2, 1.0, (5, 2, 3))
    p = _nxstxm(tmp_path / "ring.nxs", energies, np.arange(3.0), np.arange(2.0),
                flux[:, None, None] * np.exp(-od), np.full(5, 499.9))
    with pytest.warns(RuntimeWarning, match=r"ring.nxs: the optical density computed with the "
                                            r"file's NXmonitor .* is negative for most pixels"):
        load_stack(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a given I0: no warning
        s = read_nxstxm(p, i0=flux)
    np.testing.assert_allclose(s.cube, od, atol=1e-12)
    # a thin film (OD 0-0.02) under a monitor that reads 3 % low: a median OD of about -0.02
    # was warned about as a ring current
    thin = rng.uniform(0.0, 0.02, (5, 2, 3))
    q = _nxstxm(tmp_path / "thin.nxs", energies, np.arange(3.0), np.arange(2.0),
                flux[:, None, None] * np.exp(-thin), 0.97 * flux)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(np.median(load_stack(q, subtract_pre_edge=None).cube)) < 0
