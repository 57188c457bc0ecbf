"""Tests of curiss.io: stack readers/writers and reference dictionaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curiss.io import (
    ALS_PRE_EDGE_EV,
    Stack,
    interpolate_dictionary,
    load_dictionary,
    load_stack,
    read_reference_spectra,
    save_stack,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ALS_78 = DATA / "als_stxm_fe_L23_breier2012" / "71214078_stack.npz"
ALS_98 = DATA / "als_stxm_fe_L23_breier2012" / "71214098_stack.npz"
FE_LIB = DATA / "hxn_fe_K_nanoxanes_pattammattel" / "FeLibNov2021.nor"


def _stack(rng: np.random.Generator, with_dict: bool = True) -> Stack:
    energies = np.sort(rng.uniform(700, 730, 9)) + np.arange(9) * 1e-3
    cube = rng.random((9, 4, 5))
    dic = rng.random((9, 2)) if with_dict else None
    names = ("a", "b") if with_dict else ()
    return Stack(energies=energies, cube=cube, i0=rng.random(9) + 1, dictionary=dic,
                 dictionary_names=names, name="toy")


# --------------------------------------------------------------------------- real ALS data


@pytest.fixture(scope="module")
def als78():
    if not ALS_78.exists():
        pytest.skip(f"shared data not present: {ALS_78}")
    return load_stack(ALS_78)


def test_als_loader_shapes_and_od(als78):
    raw = np.load(ALS_78)
    n_e, n_y, n_x = raw["transmitted"].shape
    assert (n_e, n_y, n_x) == (123, 125, 125)
    s = als78
    assert s.cube.shape == (n_e, n_y, n_x)
    assert s.energies.shape == (n_e,)
    assert np.all(np.diff(s.energies) > 0)
    assert np.all(np.isfinite(s.cube))
    assert s.name == "71214078"
    np.testing.assert_allclose(s.i0, raw["i0"])
    # OD = -ln(T/I0) minus the pre-edge mean of each pixel
    od = -np.log(raw["transmitted"].astype(float) / raw["i0"][:, None, None])
    pre = s.energies < ALS_PRE_EDGE_EV
    assert pre.sum() >= 3
    np.testing.assert_allclose(s.cube, od - od[pre].mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(s.cube[pre].mean(axis=0), 0.0, atol=1e-9)
    # the Fe edge is visible: the particles' post-edge OD stands well above the pre-edge noise
    post = s.cube[s.energies > 708].mean(axis=0)
    pre_noise = s.cube[pre].std(axis=0)
    assert np.percentile(post, 99) > 5 * np.median(pre_noise)


def test_als_dictionary(als78):
    raw = np.load(ALS_78)
    assert als78.dictionary.shape == (123, 3)
    assert als78.dictionary_names == ("oxidized", "reduced", "constant")
    np.testing.assert_allclose(als78.dictionary[:, 0], raw["oxidized_t"])
    np.testing.assert_allclose(als78.dictionary[:, 1], raw["reduced_t"])
    np.testing.assert_allclose(als78.dictionary[:, 2], 1.0)


def test_als_pre_edge_options():
    if not ALS_78.exists():
        pytest.skip(f"shared data not present: {ALS_78}")
    off = load_stack(ALS_78, subtract_pre_edge=False)
    assert off.cube[off.energies < ALS_PRE_EDGE_EV].mean() > 0.5  # background OD 0.8-1.4
    other = load_stack(ALS_78, subtract_pre_edge=703.0)
    pre = other.energies < 703.0
    np.testing.assert_allclose(other.cube[pre].mean(axis=0), 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="no energies below"):
        load_stack(ALS_78, subtract_pre_edge=600.0)


def test_als_stack_without_references():
    if not ALS_98.exists():
        pytest.skip(f"shared data not present: {ALS_98}")
    s = load_stack(ALS_98)
    assert s.cube.shape == (123, 150, 150)
    assert s.dictionary is None and s.dictionary_names == ()
    assert np.all(np.isfinite(s.cube))


def test_als_nonpositive_counts_clipped(tmp_path):
    rng = np.random.default_rng(0)
    e = np.linspace(700, 720, 8)
    t = rng.uniform(10, 100, (8, 3, 4)).astype(np.float32)
    t[5, 1, 2] = 0.0
    t[6, 0, 0] = -3.0
    path = tmp_path / "x_stack.npz"
    np.savez(path, energies_eV=e, transmitted=t, i0=np.full(8, 200.0))
    with pytest.warns(RuntimeWarning, match="2 non-positive transmitted"):
        s = load_stack(path)
    assert np.all(np.isfinite(s.cube))
    assert s.name == "x"
    t64 = t.astype(np.float64)
    floor = 0.5 * t64[t64 > 0].min()
    pre = e < ALS_PRE_EDGE_EV
    od = -np.log(np.where(t64 > 0, t64, floor) / 200.0)
    np.testing.assert_allclose(s.cube, od - od[pre].mean(axis=0), atol=1e-12)


# --------------------------------------------------------------------------- npz round trip


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_dict", [True, False])
def test_npz_round_trip(tmp_path, seed, with_dict):
    s = _stack(np.random.default_rng(seed), with_dict)
    path = tmp_path / "s.npz"
    save_stack(path, s)
    back = load_stack(path)
    np.testing.assert_array_equal(back.energies, s.energies)
    np.testing.assert_array_equal(back.cube, s.cube)
    np.testing.assert_array_equal(back.i0, s.i0)
    assert back.name == "toy"
    if with_dict:
        np.testing.assert_array_equal(back.dictionary, s.dictionary)
        assert back.dictionary_names == ("a", "b")
    else:
        assert back.dictionary is None and back.dictionary_names == ()
    assert back.shape == (4, 5) and back.n_energies == 9
    assert back.matrix.shape == (9, 20)


def test_stack_validation_and_immutability():
    rng = np.random.default_rng(0)
    cube = rng.random((3, 2, 2))
    src = cube.copy()
    s = Stack(energies=[1.0, 2.0, 3.0], cube=cube)
    cube[0, 0, 0] = 99.0
    assert s.cube[0, 0, 0] == src[0, 0, 0]  # copied
    with pytest.raises(ValueError):
        s.cube[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="strictly increasing"):
        Stack(energies=[1.0, 1.0, 3.0], cube=cube)
    with pytest.raises(ValueError, match="energies"):
        Stack(energies=[1.0, 2.0], cube=cube)
    with pytest.raises(ValueError, match="dictionary"):
        Stack(energies=[1.0, 2.0, 3.0], cube=cube, dictionary=np.ones((2, 2)))
    with pytest.raises(ValueError, match="dictionary_names"):
        Stack(energies=[1.0, 2.0, 3.0], cube=cube, dictionary=np.ones((3, 2)),
              dictionary_names=("a",))


def test_load_stack_errors(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, foo=np.zeros(3))
    with pytest.raises(ValueError, match="not a recognised stack"):
        load_stack(p)
    with pytest.raises(ValueError, match="unsupported"):
        load_stack(tmp_path / "x.h5")
    q = tmp_path / "nan.npz"
    cube = np.zeros((2, 2, 2))
    cube[0, 0, 0] = np.nan
    np.savez(q, energies=np.array([1.0, 2.0]), cube=cube)
    with pytest.raises(ValueError, match="NaN"):
        load_stack(q)


@pytest.mark.parametrize("case, message", [
    # an IndexError traceback with the pre-edge subtraction, before the shapes were checked
    ("short_energies", r"mis.npz: cube must have shape \(n_E, n_y, n_x\) and energies \(n_E,\); "
                      r"got cube \(12, 4, 5\) and energies \(11,\)"),
    ("energies_2d", r"mis.npz: cube must have shape .* energies \(12, 1\)"),
    # numpy dropped the imaginary part with a warning
    ("complex_cube", "mis.npz: cube must be a real numeric array; got dtype complex128"),
    ("nan_i0", "mis.npz: i0 contains NaN/Inf"),
    # the optional arrays were converted as they came: complex lost its imaginary part, a bool
    # dictionary was read as 0/1, text i0 was accepted
    ("complex_i0", "mis.npz: i0 must be a real numeric array; got dtype complex128"),
    ("text_i0", "mis.npz: i0 must be a real numeric array; got dtype <U3"),
    ("bool_dictionary", "mis.npz: dictionary must be a real numeric array; got dtype bool"),
    ("complex_x_um", "mis.npz: x_um must be a real numeric array; got dtype complex128"),
    ("bool_y_um", "mis.npz: y_um must be a real numeric array; got dtype bool"),
])
@pytest.mark.parametrize("pre_edge", [None, 704.0])
def test_a_malformed_npz_stack_is_one_clear_error(tmp_path, case, message, pre_edge):
    rng = np.random.default_rng(0)
    arrays = dict(energies=np.linspace(700.0, 720.0, 12), cube=rng.random((12, 4, 5)))
    if case == "short_energies":
        arrays["energies"] = arrays["energies"][:11]
    elif case == "energies_2d":
        arrays["energies"] = arrays["energies"][:, None]
    elif case == "complex_cube":
        arrays["cube"] = arrays["cube"] + 1j
    elif case == "nan_i0":
        arrays["i0"] = np.where(np.arange(12) == 3, np.nan, 1.0)
    else:
        arrays.update({"complex_i0": {"i0": np.full(12, 100.0) + 1e3j},
                       "text_i0": {"i0": np.array(["100"] * 12)},
                       "bool_dictionary": {"dictionary": np.eye(12, 2, dtype=bool)},
                       "complex_x_um": {"x_um": np.arange(5.0) + 1j},
                       "bool_y_um": {"y_um": np.array([False, True, True, False])}}[case])
    np.savez(tmp_path / "mis.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_stack(tmp_path / "mis.npz", subtract_pre_edge=pre_edge)


def test_a_converted_als_npz_with_a_short_reference_names_the_file_and_key(tmp_path):
    """A reference of the wrong length gave numpy's concatenation message, naming neither."""
    e = np.linspace(700.0, 720.0, 12)
    arrays = dict(energies_eV=e, transmitted=np.full((12, 4, 5), 0.5), i0=np.ones(12),
                  oxidized_t=np.ones(11), reduced_t=np.ones(12))
    np.savez(tmp_path / "als.npz", **arrays)
    with pytest.raises(ValueError, match=r"als.npz: the references must have one value per "
                                         r"energy, shape \(12,\); got oxidized_t \(11,\)"):
        load_stack(tmp_path / "als.npz", subtract_pre_edge=None)
    arrays["oxidized_t"] = np.where(np.arange(12) == 2, np.nan, 1.0)
    np.savez(tmp_path / "als.npz", **arrays)
    with pytest.raises(ValueError, match="als.npz: dictionary contains NaN/Inf"):
        load_stack(tmp_path / "als.npz", subtract_pre_edge=None)


# --------------------------------------------------------------------------- dictionaries


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interpolate_dictionary_linear_exact(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(690, 740, 50))
    x[0], x[-1] = 690.0, 740.0
    a, b = rng.standard_normal(2)
    spectra = np.column_stack([a * x + b, 2 * x - 1])  # linear: interpolation is exact
    e = np.linspace(700, 730, 17)
    out = interpolate_dictionary(x[::-1], spectra[::-1], e)  # any order accepted
    assert out.shape == (17, 2)
    np.testing.assert_allclose(out, np.column_stack([a * e + b, 2 * e - 1]), rtol=1e-10)
    one = interpolate_dictionary(x, spectra[:, 0], e)
    assert one.shape == (17, 1)
    # the exact end points are covered
    np.testing.assert_allclose(interpolate_dictionary(x, spectra, x[[0, -1]]), spectra[[0, -1]])


def test_interpolate_dictionary_refuses():
    x = np.linspace(700, 720, 11)
    y = np.ones((11, 2))
    with pytest.raises(ValueError, match="does not cover"):
        interpolate_dictionary(x, y, np.linspace(699, 710, 5))
    with pytest.raises(ValueError, match="does not cover"):
        interpolate_dictionary(x, y, np.linspace(705, 720.5, 5))
    y_nan = y.copy()
    y_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        interpolate_dictionary(x, y_nan, np.linspace(705, 710, 5))
    with pytest.raises(ValueError, match="NaN"):
        interpolate_dictionary(x, y, np.array([705.0, np.inf]))
    with pytest.raises(ValueError, match="duplicate"):
        interpolate_dictionary(np.r_[x, 710.0], np.ones((12, 2)), np.linspace(705, 710, 5))
    with pytest.raises(ValueError, match="shape"):
        interpolate_dictionary(x, np.ones((10, 2)), np.linspace(705, 710, 5))


def test_load_dictionary_text(tmp_path):
    x = np.linspace(690, 740, 101)
    p = tmp_path / "refs.txt"
    lines = ["% a comment", "# energy  goethite  hematite"]
    lines += [f"{xi:.4f}, {np.sin(xi / 10):.8f}, {xi / 1000:.8f}" for xi in x]
    p.write_text("\n".join(lines) + "\n")
    e = np.linspace(700, 730, 13)
    d = load_dictionary(p, e)
    assert d.shape == (13, 2)
    np.testing.assert_allclose(d[:, 1], e / 1000, rtol=1e-6)
    np.testing.assert_allclose(d[:, 0], np.sin(e / 10), atol=5e-3)
    _, _, names = read_reference_spectra(p)
    assert names == ("goethite", "hematite")
    with pytest.raises(ValueError, match="does not cover"):
        load_dictionary(p, np.linspace(680, 700, 5))
    bad = tmp_path / "bad.txt"
    bad.write_text("700 1\n701 x\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        load_dictionary(bad, e)


def test_load_dictionary_npz(tmp_path):
    x = np.linspace(690, 740, 51)
    e = np.linspace(700, 730, 7)
    p = tmp_path / "refs.npz"
    np.savez(p, energies=x, magnetite=x * 2, pyrite=x * 3)
    d = load_dictionary(p, e)
    np.testing.assert_allclose(d, np.column_stack([2 * e, 3 * e]))
    assert read_reference_spectra(p)[2] == ("magnetite", "pyrite")
    q = tmp_path / "refs2.npz"
    np.savez(q, energies_eV=x, dictionary=np.column_stack([x, -x]),
             dictionary_names=np.array(["u", "v"]))
    np.testing.assert_allclose(load_dictionary(q, e), np.column_stack([e, -e]))
    assert read_reference_spectra(q)[2] == ("u", "v")


def test_load_dictionary_real_xdi():
    if not FE_LIB.exists():
        pytest.skip(f"shared data not present: {FE_LIB}")
    ref_e, spectra, names = read_reference_spectra(FE_LIB)
    assert spectra.shape == (ref_e.size, 11)
    assert names[0] == "Magnetite" and names[-1] == "Hematite_NP"
    e = np.linspace(ref_e.min() + 5, ref_e.min() + 60, 40)
    d = load_dictionary(FE_LIB, e)
    assert d.shape == (40, 11) and np.all(np.isfinite(d))


def test_pre_edge_above_the_whole_grid_is_refused(tmp_path):
    """A threshold above every energy used to subtract each pixel's all-energy mean silently."""
    e = np.linspace(700, 710, 11)
    path = tmp_path / "s.npz"
    np.savez(path, energies=e, cube=np.random.default_rng(0).random((11, 3, 4)) + 1.0)
    with pytest.raises(ValueError, match="subtract_pre_edge=10000.0 eV is above the whole energy grid"):
        load_stack(path, subtract_pre_edge=1e4)
    assert load_stack(path, subtract_pre_edge=705.0).cube[e < 705].mean() == pytest.approx(0.0, abs=1e-12)
