"""Numerical safety (design §2, §4): each failure mode is detected, reported in the planner stream
(``Decision.extra`` merged by ``as_dict``) and handled by a documented fallback with finite output.

- an ill-conditioned CUR core (nearly collinear images): the core is truncated until
  s_1 / s_r <= max_condition (1e8), ``fallback`` says from which rank to which;
- a rank larger than the data supports (a rank cap above the core's numerical rank): clipped,
  reported;
- LoopedASD not converging (tiny iteration cap): recorded (``asd_converged``, ``asd_stop_reason``),
  the result kept while it is better than the zero fill;
- LoopedASD returning NaN/Inf or diverging (residual worse than the zero fill): replaced by the
  per-energy mean fill, reported;
- a spectral analysis that cannot run inside ACURISS (constant image, zero post-edge): skipped,
  reported, the completion variation decides alone.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import curiss
import curiss.planners._strategies as strategies
from curiss.linalg import ASDResult, cur_complete, looped_asd, minimum_ratio
from curiss.planners import make_planner
from curiss.planners._base import Decision, guard_asd_completion

SEEDS = [0, 1, 2]


def rank1_cube(n_e=12, shape=(8, 6), seed=0):
    """Energies (n_E,) and a rank-1 cube (n_E, n_y, n_x): all images collinear."""
    rng = np.random.default_rng(seed)
    spectrum = rng.random(n_e) + 0.5
    image = rng.random(shape) + 0.5
    return np.linspace(700.0, 720.0, n_e), spectrum[:, None, None] * image[None]


def low_rank_cube(n_e=12, shape=(8, 6), rank=3, seed=0):
    rng = np.random.default_rng(seed)
    spectra = np.abs(rng.normal(size=(n_e, rank))) + 0.1
    maps = np.abs(rng.normal(size=(rank, shape[0] * shape[1])))
    return np.linspace(700.0, 720.0, n_e), (spectra @ maps).reshape(n_e, *shape)


# ------------------------------------------------------------------ CUR core: kernel
@pytest.mark.parametrize("seed", SEEDS)
def test_ill_conditioned_core_is_truncated_and_reported(seed):
    rng = np.random.default_rng(seed)
    D = np.outer(rng.random(20) + 0.5, rng.random(60) + 0.5)  # rank 1
    noisy = D + 1e-10 * rng.normal(size=D.shape)  # nearly collinear images
    I, J = rng.choice(20, 6, replace=False), rng.choice(60, 6, replace=False)
    raw = cur_complete(noisy[:, J], noisy[I], I, J, rtol=0.0, max_condition=None)
    assert raw.condition > 1e8 and raw.fallback == ""  # detected: the unguarded core is ill-conditioned
    res = cur_complete(noisy[:, J], noisy[I], I, J, rtol=0.0)
    assert res.rank < raw.rank == res.rank_before_guard
    assert res.condition <= 1e8
    assert f"from rank {raw.rank} to {res.rank}" in res.fallback and "ill-conditioned" in res.fallback
    assert np.all(np.isfinite(res.matrix))
    err = lambda r: np.linalg.norm(r.matrix - D) / np.linalg.norm(D)  # noqa: E731
    assert err(res) < err(raw)  # the guard keeps noise from being amplified
    # a tighter or looser threshold moves the cut accordingly
    assert cur_complete(noisy[:, J], noisy[I], I, J, rtol=0.0, max_condition=1e30).rank == raw.rank
    with pytest.raises(ValueError, match="max_condition must be >= 1"):
        cur_complete(noisy[:, J], noisy[I], I, J, max_condition=0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_rank_cap_above_what_the_data_supports_is_clipped_and_reported(seed):
    _, cube = low_rank_cube(seed=seed)
    D = cube.reshape(cube.shape[0], -1)
    rng = np.random.default_rng(seed)
    I, J = rng.choice(D.shape[0], 3, replace=False), rng.choice(D.shape[1], 10, replace=False)
    res = cur_complete(D[:, J], D[I], I, J, rank=50)
    assert res.rank == 3 and res.rank_before_guard == 50
    assert "rank cap 50 exceeds the rank the data supports (3" in res.fallback
    ok = cur_complete(D[:, J], D[I], I, J, rank=2)
    assert ok.rank == 2 and ok.fallback == "" and ok.rank_before_guard == 2
    np.testing.assert_allclose(res.matrix, D, atol=1e-8 * np.abs(D).max())


# ------------------------------------------------------------------ CUR core: planner stream
@pytest.mark.parametrize("seed", SEEDS)
def test_curiss_reports_core_truncation_in_the_stream(seed):
    energies, cube = rank1_cube(seed=seed)
    cube = cube + 1e-10 * np.random.default_rng(seed + 10).normal(size=cube.shape)
    p = make_planner("curiss", energies, cube.shape[1:], sampling_ratio=0.4, seed=seed, core_rtol=0.0)
    acq = curiss.replay(p, cube)
    stop = acq.history[-1]
    assert stop["kind"] == "stop"
    assert "ill-conditioned" in stop["fallback"] and stop["rank_before_guard"] > stop["rank"] >= 1
    assert stop["condition"] <= 1e8
    assert p.cur_result_.fallback == stop["fallback"]
    assert np.all(np.isfinite(acq.completed))
    assert np.abs(acq.completed - cube).max() < 1e-6 * np.abs(cube).max()


@pytest.mark.parametrize("seed", SEEDS)
def test_rank_cap_fallback_in_curiss_and_acuriss_streams(seed):
    energies, cube = low_rank_cube(seed=seed)
    p = make_planner("curiss", energies, cube.shape[1:], sampling_ratio=0.4, seed=seed, core_rank=50)
    stop = curiss.replay(p, cube).history[-1]
    assert "rank cap 50" in stop["fallback"] and stop["rank"] <= 12
    a = make_planner("acuriss", energies, cube.shape[1:], sampling_ratio=0.6, initial_ratio=0.3,
                     seed=seed, core_rank=50, max_iterations=3,
                     n_clusters=2, n_components=2)
    acq = curiss.replay(a, cube)
    evaluated = acq.history[2:]  # every record made after a completion (refinements and stop)
    assert evaluated and all("rank cap 50" in h["fallback"] for h in evaluated)
    assert np.all(np.isfinite(acq.completed))
    # without a cap nothing is reported
    b = make_planner("curiss", energies, cube.shape[1:], sampling_ratio=0.4, seed=seed)
    assert curiss.replay(b, cube).history[-1]["fallback"] == ""


def test_decision_as_dict_merges_extra():
    d = Decision(3, "rows", np.zeros((0, 2), int), rank=2, extra={"fallback": "core truncated"})
    out = d.as_dict()
    assert out["fallback"] == "core truncated" and out["rank"] == 2 and out["iteration"] == 3


# ------------------------------------------------------------------ LoopedASD
@pytest.mark.parametrize("seed", SEEDS)
def test_looped_asd_non_convergence_is_reported_with_finite_output(seed):
    _, cube = low_rank_cube(seed=seed)
    D = cube.reshape(cube.shape[0], -1)
    rng = np.random.default_rng(seed)
    W = rng.random(D.shape) < 0.4
    W[:, :3] = True
    W[:3] = True
    res = looped_asd(np.where(W, D, np.nan), W, max_iter=1, rng=seed)
    assert not res.converged and res.stop_reason == "max_iter" and res.n_iter == 1
    assert np.all(np.isfinite(res.matrix)) and np.isfinite(res.residual)


@pytest.mark.parametrize("method", ["riss", "random_rows"])
@pytest.mark.parametrize("seed", SEEDS)
def test_planner_records_asd_non_convergence(monkeypatch, method, seed):
    monkeypatch.setattr(strategies, "looped_asd", functools.partial(looped_asd, max_iter=1))
    energies, cube = low_rank_cube(seed=seed)
    p = make_planner(method, energies, cube.shape[1:], sampling_ratio=0.4, seed=seed)
    acq = curiss.replay(p, cube)
    stop = acq.history[-1]
    assert stop["asd_converged"] is False and stop["asd_stop_reason"] == "max_iter"
    assert stop["asd_iterations"] == 1
    # a non-converged result is kept while it beats the zero fill; otherwise the fallback acts
    assert (stop["fallback"] == "") == (stop["asd_residual"] <= 1.0)
    assert p.numerics_["asd_converged"] is False
    assert np.all(np.isfinite(acq.completed))
    np.testing.assert_array_equal(acq.completed[acq.mask], cube[acq.mask])


def _fake_asd(kind):
    def fake(M, mask, **kwargs):
        m, n = M.shape
        X, Y = np.ones((m, 1)), np.ones((1, n))
        if kind == "nan":
            X[0, 0] = np.nan
            return ASDResult(X, Y, 1, 75, float("nan"), False, "max_iter")
        return ASDResult(1e6 * X, Y, 1, 75, 3.0, False, "max_iter")  # diverged: worse than zeros
    return fake


@pytest.mark.parametrize("kind", ["nan", "diverged"])
@pytest.mark.parametrize("method", ["riss", "random_rows"])
def test_asd_nan_or_divergence_falls_back_to_per_energy_mean(monkeypatch, kind, method):
    monkeypatch.setattr(strategies, "looped_asd", _fake_asd(kind))
    energies, cube = low_rank_cube(seed=1)
    p = make_planner(method, energies, cube.shape[1:], sampling_ratio=0.4, seed=1)
    acq = curiss.replay(p, cube)
    stop = acq.history[-1]
    assert stop["fallback"].startswith("LoopedASD result rejected")
    assert "per-energy mean" in stop["fallback"]
    out = acq.completed
    assert np.all(np.isfinite(out))
    mask = acq.mask
    np.testing.assert_array_equal(out[mask], cube[mask])
    for e in range(cube.shape[0]):
        expected = cube[e][mask[e]].mean()
        np.testing.assert_allclose(out[e][~mask[e]], expected, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_guard_asd_completion_unit(seed):
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(5, 9))
    mask = rng.random(D.shape) < 0.5
    mask[:, 0] = True
    good = ASDResult(D[:, :2].copy(), np.eye(2, 9), 2, 10, 0.3, False, "stagnation")
    out, notes = guard_asd_completion(D, mask, good)
    np.testing.assert_array_equal(out, good.matrix)
    assert notes["fallback"] == "" and notes["asd_stop_reason"] == "stagnation"
    assert notes["asd_rank"] == 2 and notes["asd_converged"] is False
    bad = ASDResult(np.full((5, 1), np.inf), np.ones((1, 9)), 1, 1, np.inf, False, "max_iter")
    out, notes = guard_asd_completion(np.where(mask, D, np.nan), mask, bad)
    assert np.all(np.isfinite(out)) and "NaN/Inf" in notes["fallback"]
    means = np.array([D[e][mask[e]].mean() for e in range(5)])
    np.testing.assert_allclose(np.where(mask, 0.0, out), np.where(mask, 0.0, means[:, None]))
    # the fallback is never worse than the zero fill on the measured entries
    assert np.linalg.norm((out - D)[mask]) <= np.linalg.norm(D[mask]) + 1e-12


@pytest.mark.parametrize("scale", [1e-200, 1e150])
def test_riss_at_extreme_scales_is_finite_and_accurate(scale):
    """Regression (fuzz): RISS/random rows returned NaN at 1e150 (overflow in LoopedASD)."""
    energies, cube = low_rank_cube(seed=0, rank=2)
    p = make_planner("riss", energies, cube.shape[1:], sampling_ratio=0.5, seed=0)
    acq = curiss.replay(p, cube * scale)
    assert np.all(np.isfinite(acq.completed))
    ref = curiss.replay(make_planner("riss", energies, cube.shape[1:], sampling_ratio=0.5, seed=0), cube)
    np.testing.assert_allclose(acq.completed / scale, ref.completed, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ ACURISS analysis guard
@pytest.mark.parametrize("mode", ["alternate", "energies"])
@pytest.mark.parametrize("value, n_e, shape", [(0.0, 10, (6, 4)), (0.7, 4, (4, 2))])
def test_acuriss_on_a_constant_cube_skips_the_analysis_and_reports_it(mode, value, n_e, shape):
    """Regression (fuzz, n_E=4, shape (4, 2), constant 0.7, initial ratio at the minimum): k-means
    found one distinct cluster for n_clusters=2 on the exactly constant completion and ACURISS
    raised ValueError mid-acquisition. A zero cube fails the same way (and has zero post-edge
    means in 'energies' mode)."""
    energies = np.linspace(700.0, 720.0, n_e)
    cube = np.full((n_e, *shape), value)
    low = minimum_ratio(n_e, shape) + 1e-9
    p = make_planner("acuriss", energies, shape, sampling_ratio=min(1.0, low + 0.2),
                     initial_ratio=low, seed=0, n_clusters=2, n_components=2, mode=mode,
                     max_iterations=3)
    acq = curiss.replay(p, cube)
    evaluated = acq.history[2:]
    assert any("spectral analysis skipped" in h.get("analysis_fallback", "") for h in evaluated)
    assert np.all(np.isfinite(acq.completed))
    np.testing.assert_allclose(acq.completed, cube, atol=1e-12)
    assert p.stop_reason and acq.history[-1]["kind"] == "stop"


@pytest.mark.parametrize("call", [
    lambda: __import__("curiss").CURISSPlanner(np.linspace(700, 730, 12), (6, 5),
                                               sampling_ratio=0.3, write_back="False"),
    lambda: __import__("curiss").ACURISSPlanner(np.linspace(700, 730, 12), (6, 5),
                                                sampling_ratio=0.5, initial_ratio=0.3,
                                                kmeans_warm_start="no"),
    lambda: __import__("curiss.linalg", fromlist=["cur_complete"]).cur_complete(
        np.ones((4, 2)), np.ones((2, 5)), [0, 1], [0, 1], dense="False"),
    lambda: __import__("sim_devices").make_stxm(
        __import__("sim_devices").PhantomSample(6, (4, 4), 2, seed=0), noise="False"),
], ids=["write_back", "kmeans_warm_start", "dense", "noise"])
def test_a_string_for_a_bool_option_is_refused(call):
    """bool("False") is True: such options used to be coerced silently."""
    with pytest.raises(TypeError, match="must be True or False"):
        call()
