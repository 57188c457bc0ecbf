"""Property-based fuzzing of the planners through the offline replay (hypothesis).

Small random cubes (energy spans 1e-9 to 5000 eV, n_E 4..20, n_y 4..12, n_x 2..10) of several kinds — low rank, constant, zero,
rank 1, tiny (1e-200) and huge (1e150) values, zero rows and images, nearly collinear images, pure
noise — with dictionaries that are absent, regular, nearly duplicated or have an all-zero column.
Every planner must either refuse its arguments with ValueError/TypeError, or run to its end with a
finite completion, a mask that matches its history, and a sampling ratio within its budget.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import curiss
from curiss.linalg import minimum_ratio
from curiss.planners import make_planner

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CUBES = ["lowrank", "const", "zero", "rank1", "tiny", "huge", "zero_rows", "collinear", "noise"]
DICTS = ["none", "regular", "near_duplicate", "zero_column"]


def make_cube(kind: str, n_e: int, n_y: int, n_x: int, rank: int, rng) -> np.ndarray:
    """A test cube (n_E, n_y, n_x) of the given kind."""
    if kind == "const":
        return np.full((n_e, n_y, n_x), 0.7)
    if kind == "zero":
        return np.zeros((n_e, n_y, n_x))
    if kind == "noise":
        return rng.normal(size=(n_e, n_y, n_x))
    spectra = np.abs(rng.normal(size=(n_e, rank))) + 0.1
    maps = np.abs(rng.normal(size=(rank, n_y * n_x)))
    if kind == "rank1":
        spectra, maps = spectra[:, :1], maps[:1]
    cube = (spectra @ maps).reshape(n_e, n_y, n_x)
    if kind == "tiny":
        cube *= 1e-200
    elif kind == "huge":
        cube *= 1e150
    elif kind == "zero_rows":
        cube[:, rng.integers(n_y)] = 0.0
        cube[rng.integers(n_e)] = 0.0
    elif kind == "collinear":
        cube = cube[:1] * (1.0 + 1e-12 * rng.normal(size=(n_e, 1, 1)))
    return cube


def make_dictionary(kind: str, n_e: int, rng) -> np.ndarray | None:
    if kind == "none":
        return None
    d = np.abs(rng.normal(size=(n_e, 3))) + 0.1
    if kind == "near_duplicate":
        d[:, 1] = d[:, 0] * (1.0 + 1e-13)
    elif kind == "zero_column":
        d[:, 2] = 0.0
    return d


@st.composite
def scenarios(draw):
    n_e = draw(st.integers(4, 20))
    n_y = draw(st.integers(4, 12))
    n_x = draw(st.integers(2, 10))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    cube = make_cube(draw(st.sampled_from(CUBES)), n_e, n_y, n_x, draw(st.integers(1, 5)), rng)
    dictionary = make_dictionary(draw(st.sampled_from(DICTS)), n_e, rng)
    span = draw(st.sampled_from([1e-9, 20.0, 5000.0]))  # eV: nearly equal to widely spread energies
    energies = np.linspace(700.0, 700.0 + span, n_e)
    return energies, cube, dictionary, seed, draw(st.floats(0.0, 1.0))


def check_acquisition(acq, cube, budget_ratio):
    n_e, n_y, _ = cube.shape
    assert acq.completed.shape == cube.shape
    assert np.all(np.isfinite(acq.completed)), "non-finite completion"
    requested = np.zeros((n_e, n_y), int)
    for h in acq.history:
        for e, y in h["pairs"]:
            requested[e, y] += 1
    assert requested.max() <= 1, "a row was requested twice"
    assert np.array_equal(requested.astype(bool), acq.mask[:, :, 0])
    assert acq.history[-1]["kind"] == "stop" and acq.history[-1]["stop_reason"]
    # every planner stays within its budget (random rows rounds to whole rows)
    assert acq.sampling_ratio <= budget_ratio + 0.5 / (n_e * n_y) + 1e-12
    for h in acq.history:
        for key in ("rank", "condition"):
            assert key in h
        if h.get("fallback"):
            assert isinstance(h["fallback"], str)


def ratio_between(low: float, frac: float) -> float:
    return min(1.0, low + frac * (1.0 - low) + 1e-9)


@FUZZ
@given(sc=scenarios())
def test_raster_fuzz(sc):
    energies, cube, dictionary, seed, _ = sc
    acq = curiss.replay(make_planner("raster", energies, cube.shape[1:], seed=seed,
                                     dictionary=dictionary), cube)
    check_acquisition(acq, cube, 1.0)
    np.testing.assert_array_equal(acq.completed, cube)


@FUZZ
@given(sc=scenarios())
def test_random_rows_fuzz(sc):
    energies, cube, dictionary, seed, frac = sc
    n_e, n_y, _ = cube.shape
    ratio = ratio_between(max(n_e, n_y) / (n_e * n_y), frac)
    p = make_planner("random_rows", energies, cube.shape[1:], sampling_ratio=ratio, seed=seed,
                     dictionary=dictionary)
    acq = curiss.replay(p, cube)
    check_acquisition(acq, cube, ratio)
    # measured entries are kept as measured
    np.testing.assert_array_equal(acq.completed[acq.mask], cube[acq.mask])
    stop = acq.history[-1]
    assert stop["asd_stop_reason"] and isinstance(stop["asd_converged"], bool)


@FUZZ
@given(sc=scenarios(), es=st.sampled_from(["volume", "leverage"]),
       rule=st.sampled_from(["images", "authors"]))
def test_riss_fuzz(sc, es, rule):
    energies, cube, dictionary, seed, frac = sc
    ratio = ratio_between(minimum_ratio(cube.shape[0], cube.shape[1:]), frac)
    p = make_planner("riss", energies, cube.shape[1:], sampling_ratio=ratio, seed=seed,
                     dictionary=dictionary, energy_sampling=es, budget_rule=rule)
    acq = curiss.replay(p, cube)
    check_acquisition(acq, cube, ratio)
    np.testing.assert_array_equal(acq.completed[acq.mask], cube[acq.mask])
    assert "asd_converged" in acq.history[-1]


@FUZZ
@given(sc=scenarios(), es=st.sampled_from(["volume", "leverage"]),
       rule=st.sampled_from(["images", "authors"]), core_rank=st.sampled_from([None, 1, 50]),
       core_rtol=st.sampled_from([1e-6, 1e-14, 0.0]), write_back=st.booleans())
def test_curiss_fuzz(sc, es, rule, core_rank, core_rtol, write_back):
    energies, cube, dictionary, seed, frac = sc
    ratio = ratio_between(minimum_ratio(cube.shape[0], cube.shape[1:]), frac)
    p = make_planner("curiss", energies, cube.shape[1:], sampling_ratio=ratio, seed=seed,
                     dictionary=dictionary, energy_sampling=es, budget_rule=rule,
                     core_rank=core_rank, core_rtol=core_rtol, write_back=write_back)
    acq = curiss.replay(p, cube)
    check_acquisition(acq, cube, ratio)
    stop = acq.history[-1]
    assert "fallback" in stop and stop["rank"] >= 0
    if stop["rank"] > 0:
        assert stop["condition"] <= 1e8 * (1 + 1e-12)  # the conditioning guard always holds
    if core_rank == 50:
        assert "rank cap 50" in stop["fallback"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(), mode=st.sampled_from(["alternate", "energies"]), n_clusters=st.integers(1, 3),
       core_rtol=st.sampled_from([1e-6, 1e-14]), row_refinement=st.sampled_from(["pivoted", "arp"]),
       images_per_row=st.sampled_from([None, 1]))
def test_acuriss_fuzz(sc, mode, n_clusters, core_rtol, row_refinement, images_per_row):
    energies, cube, dictionary, seed, frac = sc
    initial = ratio_between(minimum_ratio(cube.shape[0], cube.shape[1:]), frac * 0.5)
    cap = min(1.0, initial + 0.2)
    p = make_planner("acuriss", energies, cube.shape[1:], sampling_ratio=cap, initial_ratio=initial,
                     seed=seed, dictionary=dictionary, max_iterations=3, n_components=2,
                     n_clusters=n_clusters, mode=mode, core_rtol=core_rtol, row_refinement=row_refinement,
                     images_per_row=images_per_row if mode == "alternate" else None)  # 1: a row scan in 3
    acq = curiss.replay(p, cube)
    check_acquisition(acq, cube, cap)
    for h in acq.history[2:]:
        assert "fallback" in h  # every evaluated iterate says whether the core was truncated


@settings(max_examples=20, deadline=None)
@given(method=st.sampled_from(["random_rows", "riss", "curiss", "acuriss"]),
       n_e=st.integers(4, 20), n_y=st.integers(4, 12), n_x=st.integers(2, 10),
       shrink=st.floats(0.01, 0.99))
def test_ratio_below_minimum_is_refused_clearly(method, n_e, n_y, n_x, shrink):
    low = (max(n_e, n_y) / (n_e * n_y) if method == "random_rows"
           else minimum_ratio(n_e, (n_y, n_x)))
    # random rows rounds the row budget: go below the rounding margin
    ratio = low * shrink - (0.5 / (n_e * n_y) if method == "random_rows" else 0.0)
    if ratio <= 0:
        ratio = 1e-9
    kw = {"initial_ratio": ratio} if method == "acuriss" else {}
    with pytest.raises(ValueError, match="ratio too small"):
        make_planner(method, np.linspace(1, 2, n_e), (n_y, n_x), sampling_ratio=ratio, **kw)


@settings(max_examples=20, deadline=None)
@given(method=st.sampled_from(["random_rows", "riss", "curiss", "acuriss"]),
       bad=st.sampled_from(["zeros", "nan", "inf", "wrong_rows", "3d"]), n_e=st.integers(4, 12))
def test_bad_dictionary_is_refused_clearly(method, bad, n_e):
    d = np.ones((n_e, 2))
    if bad == "zeros":
        d[:] = 0.0
    elif bad == "nan":
        d[0, 0] = np.nan
    elif bad == "inf":
        d[-1, 1] = np.inf
    elif bad == "wrong_rows":
        d = np.ones((n_e + 1, 2))
    else:
        d = np.ones((n_e, 2, 2))
    with pytest.raises(ValueError, match="dictionary") as info:
        make_planner(method, np.linspace(700, 720, n_e), (6, 4), sampling_ratio=0.5, dictionary=d)
    assert len(str(info.value)) > 20
