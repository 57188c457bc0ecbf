"""Issue 7 (speed and scale): the factored CUR completion and the factored refinement step.

The factored path (CUR factors instead of the dense completion, analysis and variations from the
factors) must give the dense path's results to rounding, the same planner decisions, and must not
form the dense completion during a planner step. No timing asserts here (benchmarks/planner.py
measures the speed, benchmarks/memory.py the memory).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import curiss
import curiss.cost as cost_mod
from curiss.analysis import adjusted_rand, completion_variation, spectral_analysis
from curiss.linalg import CURResult, cur_complete
from curiss.planners import ACURISSPlanner

SEEDS = [0, 1, 2]


def phase_stack(seed, n_e=36, shape=(24, 20), n_phases=4, noise=0.01):
    """Piecewise-constant phases (tiles) times a smooth thickness, plus noise: (n_E, n_y, n_x)."""
    rng = np.random.default_rng(seed)
    n_y, n_x = shape
    t = np.linspace(0, 1, n_e)
    spectra = np.column_stack([0.2 + (p + 1) * (0.3 + np.exp(-((t - 0.2 - 0.15 * p) / 0.05) ** 2))
                               for p in range(n_phases)])
    tiles = rng.integers(0, n_phases, size=(-(-n_y // 4), -(-n_x // 4)))
    phase = np.kron(tiles, np.ones((4, 4), int))[:n_y, :n_x]
    yy, xx = np.meshgrid(np.linspace(0, 1, n_y), np.linspace(0, 1, n_x), indexing="ij")
    thick = 0.7 + 0.3 * np.cos(2 * yy) * np.sin(3 * xx + 0.4)
    cube = spectra[:, phase] * thick + noise * rng.standard_normal((n_e, n_y, n_x))
    return np.linspace(700, 730, n_e), cube, spectra


def cur_inputs(seed, cube, n_images=6, n_rows=3):
    """C, R, I, J of a CURISS-like sampling and its row mask (n_E, n_y)."""
    rng = np.random.default_rng(seed + 100)
    n_e, n_y, n_x = cube.shape
    D = cube.reshape(n_e, -1)
    I = np.sort(rng.choice(n_e, n_images, replace=False))
    rows = np.sort(rng.choice(n_y, n_rows, replace=False))
    J = (rows[:, None] * n_x + np.arange(n_x)).ravel()
    row_mask = np.zeros((n_e, n_y), bool)
    row_mask[I] = True
    row_mask[:, rows] = True
    return D[:, J].copy(), D[I].copy(), I, J, row_mask


# ----------------------------------------------------------------------------- CUR factors
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("write_back", [False, True])
def test_lazy_cur_matrix_equals_dense(seed, write_back):
    _, cube, _ = phase_stack(seed)
    C, R, I, J, _ = cur_inputs(seed, cube)
    dense = cur_complete(C, R, I, J, rtol=1e-6, write_back=write_back)
    lazy = cur_complete(C, R, I, J, rtol=1e-6, write_back=write_back, dense=False)
    assert dense.matrix_formed and not lazy.matrix_formed
    assert lazy.shape == dense.shape == (cube.shape[0], cube[0].size)
    assert lazy.rank == dense.rank and lazy.condition == dense.condition
    C[:] = 0.0  # the caller changes its arrays afterwards: the lazy write-back kept copies
    R[:] = 0.0
    np.testing.assert_array_equal(lazy.matrix, dense.matrix)  # the same operations: bit-identical
    assert lazy.matrix_formed and lazy.matrix is lazy.matrix  # formed once, cached
    # the factors give the matrix (before write-back)
    assert lazy.left.shape == (cube.shape[0], lazy.rank) and lazy.right.shape == (lazy.rank, cube[0].size)
    product = lazy.left @ lazy.right
    if write_back:
        assert lazy.write_back
        assert not np.array_equal(product[I], lazy.matrix[I])
    else:
        np.testing.assert_allclose(product, dense.matrix, rtol=0, atol=1e-12 * np.abs(dense.matrix).max())


def test_cur_result_is_read_only_and_copies():
    _, cube, _ = phase_stack(0)
    C, R, I, J, _ = cur_inputs(0, cube)
    res = cur_complete(C, R, I, J, dense=False)
    with pytest.raises(AttributeError):
        res.rank = 3
    with pytest.raises(AttributeError):
        res.matrix = np.zeros(res.shape)
    for other in (copy.deepcopy(res), pickle.loads(pickle.dumps(res))):
        assert not other.matrix_formed
        np.testing.assert_array_equal(other.matrix, res.matrix)
        with pytest.raises(AttributeError):
            other.fallback = "x"
    zero = cur_complete(np.zeros((5, 2)), np.zeros((2, 7)), [0, 1], [0, 1], dense=False)
    assert zero.rank == 0 and zero.left.shape == (5, 0) and zero.right.shape == (0, 7)
    assert not zero.matrix.any() and zero.matrix.shape == (5, 7)
    built = CURResult(left=res.left, right=res.right, rank=res.rank)
    np.testing.assert_allclose(built.matrix, res.matrix, atol=1e-12 * np.abs(res.matrix).max())
    with pytest.raises(ValueError, match="factors"):
        CURResult(left=res.left)


# ----------------------------------------------------------------------------- analysis
def _compare_analyses(a, b, *, eig=True):
    assert adjusted_rand(a.labels, b.labels) == 1.0
    np.testing.assert_array_equal(a.labels, b.labels)
    scale = np.abs(b.cluster_spectra).max()
    np.testing.assert_allclose(a.cluster_spectra, b.cluster_spectra, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(a.singular_values, b.singular_values, rtol=0,
                               atol=1e-11 * b.singular_values[0])
    if eig:
        np.testing.assert_allclose(a.eigenspectra, b.eigenspectra, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.eigenimages, b.eigenimages, rtol=0,
                                   atol=1e-9 * np.abs(b.eigenimages).max())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mask_kind", ["rows", "full", "nan"])
def test_factored_analysis_matches_dense(seed, mask_kind):
    _, cube, _ = phase_stack(seed)
    n_e, n_y, n_x = cube.shape
    C, R, I, J, row_mask = cur_inputs(seed, cube)
    res = cur_complete(C, R, I, J, rtol=1e-6, dense=False)
    measured = np.where(row_mask[:, :, None], cube, np.nan)
    mask = {"rows": row_mask, "full": np.repeat(row_mask[:, :, None], n_x, axis=2),
            "nan": None}[mask_kind]
    fac = spectral_analysis(res, image_shape=(n_y, n_x), seed=seed, mask=mask, measured=measured)
    assert not res.matrix_formed  # analysed from the factors
    dense = spectral_analysis(res.matrix.reshape(cube.shape), seed=seed, mask=mask, measured=measured)
    _compare_analyses(fac, dense)
    # the mixed values matter: without them the spectra differ
    plain = spectral_analysis(res, image_shape=(n_y, n_x), seed=seed)
    assert not np.allclose(plain.cluster_spectra, fac.cluster_spectra, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_factored_analysis_of_rank_below_components(seed):
    _, cube, _ = phase_stack(seed)
    C, R, I, J, row_mask = cur_inputs(seed, cube, n_images=2)
    res = cur_complete(C, R, I, J, dense=False)
    assert res.rank <= 2
    fac = spectral_analysis(res, n_components=3, image_shape=cube.shape[1:], seed=seed)
    dense = spectral_analysis(res.matrix.reshape(cube.shape), n_components=3, seed=seed)
    u = fac.eigenspectra
    np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-12)  # padded with orthonormal columns
    assert fac.singular_values[res.rank:].max() == 0.0
    _compare_analyses(fac, dense, eig=False)


def test_factored_analysis_checks_its_input():
    _, cube, _ = phase_stack(0)
    C, R, I, J, row_mask = cur_inputs(0, cube)
    res = cur_complete(C, R, I, J, dense=False)
    with pytest.raises(ValueError, match="image_shape"):
        spectral_analysis(res)
    with pytest.raises(ValueError, match="image_shape"):
        spectral_analysis(res, image_shape=(5, 5))
    with pytest.raises(ValueError, match="mask has shape"):
        spectral_analysis(res, image_shape=cube.shape[1:], mask=row_mask[:, :3], measured=cube)
    bad = np.where(row_mask[:, :, None], cube, np.nan)
    bad[I[0], 0, 0] = np.nan  # NaN at a measured entry
    with pytest.raises(ValueError, match="NaN"):
        spectral_analysis(res, image_shape=cube.shape[1:], mask=row_mask, measured=bad)
    with pytest.raises(ValueError, match="NaN"):
        spectral_analysis(cube, mask=row_mask, measured=bad)


@pytest.mark.parametrize("seed", SEEDS)
def test_write_back_completion_is_analysed_from_its_matrix(seed):
    """A write-back CURResult was refused ("cube must be a 3-D array ... got shape (n_E, n_pix)"),
    so ACURISS with write_back=True skipped every analysis and its variation rule never fired."""
    _, cube, _ = phase_stack(seed)
    C, R, I, J, row_mask = cur_inputs(seed, cube)
    res = cur_complete(C, R, I, J, rtol=1e-6, write_back=True, dense=False)
    a = spectral_analysis(res, image_shape=cube.shape[1:], seed=seed)
    b = spectral_analysis(res.matrix.reshape(cube.shape), seed=seed)
    _compare_analyses(a, b)
    with pytest.raises(ValueError, match="image_shape"):
        spectral_analysis(res)
    with pytest.raises(ValueError, match=r"image_shape \(5, 5\) needs"):
        spectral_analysis(res, image_shape=(5, 5))


@pytest.mark.parametrize("seed", SEEDS)
def test_acuriss_with_write_back_analyses_every_step(seed):
    e, cube, spectra = phase_stack(seed)
    p = ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.1, seed=seed,
                       max_iterations=4, stop_rule="variation", write_back=True)
    acq = curiss.replay(p, cube)
    assert p.analysis_ is not None
    assert not any(h.get("analysis_fallback") for h in acq.history)
    # the first steps have no previous analysis to compare with; the later ones do
    assert np.isfinite([h["spectral_variation"] for h in acq.history]).sum() >= 2


@pytest.mark.parametrize("seed", SEEDS)
def test_warm_start_is_deterministic_and_keeps_a_converged_partition(seed):
    """A warm start repeats itself, and started from the converged centres of the same data it
    keeps their partition (40 of 40 seeds). It used to be asserted close to a cold start (ARI >
    0.9) on a changed completion, which seeds 0-2 meet; a seed audit found 4 of 40 seeds where
    the warm start settles in another local minimum (ARI 0.43-0.78, k-means objective 1.04-1.57x
    the cold one's): the bias the ``warm_start`` docstring states."""
    _, cube, _ = phase_stack(seed)
    C, R, I, J, row_mask = cur_inputs(seed, cube)
    res = cur_complete(C, R, I, J, rtol=1e-6, dense=False)
    prev = spectral_analysis(res, image_shape=cube.shape[1:], seed=seed)
    C2, R2, I2, J2, _ = cur_inputs(seed, cube, n_images=8)
    res2 = cur_complete(C2, R2, I2, J2, rtol=1e-6, dense=False)
    a = spectral_analysis(res2, image_shape=cube.shape[1:], seed=seed, warm_start=prev)
    b = spectral_analysis(res2, image_shape=cube.shape[1:], seed=seed, warm_start=prev)
    cold = spectral_analysis(res2, image_shape=cube.shape[1:], seed=seed)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.cluster_centers.shape == (4, 3)
    assert adjusted_rand(a.labels, cold.labels) > 0  # the same structure, if another optimum
    same = spectral_analysis(res, image_shape=cube.shape[1:], seed=seed + 1, warm_start=prev)
    assert adjusted_rand(same.labels, prev.labels) == 1.0


# ----------------------------------------------------------------------------- variations
@pytest.mark.parametrize("seed", SEEDS)
def test_factored_completion_variation_matches_dense(seed):
    _, cube, _ = phase_stack(seed)
    C, R, I, J, _ = cur_inputs(seed, cube, n_images=5)
    C2, R2, I2, J2, _ = cur_inputs(seed, cube, n_images=7, n_rows=4)
    a = cur_complete(C, R, I, J, rtol=1e-6, dense=False)
    b = cur_complete(C2, R2, I2, J2, rtol=1e-6, dense=False)
    fac = completion_variation(a, b)
    assert not (a.matrix_formed or b.matrix_formed)
    dense = completion_variation(a.matrix, b.matrix)
    assert fac == pytest.approx(dense, rel=1e-10, abs=1e-15)
    assert completion_variation(a, a) == 0.0
    # a tiny change is resolved (no cancellation in the factored formula)
    c = CURResult(left=a.left * (1 + 1e-9), right=a.right, rank=a.rank)
    assert completion_variation(a, c) == pytest.approx(1e-9 / (1 + 1e-9), rel=1e-4)
    # mixed factored / dense: compared as matrices
    assert completion_variation(a, b.matrix) == pytest.approx(dense, rel=1e-12)
    with pytest.raises(ValueError, match="shape"):
        completion_variation(a, CURResult(left=a.left[:-1], right=a.right, rank=a.rank))


# ----------------------------------------------------------------------------- the planner step
class _DensePlanner(ACURISSPlanner):
    """The refinement step as before issue 7: dense completion, dense analysis and variation."""

    def _evaluate(self, dec_or_none):
        res = self._cur()
        cube = res.matrix.reshape(self._od.shape)
        self._eval_extra = {}
        ds = dc = float("nan")
        ana = spectral_analysis(cube, n_components=self.n_components, n_clusters=self.n_clusters,
                                seed=self._analysis_seed, mask=self.mask, measured=self._od)
        if self._prev_spectra is not None:
            from curiss.analysis import spectral_variation

            ds = spectral_variation(self._prev_spectra, ana.cluster_spectra)
        self.analysis_ = ana
        if self._prev_completion is not None:
            dc = completion_variation(self._prev_completion, cube)
        self._prev_completion = cube
        self._prev_spectra = ana.cluster_spectra
        self._completion = cube
        self._completion_key = len(self._order)
        return res, dc, ds


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stop_rule", ["prediction", "variation"])
def test_acuriss_step_keeps_the_completion_factored(seed, stop_rule):
    e, cube, spectra = phase_stack(seed)
    kw = dict(sampling_ratio=0.6, initial_ratio=0.1, seed=seed, max_iterations=5,
              dictionary=spectra if seed % 2 else None, stop_rule=stop_rule)
    if stop_rule == "prediction":
        kw["min_images"] = e.size  # the rule never fires: run every step, compare its statistics
    else:
        kw.update(tol_completion=0.0, tol_spectral=0.0)  # nor does this one
    p = ACURISSPlanner(e, cube.shape[1:], **kw)
    q = _DensePlanner(e, cube.shape[1:], **kw)
    n_steps = 0
    while True:
        req, req_q = p.suggest(), q.suggest()
        if req is None:
            assert req_q is None
            break
        np.testing.assert_array_equal(req.pairs, req_q.pairs)  # same decisions
        if p.cur_result_ is not None:
            n_steps += 1
            assert not p.cur_result_.matrix_formed  # the step did not form the dense completion
            assert not isinstance(p._completion_value, np.ndarray)
            for name in ("completion_variation", "spectral_variation"):
                a, b = getattr(p.history[-1], name), getattr(q.history[-1], name)
                assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-14)
            np.testing.assert_array_equal(p.analysis_.labels, q.analysis_.labels)
            # the prediction of the newest rows from the previous CUR factors (never the dense
            # completion) equals the dense one's
            for name in ("prediction_error", "prediction_mse", "noise_variance", "coverage_gap"):
                a, b = p.history[-1].extra.get(name), q.history[-1].extra.get(name)
                assert (a is None and b is None) or (np.isnan(a) and np.isnan(b)) or \
                    a == pytest.approx(b, rel=1e-9, abs=1e-14), name
        for ei, yi in req.pairs:
            p.ingest(ei, yi, cube[ei, yi])
            q.ingest(ei, yi, cube[ei, yi])
    assert n_steps >= 3
    assert p.stop_reason == q.stop_reason
    np.testing.assert_array_equal(p.mask, q.mask)
    assert not p.cur_result_.matrix_formed
    latest = p.latest_completion  # formed on demand, from the last step's factors
    assert p.cur_result_.matrix_formed
    np.testing.assert_array_equal(latest, q.latest_completion)
    assert p.completed() is latest  # no new data: the same cube, not recomputed
    assert p.latest_completion is latest


@pytest.mark.parametrize("seed", SEEDS)
def test_acuriss_warm_start_planner_is_deterministic(seed):
    e, cube, _ = phase_stack(seed)
    kw = dict(sampling_ratio=0.6, initial_ratio=0.1, seed=seed, max_iterations=4,
              stop_rule="variation", tol_completion=0.0, tol_spectral=0.0, kmeans_warm_start=True)
    a = curiss.replay(ACURISSPlanner(e, cube.shape[1:], **kw), cube)
    b = curiss.replay(ACURISSPlanner(e, cube.shape[1:], **kw), cube)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert [h["spectral_variation"] for h in a.history][3:-1] == \
        [h["spectral_variation"] for h in b.history][3:-1]


# ----------------------------------------------------------------------------- replay and dose
@pytest.mark.parametrize("seed", SEEDS)
def test_chunked_dose_matches_one_block(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    od = rng.normal(0.5, 0.6, size=(7, 9, 5))  # negative OD too (clipped)
    order = np.argwhere(rng.random((7, 9)) < 0.5)
    i0 = rng.random(7) + 0.5
    one_block = cost_mod.acquisition_cost(order, 5, od=od, i0=i0)
    raster = cost_mod.raster_cost(7, (9, 5), od=od)
    absorbed = -np.expm1(-np.clip(od, 0.0, None))
    expected = np.zeros((9, 5))
    for ei, yi in order:
        expected[yi] += 1e-3 * i0[ei] * absorbed[ei, yi]
    np.testing.assert_allclose(one_block.dose_map, expected, rtol=1e-13)
    monkeypatch.setattr(cost_mod, "_DOSE_CHUNK", 7)  # one row per block
    chunked = cost_mod.acquisition_cost(order, 5, od=od, i0=i0)
    np.testing.assert_allclose(chunked.dose_map, one_block.dose_map, rtol=1e-13)
    np.testing.assert_allclose(cost_mod.raster_cost(7, (9, 5), od=od).dose_map, raster.dose_map,
                               rtol=1e-13)
    od_bad = od.copy()
    od_bad[3, 4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cost_mod.acquisition_cost(order, 5, od=od_bad)


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_dose_of_a_recorded_run_without_a_copy(seed):
    e, cube, _ = phase_stack(seed, n_e=30, shape=(16, 12))
    p = ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.4, initial_ratio=0.15, seed=seed,
                       max_iterations=2)
    acq = curiss.replay(p, cube)
    recorded = np.where(acq.mask, cube, np.nan)  # a recorded subsampled run: NaN elsewhere
    recorded[0, 0, 0] = np.inf if not acq.mask[0, 0, 0] else recorded[0, 0, 0]
    again = curiss.replay(ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.4, initial_ratio=0.15,
                                         seed=seed, max_iterations=2), recorded)
    np.testing.assert_array_equal(again.mask, acq.mask)
    clean = np.clip(np.nan_to_num(recorded, nan=0.0), 0.0, None)
    ref = cost_mod.acquisition_cost(again.order, cube.shape[2], od=clean)
    # the full raster's dose is estimated from the completion (it would measure every row)
    ref_raster = cost_mod.raster_cost(cube.shape[0], cube.shape[1:],
                                      od=np.clip(again.completed, 0.0, None))
    np.testing.assert_allclose(again.cost.dose_map, ref.dose_map, rtol=1e-13)
    np.testing.assert_allclose(again.raster_cost.dose_map, ref_raster.dose_map, rtol=1e-13)
    assert np.isnan(recorded).any()  # the input was not modified
