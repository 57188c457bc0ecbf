"""Planners and offline replay: protocol, reproducibility, masks vs history, stopping rules."""

import re

import numpy as np
import pytest

import curiss
from curiss.linalg import budget
from curiss.planners import PLANNERS, make_planner
from curiss.linalg import balanced_budget, images_first_budget

SEEDS = [0, 1, 7]


def low_rank_cube(n_e=30, shape=(16, 12), rank=3, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    e = np.linspace(700, 730, n_e)
    spectra = np.abs(rng.normal(size=(n_e, rank))) + 0.1
    maps = np.abs(rng.normal(size=(rank, shape[0] * shape[1])))
    cube = (spectra @ maps).reshape(n_e, *shape)
    if noise:
        cube = cube + noise * rng.normal(size=cube.shape)
    return e, cube, spectra


def planner_for(method, energies, shape, seed, dictionary=None, **kw):
    kwargs = {"raster": {}, "random_rows": {"sampling_ratio": 0.3}}.get(method, {"sampling_ratio": 0.15})
    if method in ("riss", "curiss", "acuriss"):
        kwargs["dictionary"] = dictionary
    if method == "acuriss":
        kwargs.update(sampling_ratio=0.3, initial_ratio=0.12, max_iterations=4)
    kwargs.update(kw)
    return make_planner(method, energies, shape, seed=seed, **kwargs)


@pytest.mark.parametrize("method", sorted(PLANNERS))
@pytest.mark.parametrize("seed", SEEDS)
def test_mask_matches_history_and_nothing_measured_twice(method, seed):
    e, cube, spectra = low_rank_cube(seed=seed, noise=1e-3)
    p = planner_for(method, e, cube.shape[1:], seed, dictionary=spectra)
    acq = curiss.replay(p, cube)
    requested = np.zeros((e.size, cube.shape[1]), int)
    for h in acq.history:
        for a, b in h["pairs"]:
            requested[a, b] += 1
    assert requested.max() == 1, "a row was requested twice"
    assert np.array_equal(requested.astype(bool), acq.mask[:, :, 0])
    assert np.array_equal(acq.mask, np.broadcast_to(acq.mask[:, :, :1], acq.mask.shape))
    assert acq.sampling_ratio == pytest.approx(acq.mask.mean())
    assert acq.history[-1]["kind"] == "stop" and acq.history[-1]["stop_reason"]
    assert len(acq.order) == requested.sum()
    assert acq.completed.shape == cube.shape and np.all(np.isfinite(acq.completed))
    assert p.done and p.suggest() is None


@pytest.mark.parametrize("method", sorted(PLANNERS))
def test_reproducible_from_seed(method):
    e, cube, spectra = low_rank_cube(noise=1e-2)
    runs = [curiss.replay(planner_for(method, e, cube.shape[1:], s, dictionary=spectra), cube)
            for s in (3, 3, 4)]
    assert np.array_equal(runs[0].order, runs[1].order)
    assert np.array_equal(runs[0].completed, runs[1].completed)
    if method != "raster":
        assert not np.array_equal(runs[0].mask, runs[2].mask)


@pytest.mark.parametrize("seed", SEEDS)
def test_curiss_exact_on_low_rank_cube(seed):
    e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=3, seed=seed)
    # ratio 0.2 gives >= 3 images (>= rank) under every budget rule
    for rule in ("authors", "balanced", "images"):
        p = curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.2, dictionary=spectra, seed=seed,
                                 budget_rule=rule)
        acq = curiss.replay(p, cube)
        err = np.linalg.norm(acq.completed - cube) / np.linalg.norm(cube)
        assert err < 1e-8
        assert acq.history[-1]["rank"] == 3
    s_e, s_r = budget(40, (20, 15), 0.2)  # the authors' rule
    assert s_e >= 3
    assert (p.n_images, p.n_rows) == images_first_budget(40, (20, 15), 0.2)  # the last rule tried
    assert len(p.imaged_energies) == p.n_images
    s_e, s_r = p.n_images, p.n_rows
    assert acq.mask[:, :, 0].sum() == s_e * 20 + (40 - s_e) * s_r
    assert acq.mask.mean() <= 0.2


def _split_that_fits(rule, n_e, shape, ratio):
    """``rule(n_e, shape, ratio)`` checked to fit the ratio; None when below the minimum ratio
    (refused with the minimum in the message)."""
    try:
        s_e, s_r = rule(n_e, shape, ratio)
    except ValueError as exc:
        assert "minimum is" in str(exc)
        return None
    assert 1 <= s_e < n_e and 1 <= s_r <= shape[0]
    assert (s_e * shape[0] + (n_e - s_e) * s_r) / (n_e * shape[0]) <= ratio + 1e-12
    return s_e, s_r


@pytest.mark.parametrize("ratio", [0.03, 0.05, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(125, 125), (40, 30), (16, 64)])
def test_images_first_budget_fits_the_ratio(ratio, shape):
    n_e = 123
    split = _split_that_fits(images_first_budget, n_e, shape, ratio)
    if split is None:
        return
    s_e, s_r = split
    if s_r == 1:  # as many images as fit
        assert ((s_e + 1) * shape[0] + (n_e - s_e - 1)) / (n_e * shape[0]) > ratio


def test_volume_energy_sampling_avoids_near_duplicates():
    """Volume sampling on a 2-spectrum dictionary never images two energies that carry the same
    information while the authors' leverage draws sometimes do."""
    e = np.linspace(700, 730, 60)
    d = np.zeros((60, 2))
    d[10:13, 0] = 1.0  # three interchangeable energies for spectrum 0
    d[40:43, 1] = 1.0  # and three for spectrum 1
    both, lev_dup = 0, 0
    for seed in range(30):
        for sampling, flag in (("volume", "v"), ("leverage", "l")):
            p = curiss.CURISSPlanner(e, (8, 6), sampling_ratio=0.2, dictionary=d, seed=seed,
                                     energy_sampling=sampling, budget_rule="authors")
            p.suggest()
            first2 = p.history[0].pairs[:, 0]
            chosen = np.unique(first2)
            groups = {int(i >= 40) for i in chosen if 10 <= i < 13 or 40 <= i < 43}
            if flag == "v":
                both += groups == {0, 1}
            else:
                lev_dup += groups != {0, 1}
    assert both == 30
    assert lev_dup > 0


def test_curiss_uses_dictionary_leverage():
    # a dictionary concentrated on the first 5 energies: images must be drawn there
    e, cube, _ = low_rank_cube(n_e=40)
    d = np.zeros((40, 2))
    d[:5, 0] = [1, 2, 3, 4, 5]
    d[:5, 1] = [5, 1, 4, 2, 3]
    for seed in SEEDS:
        p = curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.12, dictionary=d, seed=seed)
        curiss.replay(p, cube)
        assert set(p.imaged_energies) <= set(range(5))


def test_random_rows_and_riss_complete_low_rank(first_seed=0):
    """Exact rank 2 at ratio 0.35. Random rows complete it to 1e-2 on every seed (40 of 40).
    RISS (images, then one row at each other energy) does on 30 of 40: on the others LoopedASD
    grows past rank 2 (to 5) and stops on stagnation, error up to 0.048 (measured by a seed
    audit; this test once asserted 1e-2 for RISS on one seed that meets it). So: random rows
    always, RISS on at least 2 of 6 seeds and never worse than 0.1."""
    riss_ok = 0
    for s in range(first_seed, first_seed + 6):
        e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=2, seed=3 + s)
        for cls, kw in ((curiss.RandomRowsPlanner, {}), (curiss.RISSPlanner, {"dictionary": spectra})):
            acq = curiss.replay(cls(e, cube.shape[1:], sampling_ratio=0.35, seed=1 + s, **kw), cube)
            err = np.linalg.norm(acq.completed - cube) / np.linalg.norm(cube)
            if cls is curiss.RandomRowsPlanner:
                assert err < 1e-2, (s, err)
            else:
                assert err < 0.1, (s, err)
                riss_ok += err < 1e-2
    assert riss_ok >= 2, riss_ok


def test_acuriss_stops_on_completion_variation():
    e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=2, seed=5)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.1,
                              dictionary=spectra, seed=0, tol_completion=1e-6, tol_spectral=0.0,
                              stop_rule="variation")
    acq = curiss.replay(p, cube)
    assert p.stop_reason.startswith("completion variation"), p.stop_reason
    assert acq.history[-1]["completion_variation"] <= 1e-6
    assert p.report()["refinements"] == 1  # exact data: the first refinement changes nothing


def test_acuriss_stops_on_spectral_variation():
    e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=3, seed=5, noise=0.05)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.6, initial_ratio=0.1,
                              dictionary=spectra, seed=0, tol_completion=0.0, tol_spectral=0.5,
                              stop_rule="variation")
    acq = curiss.replay(p, cube)
    assert p.stop_reason.startswith("spectral variation"), p.stop_reason
    assert acq.history[-1]["spectral_variation"] <= 0.5


@pytest.mark.parametrize("mode", ["alternate", "energies"])
def test_acuriss_stops_on_max_iterations_and_alternates(mode):
    e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=3, seed=2, noise=0.05)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.9, initial_ratio=0.1,
                              dictionary=spectra, seed=1, tol_completion=0.0, tol_spectral=0.0,
                              max_iterations=4, mode=mode, stop_rule="variation")
    acq = curiss.replay(p, cube)
    assert p.stop_reason.startswith("max_iterations"), p.stop_reason
    kinds = [h["kind"] for h in acq.history]
    assert kinds[:2] == ["image", "rows"] and kinds[-1] == "stop"
    refine = kinds[2:-1]
    assert len(refine) == 4
    if mode == "alternate":
        assert refine == ["image", "row_scan", "image", "row_scan"]
    else:
        assert refine == ["image"] * 4
    # each refinement decision records why it did not stop: the variations it saw
    assert all(np.isfinite(h["completion_variation"]) for h in acq.history[3:])


def test_acuriss_stops_at_ratio_budget():
    e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=3, seed=2, noise=0.05)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.16, initial_ratio=0.1,
                              dictionary=spectra, seed=1, tol_completion=0.0, tol_spectral=0.0,
                              stop_rule="variation")
    acq = curiss.replay(p, cube)
    assert "budget" in p.stop_reason, p.stop_reason
    assert acq.sampling_ratio <= 0.16 + 1e-12


def test_acuriss_stops_at_max_time():
    e, cube, spectra = low_rank_cube(n_e=40, shape=(20, 15), rank=3, seed=2, noise=0.05)
    p0 = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.9, initial_ratio=0.1,
                               dictionary=spectra, seed=1, tol_completion=0.0, tol_spectral=0.0,
                               max_iterations=0, stop_rule="variation")
    t0 = curiss.replay(p0, cube).cost.time
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.9, initial_ratio=0.1,
                              dictionary=spectra, seed=1, tol_completion=0.0, tol_spectral=0.0,
                              max_time=t0 + 5.0, stop_rule="variation")
    acq = curiss.replay(p, cube)
    assert p.stop_reason.startswith("max_time"), p.stop_reason
    assert t0 < acq.cost.time <= t0 + 5.0  # refinements chosen only while they fit
    kinds = [h["kind"] for h in acq.history]
    # a row scan (one energy change per energy not imaged, > 5 s) never fits: images do
    assert "row_scan" not in kinds and kinds.count("image") >= 3, kinds


def test_protocol_errors():
    e, cube, spectra = low_rank_cube()
    p = curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.15, seed=0)
    req = p.suggest()
    with pytest.raises(RuntimeError, match="not ingested"):
        p.suggest()
    e0, y0 = req.pairs[0]
    with pytest.raises(ValueError, match="shape"):
        p.ingest(e0, y0, np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        p.ingest(e0, y0, np.full(cube.shape[2], np.nan))
    p.ingest(e0, y0, cube[e0, y0])
    with pytest.raises(ValueError, match="already measured"):
        p.ingest(e0, y0, cube[e0, y0])
    missing = [(a, b) for a in range(e.size) for b in range(cube.shape[1])
               if not req.as_mask(e.size, cube.shape[1])[a, b]][0]
    with pytest.raises(ValueError, match="not requested"):
        p.ingest(*missing, cube[missing])


@pytest.mark.parametrize("bad, match", [
    ({"energies": [700, 710, 705]}, "strictly increasing"),
    ({"energies": [700, 700, 710]}, "strictly increasing"),
    ({"energies": [700, np.nan, 710]}, "finite"),
    ({"shape": (0, 4)}, "shape"),
    ({"shape": (4,)}, "shape"),
    ({"sampling_ratio": 1e-4}, "ratio too small: minimum is"),
    ({"sampling_ratio": 1.5}, r"\(0.0, 1.0\]"),
    ({"dictionary": np.ones((3, 2))}, "n_energies"),
    ({"dictionary": np.full((30, 2), np.nan)}, "NaN"),
    # a cut that keeps no singular value completed the whole stack as zeros
    ({"core_rtol": 1.0}, r"core_rtol must be in \[0, 1\)"),
])
def test_bad_input_is_refused(bad, match):
    e, cube, _ = low_rank_cube()
    kw = {"energies": e, "shape": cube.shape[1:], "sampling_ratio": 0.15, "seed": 0}
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        curiss.CURISSPlanner(kw.pop("energies"), kw.pop("shape"), **kw)


@pytest.mark.parametrize("bad, exc, match", [
    # read as (4, 5), (4, 5) and (1, 5): a str is a sequence of digits, True is 1
    ({"shape": "45"}, ValueError, r"shape must be \(n_y, n_x\), two positive integers; got '45'"),
    ({"shape": ("4", "5")}, ValueError, "shape must be .* got \\('4', '5'\\)"),
    ({"shape": (True, 5)}, ValueError, "shape must be .* got \\(True, 5\\)"),
    # numpy dropped the imaginary part with only a warning, and read a bool dictionary as 0/1
    ({"energies": np.linspace(700, 720, 30) + 5j}, TypeError,
     "energies must be real numbers .* dtype complex128"),
    ({"energies": [str(v) for v in np.linspace(700, 720, 30)]}, TypeError,
     "energies must be real numbers"),
    ({"dictionary": np.ones((30, 2)) * (1 + 3j)}, TypeError,
     "dictionary must be real numbers .* dtype complex128"),
    ({"dictionary": np.eye(30, 2, dtype=bool)}, TypeError, "dictionary must be real numbers .* dtype bool"),
], ids=["shape_str", "shape_strs", "shape_bool", "energies_complex", "energies_str",
        "dictionary_complex", "dictionary_bool"])
def test_values_numpy_would_convert_are_refused(bad, exc, match):
    e, cube, _ = low_rank_cube()
    kw = {"energies": e, "shape": cube.shape[1:], "sampling_ratio": 0.15, "seed": 0}
    kw.update(bad)
    with pytest.raises(exc, match=match):
        curiss.CURISSPlanner(kw.pop("energies"), kw.pop("shape"), **kw)


@pytest.mark.parametrize("seed", [1.5, "3", -1, True])
def test_bad_seed_type(seed):
    e, cube, _ = low_rank_cube()
    with pytest.raises(TypeError, match="seed"):
        curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.15, seed=seed)


def test_replay_cost_against_raster():
    e, cube, spectra = low_rank_cube()
    acq = curiss.replay(curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.15, seed=0), cube)
    full = curiss.replay(curiss.RasterPlanner(e, cube.shape[1:]), cube)
    assert full.cost.time == pytest.approx(acq.raster_cost.time)
    assert acq.saving["time"] < 1 and acq.saving["dose_total"] < 1
    assert full.saving["time"] == pytest.approx(1.0)
    assert np.array_equal(full.completed, cube)


def test_blas_thread_setting_does_not_change_decisions():
    e, cube, spectra = low_rank_cube(noise=1e-2)
    runs = []
    for threads in (1, None):
        p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.12,
                                  dictionary=spectra, seed=3, max_iterations=3)
        p.blas_threads = threads
        runs.append(curiss.replay(p, cube))
    assert np.array_equal(runs[0].order, runs[1].order)
    assert np.allclose(runs[0].completed, runs[1].completed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ratio", [0.03, 0.05, 0.06, 0.08, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(125, 125), (150, 150), (64, 64), (40, 30), (16, 64)])
def test_balanced_budget_adds_rows_only_when_images_remain(ratio, shape):
    n_e = 123
    split = _split_that_fits(balanced_budget, n_e, shape, ratio)
    if split is None:
        return
    s_e, s_r = split
    if s_r == 1:
        assert (s_e, s_r) == images_first_budget(n_e, shape, ratio)
    else:  # enough images for these rows, and as many images as fit with them
        assert s_e >= 5 and s_e >= 2.5 * s_r
        assert (s_e, s_r) == images_first_budget(n_e, shape, ratio, n_rows=s_r)
    # one more row would leave too few images
    e, r = images_first_budget(n_e, shape, ratio, n_rows=s_r + 1)
    assert r != s_r + 1 or e < 5 or e < 2.5 * (s_r + 1)


def test_balanced_budget_on_the_als_geometry():
    """123 energies x 125 rows (71214078): the images-first split up to 0.05, then rows."""
    assert balanced_budget(123, (125, 125), 0.05) == images_first_budget(123, (125, 125), 0.05) == (5, 1)
    assert balanced_budget(123, (125, 125), 0.06) == (5, 2)
    assert balanced_budget(123, (125, 125), 0.08) == (8, 2)
    assert balanced_budget(123, (125, 125), 0.10) == (9, 3)
    p = curiss.CURISSPlanner(np.linspace(700, 730, 123), (125, 125), sampling_ratio=0.08)
    assert p.budget_rule == "balanced" and (p.n_images, p.n_rows) == (8, 2)
    assert curiss.RISSPlanner(np.linspace(700, 730, 123), (125, 125), sampling_ratio=0.08).n_rows == 1


def test_ingest_refuses_a_float_or_bool_index_instead_of_truncating_it():
    e, cube, spectra = low_rank_cube()
    p = curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.3, seed=0)
    (e0, r0) = p.suggest().pairs[0]
    with pytest.raises(TypeError, match="energy_index must be an integer index"):
        p.ingest(e0 + 0.9, r0, cube[e0 + 1, r0])  # used to be stored as energy e0
    with pytest.raises(TypeError, match="row_index must be an integer index"):
        p.ingest(e0, True, cube[e0, 1])
    assert not p.row_mask.any()
    p.ingest(np.int64(e0), np.int32(r0), cube[e0, r0])  # numpy integers are indices
    assert p.row_mask[e0, r0]


def test_completed_is_read_only_so_a_caller_cannot_change_the_planner():
    e, cube, spectra = low_rank_cube()
    p = curiss.CURISSPlanner(e, cube.shape[1:], sampling_ratio=0.3, seed=0)
    acq = curiss.replay(p, cube)
    with pytest.raises(ValueError, match="read-only"):
        p.completed()[:] = 0
    with pytest.raises(ValueError, match="read-only"):
        acq.completed[0, 0, 0] = 1.0
    assert np.any(p.completed()) and np.array_equal(p.completed(), acq.completed)
    mine = p.completed().copy()
    mine[:] = 0  # a copy is the caller's
    assert np.any(p.completed())


@pytest.mark.parametrize("kw, exc, match", [
    ({"n_components": 2.7}, TypeError, "n_components must be an integer"),
    ({"n_clusters": True}, TypeError, "n_clusters must be an integer"),
    ({"max_iterations": True}, TypeError, "max_iterations must be an integer"),
    ({"max_iterations": None}, TypeError, "max_iterations must be an integer"),
    ({"max_iterations": -1}, ValueError, "max_iterations must be an integer >= 0"),
    ({"max_time": "10"}, TypeError, "max_time must be a real number"),
    ({"max_time": True}, TypeError, "max_time must be a real number"),
    ({"max_time": 0.0}, ValueError, "max_time must be a positive number"),
])
def test_acuriss_keywords_of_the_wrong_type_are_refused_not_truncated(kw, exc, match):
    e, cube, spectra = low_rank_cube()
    with pytest.raises(exc, match=match):
        curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.2, **kw)


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_of_a_recorded_run_estimates_the_raster_dose_from_the_completion(seed):
    """A recorded subsampled run has NaN wherever it did not measure. The full raster's dose
    used to read those entries as OD 0, i.e. only the measured rows: 'saving' said 1.0."""
    e, cube, spectra = low_rank_cube(seed=seed)
    live = curiss.replay(planner_for("curiss", e, cube.shape[1:], seed, spectra), cube)
    recorded = np.where(live.mask, cube, np.nan)
    again = curiss.replay(planner_for("curiss", e, cube.shape[1:], seed, spectra), recorded)
    np.testing.assert_array_equal(again.order, live.order)  # the same decisions
    assert again.cost.dose_total == pytest.approx(live.cost.dose_total)
    # the completion is close on this rank-3 cube (measured: within 2 %), so is the estimate
    assert again.raster_cost.dose_total == pytest.approx(live.raster_cost.dose_total, rel=0.05)
    assert again.saving["dose_total"] == pytest.approx(live.saving["dose_total"], rel=0.05)
    assert again.saving["dose_total"] < 0.5


def test_run_trials_serves_every_strategy_from_a_one_shot_iterable_of_seeds():
    """The raster's list(seeds)[:1] used to exhaust a generator: later strategies got none."""
    from curiss.compare import run_trials

    e, cube, spectra = low_rank_cube(n_e=12, shape=(8, 6))
    trials = run_trials(e, cube, ratio=0.3, seeds=(s for s in [0, 1]), n_clusters=3,
                        strategies=("raster", "random_rows", "curiss"), dictionary=spectra)
    assert sorted((t.strategy, t.seed) for t in trials) == [
        ("curiss", 0), ("curiss", 1), ("random_rows", 0), ("random_rows", 1), ("raster", 0)]


@pytest.mark.parametrize("seeds, ratio, match", [([0.7], 0.3, "each seed must be an integer"),
                                                 (["1"], 0.3, "each seed must be an integer"),
                                                 ([0], float("nan"), "ratio must be in"),
                                                 ([0], 1.5, "ratio must be in")])
def test_run_trials_refuses_seeds_and_ratios_it_would_reinterpret(seeds, ratio, match):
    """A seed 0.7 ran as seed 0, "1" as 1; ratio nan or 1.5 ran (the raster ignores it)."""
    from curiss.compare import run_trials

    e, cube, _ = low_rank_cube(n_e=12, shape=(8, 6))
    with pytest.raises((TypeError, ValueError), match=match):
        run_trials(e, cube, ratio=ratio, seeds=seeds, strategies=("raster",))


@pytest.mark.parametrize("kw, exc, match", [
    (dict(seeds=0), TypeError, r"seeds must be an iterable of ints \(e.g. range\(10\)\), got 0"),
    (dict(seeds=[]), ValueError, "seeds is empty"),
    (dict(seeds=[3, 1, 3]), ValueError, r"seeds must be distinct; \[3\] given more than once"),
    (dict(seeds=[-1]), ValueError, "each seed must be >= 0"),
    (dict(strategies="curiss"), TypeError, r"strategies must be a list of names, e.g. \['curiss'\]"),
    (dict(strategies=["raster", "curis"]), ValueError, r"unknown strategies \['curis'\]; choose from"),
    (dict(strategies=[]), ValueError, "strategies is empty; choose from"),
    (dict(progress=3), TypeError, "progress must be a callable"),
    (dict(skipped=[]), TypeError, r"skipped must be a dict"),
    (dict(truth=np.zeros((12, 4, 6))), ValueError, r"truth has shape \(12, 4, 6\); it must be the cube's"),
    # k was checked by the first trial's signal error, after its replay
    (dict(k=0), ValueError, r"k must be an int in \[1, 12\] for this cube; got 0"),
    (dict(k=13), ValueError, r"k must be an int in \[1, 12\]"),
    (dict(k=2.5), ValueError, r"k must be an int in \[1, 12\] for this cube; got 2.5"),
])
def test_run_trials_checks_everything_before_the_first_replay(kw, exc, match, monkeypatch):
    """An unknown strategy was reported after the ones before it had run (their results lost);
    "curiss" as strategies ran 'c'; seeds=0 and skipped=[] failed with Python errors; progress=3
    after the first trial; a wrong truth after the replay; a repeated seed counted twice."""
    from curiss import compare

    e, cube, _ = low_rank_cube(n_e=12, shape=(8, 6))
    monkeypatch.setattr(compare, "replay", lambda *a, **k: pytest.fail("replayed before checking"))
    args = dict(seeds=[0], strategies=("raster",)) | kw
    with pytest.raises(exc, match=match):
        compare.run_trials(e, cube, ratio=0.3, **args)


def test_run_trials_refuses_a_stack_with_dead_pixels_before_the_first_replay(monkeypatch):
    """A NaN pixel in the "fully measured" stack was found by the reference analysis, whose
    message asked for "a completed cube"."""
    from curiss import compare

    e, cube, _ = low_rank_cube(n_e=12, shape=(8, 6))
    cube[:, 3, 4] = np.nan
    monkeypatch.setattr(compare, "replay", lambda *a, **k: pytest.fail("replayed before checking"))
    with pytest.raises(ValueError, match=r"cube has 12 NaN/Inf value\(s\); the comparison replays "
                                         r"a fully measured stack"):
        compare.run_trials(e, cube, ratio=0.3, seeds=[0], strategies=["curiss"])
    truth = np.nan_to_num(cube)
    with pytest.raises(ValueError, match=r"truth has 1 NaN/Inf value\(s\)"):
        truth[0, 0, 0] = np.inf
        compare.run_trials(e, np.nan_to_num(cube), ratio=0.3, seeds=[0], truth=truth,
                           strategies=["curiss"])


def test_run_trials_leaves_out_an_acuriss_whose_first_step_exceeds_its_cap():
    """At a ratio below half the stack's minimum, ACURISS's initial step (at least the minimum)
    is above its cap (2 x ratio): the planner refused initial_ratio, a keyword the user never
    gave, with a plain ValueError that stopped the whole comparison."""
    from curiss.compare import run_trials
    from curiss.linalg import RatioTooSmallError, minimum_ratio

    e, cube, spectra = low_rank_cube(n_e=20, shape=(12, 10))
    ratio = 0.06
    assert 2 * ratio < minimum_ratio(20, (12, 10))
    skipped = {}
    trials = run_trials(e, cube, ratio=ratio, seeds=[0], dictionary=spectra, n_clusters=3,
                        strategies=("raster", "acuriss"), skipped=skipped)
    assert [t.strategy for t in trials] == ["raster"]
    assert skipped["acuriss"].startswith("ratio too small for acuriss: its initial step needs")
    with pytest.raises(RatioTooSmallError, match="ratio too small for acuriss"):
        run_trials(e, cube, ratio=ratio, seeds=[0], dictionary=spectra, strategies=("acuriss",))


def test_replay_and_ingest_refuse_what_they_would_misread():
    """replay(max_requests="5") gave a Python error and 0 'did not finish'; a bool row counted
    as OD 1/0."""
    e, cube, spectra = low_rank_cube()
    p = planner_for("curiss", e, cube.shape[1:], 0, spectra)
    with pytest.raises(TypeError, match="max_requests must be an integer"):
        curiss.replay(p, cube, max_requests="5")
    with pytest.raises(ValueError, match="max_requests must be >= 1"):
        curiss.replay(p, cube, max_requests=0)
    (e0, r0), = p.suggest().pairs[:1]
    with pytest.raises(TypeError, match="must be real numbers"):
        p.ingest(e0, r0, np.ones(cube.shape[2], bool))
    p.ingest(e0, r0, np.ones(cube.shape[2], np.int64))  # integer counts of OD are fine


def test_replay_refuses_a_used_planner_and_a_cube_that_is_not_real_numbers():
    """replay() of a finished planner on another cube returned the first cube's decisions and
    completion with the second cube's cost; a complex cube lost its imaginary part with a
    warning, a bool cube was read as OD 0/1, a planner's name failed with AttributeError."""
    e, cube, spectra = low_rank_cube()
    fresh = planner_for("curiss", e, cube.shape[1:], 0, spectra)
    for bad in (cube.astype(complex), cube > cube.mean(), cube.astype(str)):
        with pytest.raises(TypeError, match="cube must be real optical densities"):
            curiss.replay(fresh, bad)
    with pytest.raises(TypeError, match="planner must be a curiss planner"):
        curiss.replay("curiss", cube)
    assert not fresh.history  # nothing was decided by the refused calls
    first = curiss.replay(fresh, cube)
    with pytest.raises(ValueError, match=r"replay needs a fresh planner; this CURISSPlanner has made "
                                         rf"{len(first.history)} decision\(s\)"):
        curiss.replay(fresh, 2 * cube)
    half = planner_for("curiss", e, cube.shape[1:], 0, spectra)
    (e0, r0), = half.suggest().pairs[:1]  # asked, not yet measured: pending
    with pytest.raises(ValueError, match="fresh planner"):
        curiss.replay(half, cube)
    again = curiss.replay(curiss.make_planner(fresh.method, fresh.energies, fresh.shape,
                                              **fresh.get_params()), 2 * cube)
    assert np.array_equal(again.mask, first.mask)  # the advice in the message works
    assert np.allclose(again.completed, 2 * first.completed)


@pytest.mark.parametrize("kw, exc, match", [({"rtol": "0.1"}, TypeError, "rtol must be a real number"),
                                            ({"rtol": -1.0}, ValueError, "rtol must be >= 0"),
                                            ({"check": "no"}, TypeError, "check must be True or False")])
def test_recompute_checks_its_options_before_replaying(kw, exc, match):
    """rtol="0.1" failed with a numpy UFuncTypeError after the replay; rtol=-1 reported every
    run as differing 'by 0'."""
    from curiss.store import recompute

    with pytest.raises(exc, match=match):
        recompute(object(), **kw)  # refused before the run is even looked at


@pytest.mark.parametrize("trials", ["abc", ["71214078.npz"], [{"strategy": "curiss"}]])
def test_summarise_refuses_what_is_not_trials(trials):
    """A string used to fail with "'str' object has no attribute 'strategy'"."""
    from curiss.compare import run_trials, summarise

    with pytest.raises(TypeError, match="Trial objects"):
        summarise(trials)
    e, cube, _ = low_rank_cube(n_e=12, shape=(8, 6))
    ok = run_trials(e, cube, ratio=0.3, seeds=iter([0]), strategies=("raster",))
    assert summarise(iter(ok))["raster"]["sampling_ratio"] == (1.0, 1.0)


# ------------------------------------------------------------------ failed rows (mark_failed)
def _drive(p, cube, fails, max_steps=60):
    """Run planner ``p`` on ``cube``; a pair for which ``fails(e, r)`` is true is marked failed."""
    for _ in range(max_steps):
        req = p.suggest()
        if req is None:
            return
        for e, r in req.pairs:
            if fails(int(e), int(r)):
                p.mark_failed(e, r, "test fault")
            else:
                p.ingest(e, r, cube[e, r])
    raise AssertionError(f"no stop after {max_steps} steps: {[d.kind for d in p.history]}")


def _fails_at(pair, persistent):
    """A failure predicate for :func:`_drive`: ``pair`` fails every time, or only the first."""
    tries = []

    def fails(e, r):
        if (e, r) != pair:
            return False
        tries.append(1)
        return persistent or len(tries) == 1

    return fails


_FAULT_PLANNERS = [("curiss", dict(sampling_ratio=0.1)), ("riss", dict(sampling_ratio=0.1)),
                   ("acuriss", dict(sampling_ratio=0.3, initial_ratio=0.07))]


def _first(method, kw, ph, seed, kind):
    """The first request of ``kind`` of a clean run (same seed: the faulty run's, up to there)."""
    p = make_planner(method, ph.energies, ph.shape, seed=seed, **kw)
    while True:
        req = p.suggest()
        if req.kind == kind:
            return req
        for e, r in req.pairs:
            p.ingest(e, r, ph.cube[e, r])


@pytest.mark.parametrize("method, kw", [m for m in _FAULT_PLANNERS if m[0] != "riss"])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_spatial_row_that_keeps_failing_is_replaced_so_cur_can_complete(method, kw, seed):
    """With one row in the budget, one pair that failed every time used to leave CUR without a
    column: suggest() raised "cannot complete yet" on every call, after the dose was spent."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    e0, r0 = (int(v) for v in _first(method, kw, ph, seed, "rows").pairs[0])
    p = make_planner(method, ph.energies, ph.shape, seed=seed, **kw)
    assert p.n_rows == 1
    _drive(p, ph.cube, lambda e, r: (e, r) == (e0, r0))
    assert p.done and not p.row_mask[e0, r0] and (e0, r0, "test fault") in p.failed
    rows = p._chosen_rows()
    assert rows.size >= 1 and r0 not in rows  # a replacement row, measured at every energy
    cube = p.completed()
    assert np.all(np.isfinite(cube))
    # a completion, if a poorer one than with the failed row: over phantom seeds 1-8 and planner
    # seeds 0-4 (80 runs, a seed audit) at most 0.46 (phantom 3: clean 0.14-0.17), clean runs at
    # most 0.41; this bound was 0.4, which phantom seed 1 alone never reaches
    assert np.linalg.norm(cube - ph.truth) / np.linalg.norm(ph.truth) < 0.6
    if p.measured_ratio > p.sampling_ratio:  # only the replacement may go over, and it says so
        assert f"replaced the failed row(s) [{r0}]" in p.stop_reason


@pytest.mark.parametrize("method, kw", [m for m in _FAULT_PLANNERS if m[0] != "riss"])
@pytest.mark.parametrize("seed", SEEDS)
def test_an_energy_no_selected_row_could_be_measured_at_stops_and_names_it(method, kw, seed):
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    req = _first(method, kw, ph, seed, "rows")
    dead = int(req.pairs[0, 0])  # an energy that is not imaged: the monochromator never gets there
    p = make_planner(method, ph.energies, ph.shape, seed=seed, **kw)
    _drive(p, ph.cube, lambda e, r: e == dead)
    assert p.done and not p.row_mask[dead].any()
    assert p.stop_reason.startswith("failed rows left no CUR completion")
    assert f"energies [{dead}] ({ph.energies[dead]:g} eV) could not be measured" in p.stop_reason
    if p.measured_ratio > p.sampling_ratio:  # a replacement row tried first: said (it was not)
        assert "over sampling_ratio" in p.stop_reason
    with pytest.raises(RuntimeError, match=f"energies \\[{dead}\\]"):
        p.completed()


@pytest.mark.parametrize("method, kw", _FAULT_PLANNERS)
@pytest.mark.parametrize("seed", SEEDS)
def test_a_failed_image_row_is_measured_again_at_its_energy_within_the_budget(method, kw, seed):
    """A lost image row used to cost a whole new image, on top of the n_y - 1 rows already
    measured at that energy: CURISS and RISS ended over sampling_ratio (0.1125 for 0.1)."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    e0, r0 = (int(v) for v in _first(method, kw, ph, seed, "image").pairs[0])
    for persistent in (False, True):
        p = make_planner(method, ph.energies, ph.shape, seed=seed, **kw)
        _drive(p, ph.cube, _fails_at((e0, r0), persistent))
        assert p.history[1].kind == "image"
        assert p.history[1].pairs.tolist() == [[e0, r0]]  # only the lost row, at its energy
        if persistent and f"replaced the failed row(s) [{r0}]" in p.stop_reason:
            # the lost row is also the spatial row CUR uses (planner seed 25 of curiss): that
            # row then lacks energy e0, and only a new row, said to go over, completes the stack
            assert r0 in p._rows_replaced and "over sampling_ratio" in p.stop_reason
        else:
            assert p.measured_ratio <= p.sampling_ratio + 1e-12, p.stop_reason
        assert np.all(np.isfinite(p.completed()))
        assert (e0 in p.imaged_energies) is (not persistent)


@pytest.mark.parametrize("method, kw", _FAULT_PLANNERS)
def test_an_energy_never_reached_in_the_image_step_is_replaced_by_another(method, kw):
    """ACURISS used to go on to its rows without an image (a row basis of nothing) and fail.
    (The monochromator fails at that energy during the image step only, as with
    ``mono.fail_next_moves``; an energy never reached at all is the test above.)"""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    first = _first(method, kw, ph, 0, "image")
    dead = int(first.pairs[0, 0])
    p = make_planner(method, ph.energies, ph.shape, seed=0, **kw)
    _drive(p, ph.cube, lambda e, r: e == dead and len(p.history) == 1)
    replacement = p.history[1]
    assert replacement.kind == "image" and dead not in replacement.pairs[:, 0]
    assert p.imaged_energies.size >= p.n_images
    assert p.measured_ratio <= p.sampling_ratio + 1e-12
    assert np.all(np.isfinite(p.completed()))


@pytest.mark.parametrize("method", ["riss", "random_rows"])
@pytest.mark.parametrize("early", [False, True])
def test_the_stop_record_carries_the_looped_asd_notes_before_anyone_completes(method, early):
    """The plan records the stop record, then asks for the completion: the LoopedASD notes
    (convergence, fallback) used to land in that record only after it was recorded, or, when a
    live display had completed the stack at the same rows, in an earlier decision only."""
    from curiss.datasets import make_phantom

    ph = make_phantom(30, (16, 16), 3, seed=0, noise=0.02)
    p = make_planner(method, ph.energies, ph.shape, sampling_ratio=0.2, seed=0)
    while (req := p.suggest()) is not None:
        for e, r in req.pairs:
            p.ingest(e, r, ph.cube[e, r])
        if early and method == "riss" and p.history[-1].kind == "rows":
            p.completed()  # a live display, at the same rows as the end
    stop = p.history[-1].as_dict()  # what the plan records, before its completed() call
    assert stop["kind"] == "stop"
    assert isinstance(stop["asd_converged"], bool) and stop["asd_stop_reason"]
    assert stop["asd_rank"] >= 1 and "fallback" in stop


@pytest.mark.parametrize("n_e, shape, ratio", [(123, (150, 150), 0.03), (40, (24, 20), 0.11),
                                               (2, (1, 5), 0.77), (7, (5, 3), 0.5)])
def test_random_rows_never_measure_more_than_the_ratio(n_e, shape, ratio):
    """The budget was round(p·n_E·n_y): 554 rows of 18450 for 0.03 (0.030027), and for n_E=2
    and one spatial row at 0.77 both rows (1.0), below the planner's own minimum."""
    from curiss.linalg import RatioTooSmallError
    from curiss.planners import RandomRowsPlanner

    e = 700.0 + np.arange(n_e)
    if max(n_e, shape[0]) > np.floor(ratio * n_e * shape[0]):
        with pytest.raises(RatioTooSmallError, match="ratio too small"):
            RandomRowsPlanner(e, shape, sampling_ratio=ratio, seed=0)
        return
    p = RandomRowsPlanner(e, shape, sampling_ratio=ratio, seed=0)
    req = p.suggest()
    assert len(req.pairs) == int(np.floor(ratio * n_e * shape[0]))
    assert len(req.pairs) / (n_e * shape[0]) <= ratio
    assert p.get_params()["row_budget"] == "floor"  # recorded, so recompute rebuilds it
    old = RandomRowsPlanner(e, shape, sampling_ratio=ratio, seed=0, row_budget="round")
    assert len(old.suggest().pairs) == int(round(ratio * n_e * shape[0]))  # as recorded runs did
    with pytest.raises(ValueError, match="row_budget must be 'floor' or 'round'"):
        RandomRowsPlanner(e, shape, sampling_ratio=ratio, seed=0, row_budget="ceil")


@pytest.mark.parametrize("kind", ["image", "row_scan"])
@pytest.mark.parametrize("seed", SEEDS)
def test_acuriss_stops_asking_for_a_refinement_that_failed_twice(kind, seed):
    """A refinement image (or row scan) with one pair that always failed was chosen again at
    every refinement (the residual still pointed there): ACURISS spent its budget asking for
    that one row, and stopped at the cap with a single image."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    kw = dict(sampling_ratio=0.3, initial_ratio=0.07)
    p = make_planner("acuriss", ph.energies, ph.shape, seed=seed, **kw)
    bad = []

    def fails(e, r):
        if not bad and len(p.history) > 2 and p.history[-1].kind == kind:
            bad.append((e, r))
        return bool(bad) and (e, r) == bad[0]

    _drive(p, ph.cube, fails)
    assert bad, f"no {kind} refinement to fail: {[d.kind for d in p.history]}"
    axis = 0 if kind == "image" else 1
    asked = sum(bad[0][axis] in d.pairs[:, axis] for d in p.history if d.kind == kind)
    assert asked <= 2, [d.kind for d in p.history]
    # other refinements of that kind were measured instead (before: only the initial image)
    done = p.imaged_energies.size - p.n_images if kind == "image" else None
    assert done is None or done >= 1, p.stop_reason
    assert np.all(np.isfinite(p.completed()))


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_riss_makes_up_for_a_failed_row_so_every_energy_keeps_one(seed, persistent):
    """RISS never measured a failed row again: with one row per energy (its default budget at
    small ratios) the energy had none, and the completion raised "energies [e] have no measured
    row yet" (303 of 2,137 fuzzed failure patterns)."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    e0, r0 = (int(v) for v in _first("riss", dict(sampling_ratio=0.1), ph, seed, "rows").pairs[0])
    p = make_planner("riss", ph.energies, ph.shape, seed=seed, sampling_ratio=0.1)
    assert p.n_rows == 1
    _drive(p, ph.cube, _fails_at((e0, r0), persistent))
    assert p.row_mask[e0].any()  # the energy has a row: the failed one again, or a new one
    assert bool(p.row_mask[e0, r0]) is (not persistent)  # a transient fault: measured again
    assert np.all(np.isfinite(p.completed()))
    if p.measured_ratio > p.sampling_ratio:
        assert "over sampling_ratio" in p.stop_reason


@pytest.mark.parametrize("seed", SEEDS)
def test_riss_stops_and_names_an_energy_no_row_could_be_measured_at(seed):
    """An energy the monochromator never reaches: RISS gave it three new rows in turn and, at
    every round, asked again for the pairs it had given up on (17 requests, 68 attempts at two
    dead energies), in requests not sorted by energy, and ended with "budget reached"."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    kw = dict(sampling_ratio=0.1)
    first = _first("riss", kw, ph, seed, "rows")
    dead = sorted({int(first.pairs[0, 0]), int(first.pairs[-1, 0])})
    p = make_planner("riss", ph.energies, ph.shape, seed=seed, **kw)
    assert p.n_rows == 1
    _drive(p, ph.cube, lambda e, r: e in dead)
    for d in p.history[1:]:
        if d.kind != "stop":  # one monochromator move per energy
            assert np.all(np.diff(d.pairs[:, 0]) >= 0), d.pairs
    tries = {}
    for e, r, _ in p.failed:
        tries[(e, r)] = tries.get((e, r), 0) + 1
    assert {e for e, _ in tries} == set(dead)
    assert max(tries.values()) <= 1 + p.MAX_REPLACEMENTS  # a pair given up on is not asked again
    for e in dead:  # its own row, then one new row (a row fault looks the same as an energy's)
        assert len({r for f, r in tries if f == e}) == 2
    ev = ", ".join(f"{ph.energies[e]:g}" for e in dead)
    assert p.stop_reason.startswith(f"failed rows left no LoopedASD completion: energies {dead} "
                                    f"({ev} eV) could not be measured"), p.stop_reason
    with pytest.raises(RuntimeError, match=re.escape(f"energies {dead}")):
        p.completed()



@pytest.mark.parametrize("seed", SEEDS)
def test_random_rows_names_an_energy_its_failed_rows_left_without_a_row(seed):
    """An energy whose rows fail at every request (measured again three times) is left without
    any row: it cannot be completed, and the stop reason said "plan complete"."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    p = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.1, seed=seed)
    dead = int(p.suggest().pairs[0, 0])
    p = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.1, seed=seed)
    _drive(p, ph.cube, lambda e, r: e == dead)
    assert p.stop_reason.startswith(f"failed rows left no LoopedASD completion: energies [{dead}] "
                                    f"({ph.energies[dead]:g} eV)"), p.stop_reason
    with pytest.raises(RuntimeError, match=f"energies \\[{dead}\\]"):
        p.completed()
    clean = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.1, seed=seed)
    _drive(clean, ph.cube, lambda e, r: False)
    assert clean.stop_reason == "plan complete"


@pytest.mark.parametrize("seed", SEEDS)
def test_random_rows_measure_failed_rows_again(seed):
    """Random rows gave up on a failed row at once: one monochromator glitch left its energy,
    and so the whole completion, without data (the run ended "success" and could be neither
    resumed nor recomputed into a completion). A row that failed alone at its energy is
    replaced by another there."""
    from curiss.datasets import make_phantom

    ph = make_phantom(40, (24, 20), 3, seed=1, noise=0.02)
    first = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.1,
                         seed=seed).suggest().pairs
    glitch = int(first[0, 0])  # every row of this energy fails in the first request only
    p = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.1, seed=seed)
    _drive(p, ph.cube, lambda e, r: e == glitch and len(p.history) == 1)
    assert p.stop_reason == "plan complete" and np.all(np.isfinite(p.completed()))
    assert [tuple(x) for x in p.history[1].pairs] == [tuple(x) for x in first[first[:, 0] == glitch]]
    assert p.measured_ratio <= p.sampling_ratio + 1e-12
    # one row per energy (40 rows); one that fails for ever, alone at its energy (the row is at
    # fault): after three retries a new row there
    one = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.042,
                       seed=seed).suggest().pairs
    assert len(one) == ph.energies.size
    rows, counts = np.unique(one[:, 1], return_counts=True)
    e1, bad = (int(v) for v in one[np.isin(one[:, 1], rows[counts > 1])][0])  # seen elsewhere too
    q = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.042, seed=seed)
    _drive(q, ph.cube, lambda e, r: (e, r) == (e1, bad))
    assert q.row_mask[e1].sum() == 1 and not q.row_mask[e1, bad]
    assert q.row_mask.sum() == len(one) and q.stop_reason == "plan complete"
    assert np.all(np.isfinite(q.completed()))
    # a spatial row measured at only that energy: its pixels have no data at all
    e2, lone = (int(v) for v in one[np.isin(one[:, 1], rows[counts == 1])][0])
    z = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.042, seed=seed)
    _drive(z, ph.cube, lambda e, r: (e, r) == (e2, lone))
    assert f"spatial rows [{lone}] were measured at no energy" in z.stop_reason
    with pytest.raises(RuntimeError, match=f"spatial rows \\[{lone}\\] were measured at no"):
        z.completed()
    # the earlier behaviour, which recompute rebuilds for runs recorded before retry_failed
    assert p.get_params()["retry_failed"] is True  # recorded: a run without it is older
    assert curiss.RandomRowsPlanner.earlier_defaults["retry_failed"] is False
    old = make_planner("random_rows", ph.energies, ph.shape, sampling_ratio=0.1, seed=seed,
                       retry_failed=False)
    _drive(old, ph.cube, lambda e, r: e == glitch and len(old.history) == 1)
    assert len(old.history) == 2 and f"energies [{glitch}]" in old.stop_reason


@pytest.mark.parametrize("cls", [curiss.planners.Planner, curiss.RasterPlanner,
                                 curiss.RandomRowsPlanner, curiss.RISSPlanner,
                                 curiss.CURISSPlanner, curiss.ACURISSPlanner])
def test_a_planner_class_shows_its_own_keywords(cls):
    """``help(Planner)`` and IDEs showed ``(*args, **kwargs)``: Planner.__new__ (which records
    the arguments for get_params) shadowed its __init__ in inspect.signature (a class that
    defines no __init__ of its own, e.g. a user's strategy, would show the same)."""
    import inspect

    sig = inspect.signature(cls)
    assert list(sig.parameters)[:2] == ["energies", "shape"]
    assert sig == inspect.signature(cls.__init__).replace(
        parameters=list(inspect.signature(cls.__init__).parameters.values())[1:])
    if cls is curiss.CURISSPlanner:  # __new__ still records the arguments
        planner = cls(np.linspace(700, 720, 8), (6, 5), sampling_ratio=0.5, seed=3)
        assert planner.get_params()["seed"] == 3


def test_a_raster_row_that_always_fails_is_asked_for_again_once_then_given_up():
    """The raster asked for every row not measured until all were: one row that could never be
    measured (an energy out of the monochromator's reach) made it ask for ever."""
    e = np.linspace(700, 720, 5)
    planner = curiss.RasterPlanner(e, (4, 3))
    dead, flaky = (3, 1), (0, 2)
    flaky_failed = False
    for _ in range(10):
        req = planner.suggest()
        if req is None:
            break
        for ei, r in req.pairs:
            if (ei, r) == dead or ((ei, r) == flaky and not flaky_failed):
                flaky_failed = flaky_failed or (ei, r) == flaky
                planner.mark_failed(ei, r, "mono")
            else:
                planner.ingest(ei, r, np.ones(3))
    assert planner.done and len(planner.history) == 3  # all rows, the two failed ones, stop
    assert planner.row_mask.sum() == 5 * 4 - 1 and planner.row_mask[flaky]
    assert [tuple(p) for p in planner.history[1].pairs] == [flaky, dead]
    assert "1 row(s) could not be measured" in planner.stop_reason and "[3]" in planner.stop_reason
    with pytest.raises(RuntimeError, match="could not be measured"):
        planner.completed()
