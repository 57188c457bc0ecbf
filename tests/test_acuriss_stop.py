"""ACURISS noise-aware stop rule (``stop_rule="prediction"``, the default) and the previous rule.

The rule compares the completion made before the newest rows were measured with those rows,
minus a noise variance estimated from second differences along x, and stops when that relative
error is below ``tol_prediction`` for ``n_consecutive`` refinements with ``min_images`` images.
"""

from __future__ import annotations

import numpy as np
import pytest

import curiss
from curiss.analysis import signal_error
from curiss.datasets import make_phantom
from curiss.linalg import minimum_ratio, row_pixels
from curiss.planners._strategies import COVERAGE_GAP_MAX, _row_noise_variance

CAP = 0.10


@pytest.fixture(scope="module")
def phantom():
    """The benchmark phantom (docs/quality.md): 100 energies, 64 x 64, 3 materials, noise 0.02."""
    return make_phantom(n_energies=100, shape=(64, 64), n_materials=3, seed=0, noise=0.02)


def p0_of(ph):
    return max(0.02, 1.001 * minimum_ratio(ph.energies.size, ph.shape))


def acuriss(ph, seed, **kw):
    args = dict(sampling_ratio=CAP, initial_ratio=p0_of(ph), dictionary=ph.spectra, seed=seed)
    args.update(kw)
    return curiss.ACURISSPlanner(ph.energies, ph.shape, **args)


def small_stack(seed, n_e=40, shape=(24, 30), noise=0.02):
    """Smooth low-rank maps (rank 3) plus Gaussian noise: (energies, cube, spectra)."""
    rng = np.random.default_rng(seed)
    e = np.linspace(700, 730, n_e)
    t = np.linspace(0, 1, n_e)
    spectra = np.column_stack([0.3 + np.exp(-((t - c) / 0.06) ** 2) for c in (0.3, 0.45, 0.6)])
    yy, xx = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    maps = np.stack([0.5 + 0.5 * np.sin(2 * np.pi * (a * yy + b * xx) + c)
                     for a, b, c in rng.uniform(0.3, 1.5, size=(3, 3))])
    cube = np.einsum("ek,kyx->eyx", spectra, maps) + noise * rng.standard_normal((n_e, *shape))
    return e, cube, spectra


# ------------------------------------------------------------------ the noise estimate
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma", [0.01, 0.05])
def test_row_noise_variance_of_white_noise_on_a_smooth_signal(seed, sigma):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, 200)
    rows = 0.8 + 0.3 * np.sin(3 * x + rng.uniform(0, 3, size=(50, 1))) + sigma * rng.standard_normal((50, 200))
    est = _row_noise_variance(rows)
    assert est.shape == (50,)
    assert np.mean(est) == pytest.approx(sigma**2, rel=0.1)
    with pytest.raises(ValueError, match="n_x >= 3"):
        _row_noise_variance(rows[:, :2])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_x", [16, 64])
def test_matrix_noise_estimate_ignores_sharp_texture(seed, n_x):
    """Rows of a narrow field crossing sharp-edged particles (rank 3 across energies): the
    median-singular-value estimate finds the noise; second differences along x count the edges as
    noise (measured 1.6x on the 24 x 16 x 16 demo phantom, which made ACURISS stop too early)."""
    from curiss.planners._strategies import _matrix_noise_variance

    rng = np.random.default_rng(seed)
    n_e, sigma = 40, 0.01
    spectra = rng.uniform(0.1, 1.0, size=(n_e, 3))
    maps = (rng.uniform(size=(3, 2 * n_x)) > 0.5) * rng.uniform(0.5, 2, size=(3, 1))  # on/off pixels
    C = spectra @ maps + sigma * rng.standard_normal((n_e, 2 * n_x))
    est = np.sqrt(_matrix_noise_variance(C))
    assert est == pytest.approx(sigma, rel=0.2)
    rough = np.sqrt(np.mean(_row_noise_variance(C.reshape(n_e * 2, n_x))))
    assert rough > 2 * sigma  # the texture fools the row estimate


@pytest.mark.parametrize("sigma, high", [(0.02, 1.15), (0.05, 1.15)])
def test_planner_noise_estimate_close_to_the_true_noise(sigma, high):
    """On the phantom with known Gaussian noise: every recorded estimate of the noise std within
    [0.85, high] x sigma (the median-singular-value estimate on the rows measured at every
    energy)."""
    ph = make_phantom(n_energies=100, shape=(64, 64), n_materials=3, seed=0, noise=sigma)
    acq = curiss.replay(acuriss(ph, 0, min_images=ph.energies.size, max_iterations=4), ph.cube)
    noise = [h["noise_variance"] for h in acq.history[3:]]
    assert len(noise) >= 4 and np.all(np.isfinite(noise))
    ratio = np.sqrt(noise) / sigma
    assert np.all((ratio > 0.85) & (ratio < high)), ratio


# ------------------------------------------------------------------ the rule on a noisy phantom
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prediction_rule_stops_before_the_cap_close_to_curiss(phantom, seed):
    ph = phantom
    p = acuriss(ph, seed)
    acq = curiss.replay(p, ph.cube)
    assert p.stop_reason.startswith("prediction error"), p.stop_reason
    assert acq.sampling_ratio < CAP - 0.01
    err = signal_error(acq.completed, ph.truth, k=3)
    # CURISS told the ratio ACURISS found on its own (same seed)
    c = curiss.replay(curiss.CURISSPlanner(ph.energies, ph.shape, sampling_ratio=acq.sampling_ratio,
                                           dictionary=ph.spectra, seed=seed), ph.cube)
    err_c = signal_error(c.completed, ph.truth, k=3)
    assert err < 0.15 and err < 1.6 * err_c + 0.02, (err, err_c)
    # the stop reason carries the numbers; the stop record carries the statistics
    stop = acq.history[-1]
    assert f"tol_prediction {p.tol_prediction:g}" in p.stop_reason and "noise variance" in p.stop_reason
    assert stop["prediction_error"] <= p.tol_prediction
    assert stop["noise_variance"] == pytest.approx(p.prediction_["noise_variance"])


@pytest.mark.parametrize("seed", [0, 3])
def test_stops_at_the_first_refinement_where_the_rule_holds(seed):
    e, cube, spectra = small_stack(seed)
    for n_cons, min_img, min_rows in ((2, 3, None), (1, 5, 1), (3, 2, 3)):
        p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.6, initial_ratio=0.1,
                                  dictionary=spectra, seed=seed, n_consecutive=n_cons,
                                  min_images=min_img, min_rows=min_rows, tol_prediction=0.3)
        assert p.min_rows == (2 if min_rows is None else min_rows)
        acq = curiss.replay(p, cube)
        hist = acq.history
        assert p.stop_reason.startswith("prediction error"), p.stop_reason
        assert f"rows >= min_rows {p.min_rows}" in p.stop_reason
        # records made after a completion: refinements (hist[2:-1]) and the stop record
        rel = [h["prediction_error"] for h in hist[2:]]
        assert np.isnan(rel[0]) and np.all(np.isfinite(rel[1:]))
        assert all(h["prediction_mse"] >= 0 and h["noise_variance"] >= 0 for h in hist[3:])
        assert p.report()["n_energies_imaged"] >= min_img
        assert p.report()["min_rows"] == p.min_rows
        passes = [np.isfinite(r) and r <= 0.3 for r in rel]
        # row coverage (the default) holds a passing window back while the gap is above its limit
        covered = [h["coverage_gap"] <= COVERAGE_GAP_MAX for h in hist[2:]]
        assert all(passes[-n_cons:]) and covered[-1]
        # no earlier window of n_cons passes, with the rows covering the images, while enough
        # images and rows were in (at each evaluation: those of the initial step plus the
        # refinements before it)
        images = len(np.unique(hist[0]["pairs"][:, 0]))
        rows = len(np.unique(hist[1]["pairs"][:, 1]))
        assert rows + sum(h["kind"] == "row_scan" for h in hist[2:-1]) >= p.min_rows
        for i, h in enumerate(hist[2:-1]):
            if i >= n_cons - 1 and images >= min_img and rows >= p.min_rows:
                assert not (all(passes[i - n_cons + 1:i + 1]) and covered[i]), (i, rel, covered)
            images += h["kind"] == "image"
            rows += h["kind"] == "row_scan"


def test_a_run_started_with_one_row_stops_only_after_a_second_row_is_predicted():
    """A large initial step (many images, one row) used to stop on image predictions alone (the
    71214078 stack from p0 = 0.04: signal error 0.40 and ARI 0.43 in the worst of 10 seeds, 1 row;
    with the default min_rows=2: 0.245 / 0.810). The default waits for a row chosen by ARP from
    the refinement images and for its prediction; min_rows=1 restores the earlier behaviour."""
    e, cube, spectra = small_stack(2)
    # the images-first split keeps one row whatever the ratio (as p0 = 0.04 does on 71214078)
    kw = dict(sampling_ratio=0.8, initial_ratio=0.2, dictionary=spectra, budget_rule="images")
    one_row_stops = 0
    for seed in range(4):
        p = curiss.ACURISSPlanner(e, cube.shape[1:], seed=seed, **kw)
        assert p.n_rows == 1 and p.n_images >= 3
        curiss.replay(p, cube)
        assert p.stop_reason.startswith("prediction error"), p.stop_reason
        assert p._chosen_rows().size >= 2
        # the stop came after the second row's prediction: a row scan is among the decisions
        # and at least one refinement (its prediction) followed it
        kinds = [d.kind for d in p.history]
        assert "row_scan" in kinds[2:], kinds
        old = curiss.ACURISSPlanner(e, cube.shape[1:], seed=seed, min_rows=1, **kw)
        curiss.replay(old, cube)
        one_row_stops += old._chosen_rows().size == 1
    assert one_row_stops >= 1  # the situation the default guards against does arise here


def test_refinement_order_images_per_row():
    e, cube, spectra = small_stack(1)
    for k in (1, 2, 3):
        p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.9, initial_ratio=0.1,
                                  dictionary=spectra, seed=1, images_per_row=k, max_iterations=7,
                                  min_images=e.size)
        acq = curiss.replay(p, cube)
        assert p.stop_reason.startswith("max_iterations"), p.stop_reason
        kinds = [h["kind"] for h in acq.history][2:-1]
        expected = ["image" if i % (k + 1) < k else "row_scan" for i in range(7)]
        assert kinds == expected, (k, kinds)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.9, initial_ratio=0.1,
                              dictionary=spectra, seed=1, mode="energies", max_iterations=4,
                              min_images=e.size)
    assert [h["kind"] for h in curiss.replay(p, cube).history][2:-1] == ["image"] * 4
    # defaults: 3 with the prediction rule, 1 (strict alternation) with the variation rule
    kw = dict(sampling_ratio=0.3, initial_ratio=0.1, seed=0)
    assert curiss.ACURISSPlanner(e, cube.shape[1:], **kw).images_per_row == 3
    assert curiss.ACURISSPlanner(e, cube.shape[1:], stop_rule="variation", **kw).images_per_row == 1


# ------------------------------------------------------------------ the previous rule
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variation_rule_is_the_previous_behaviour(seed):
    """``stop_rule="variation"``: strict alternation, stop at the first completion whose completion
    or spectral variation passes its tolerance; the prediction statistics are still recorded."""
    e, cube, spectra = small_stack(seed, noise=0.05)
    tol_c, tol_s = 0.02, 0.02
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.6, initial_ratio=0.1,
                              dictionary=spectra, seed=seed, stop_rule="variation",
                              tol_completion=tol_c, tol_spectral=tol_s)
    acq = curiss.replay(p, cube)
    hist = acq.history
    kinds = [h["kind"] for h in hist][2:-1]
    assert kinds == ["image" if i % 2 == 0 else "row_scan" for i in range(len(kinds))]

    def passes(h):
        return h["completion_variation"] <= tol_c or h["spectral_variation"] <= tol_s

    evaluated = hist[2:]
    if p.stop_reason.startswith(("completion variation", "spectral variation")):
        assert passes(evaluated[-1])
    else:
        assert "budget" in p.stop_reason, p.stop_reason
    assert not any(passes(h) for h in evaluated[:-1])
    assert np.all(np.isfinite([h["prediction_error"] for h in evaluated[1:]]))
    # the same decisions whatever the prediction settings (they are not used by this rule)
    q = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.6, initial_ratio=0.1,
                              dictionary=spectra, seed=seed, stop_rule="variation",
                              tol_completion=tol_c, tol_spectral=tol_s, tol_prediction=10.0,
                              n_consecutive=1, min_images=1, images_per_row=1)
    np.testing.assert_array_equal(curiss.replay(q, cube).order, acq.order)


# ------------------------------------------------------------------ every stop criterion
def test_each_stop_criterion_fires_under_the_prediction_rule():
    e, cube, spectra = small_stack(2, noise=0.05)
    never = {"min_images": e.size}  # the prediction test cannot pass
    base = dict(sampling_ratio=0.9, initial_ratio=0.1, dictionary=spectra, seed=1)
    # prediction
    p = curiss.ACURISSPlanner(e, cube.shape[1:], **base)
    curiss.replay(p, cube)
    assert p.stop_reason.startswith("prediction error"), p.stop_reason
    # max_iterations
    p = curiss.ACURISSPlanner(e, cube.shape[1:], max_iterations=3, **never, **base)
    acq = curiss.replay(p, cube)
    assert p.stop_reason == "max_iterations 3 reached" and p.report()["refinements"] == 3
    # max_time (never past it after the initial step)
    t0 = curiss.replay(curiss.ACURISSPlanner(e, cube.shape[1:], max_iterations=0, **base), cube).cost.time
    p = curiss.ACURISSPlanner(e, cube.shape[1:], max_time=t0 + 5.0, **never, **base)
    acq = curiss.replay(p, cube)
    assert p.stop_reason.startswith("max_time"), p.stop_reason
    assert t0 < acq.cost.time <= t0 + 5.0
    # the ratio cap
    b = dict(base, sampling_ratio=0.2)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], **never, **b)
    acq = curiss.replay(p, cube)
    assert p.stop_reason.startswith("sampling_ratio budget"), p.stop_reason
    assert acq.sampling_ratio <= 0.2 + 1e-12
    # ... and a stop at the cap says what the rule still lacked
    assert "before the stop rule passed" in p.stop_reason, p.stop_reason
    assert f"images < min_images {e.size}" in p.stop_reason, p.stop_reason
    # report
    r = p.report()
    assert r["stop_rule"] == "prediction" and r["images_per_row"] == 3
    assert np.isfinite(r["prediction_error"]) and r["noise_variance"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_seed_same_masks_and_failed_rows(seed):
    e, cube, spectra = small_stack(seed)
    kw = dict(sampling_ratio=0.5, initial_ratio=0.1, dictionary=spectra, seed=seed)
    a = curiss.replay(curiss.ACURISSPlanner(e, cube.shape[1:], **kw), cube)
    b = curiss.replay(curiss.ACURISSPlanner(e, cube.shape[1:], **kw), cube)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.order, b.order)
    # failed rows: the first row of each multi-row refinement and ~10 % of the others fail
    p = curiss.ACURISSPlanner(e, cube.shape[1:], **kw)
    rng = np.random.default_rng(seed + 100)
    all_failed = []  # per decision: did every requested row fail?
    while (req := p.suggest()) is not None:
        n_ok = 0
        for i, (ei, yi) in enumerate(req.pairs):
            if req.iteration >= 2 and ((i == 0 and len(req.pairs) > 1) or rng.random() < 0.1):
                p.mark_failed(ei, yi, "detector glitch")
            else:
                p.ingest(ei, yi, cube[ei, yi])
                n_ok += 1
        all_failed.append(n_ok == 0)
    assert p.done and p.stop_reason and len(p.failed) >= len(p.history) - 4
    measured = {tuple(x) for x in p.order.tolist()}
    assert all(p.row_mask[ei, yi] == ((ei, yi) in measured) for ei, yi, _ in p.failed)
    # the statistics use the rows that were measured (failed ones left out): NaN only when every
    # row of the decision before failed
    for i in range(3, len(p.history)):
        rel = p.history[i].extra["prediction_error"]
        assert np.isfinite(rel) != all_failed[i - 1], (i, rel)
        assert not np.isfinite(rel) or rel >= 0
    assert np.all(np.isfinite(p.completed()))


# ------------------------------------------------------------------ bad keywords
@pytest.mark.parametrize("bad, exc, match", [
    ({"stop_rule": "noise"}, ValueError, "stop_rule must be one of"),
    ({"stop_rule": None}, ValueError, "stop_rule must be one of"),
    ({"tol_prediction": -0.1}, ValueError, "tol_prediction must be a finite number >= 0"),
    ({"tol_prediction": np.nan}, ValueError, "tol_prediction must be a finite number >= 0"),
    ({"tol_prediction": "0.3"}, TypeError, "tol_prediction must be a finite number"),
    ({"n_consecutive": 0}, ValueError, "n_consecutive must be an integer >= 1"),
    ({"n_consecutive": 1.5}, TypeError, "n_consecutive must be an integer >= 1"),
    ({"n_consecutive": True}, TypeError, "n_consecutive must be an integer"),
    ({"min_images": 0}, ValueError, "min_images must be an integer >= 1"),
    ({"min_images": 41}, ValueError, r"min_images must be <= the number of energies \(40\)"),
    ({"min_images": "3"}, TypeError, "min_images must be an integer"),
    ({"images_per_row": 0}, ValueError, "images_per_row must be an integer >= 1"),
    ({"images_per_row": 2.5}, TypeError, "images_per_row must be an integer"),
    ({"images_per_row": 2, "mode": "energies"}, ValueError, "images_per_row applies to mode='alternate'"),
    ({"tol_completion": -1.0}, ValueError, "tol_completion must be a finite number >= 0"),
    ({"min_rows": 0}, ValueError, "min_rows must be an integer >= 1"),
    ({"min_rows": 2.5}, TypeError, "min_rows must be an integer"),
    ({"min_rows": 25}, ValueError, r"min_rows must be <= the number of spatial rows \(24\)"),
    ({"min_rows": 2, "mode": "energies"}, ValueError, "min_rows=2 can never be reached with mode='energies'"),
    ({"row_coverage": True, "stop_rule": "variation"}, ValueError,
     "row_coverage=True needs stop_rule='prediction' and mode='alternate'"),
    ({"row_coverage": True, "mode": "energies"}, ValueError,
     "row_coverage=True needs stop_rule='prediction' and mode='alternate'"),
    ({"row_coverage": "False"}, TypeError, "row_coverage must be True or False"),
    ({"row_coverage": 1}, TypeError, "row_coverage must be True or False"),
    # the authors' spectral variation drops the background cluster: with one it never fired
    ({"n_clusters": 1, "mode": "energies", "stop_rule": "variation"}, ValueError,
     "n_clusters must be >= 2 with mode='energies' and stop_rule='variation'; got 1"),
])
def test_bad_keywords_are_refused(bad, exc, match):
    e, cube, spectra = small_stack(0)
    with pytest.raises(exc, match=match):
        curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.3, initial_ratio=0.1, seed=0, **bad)


def test_narrow_rows_and_constant_data_do_not_break_the_rule():
    """n_x < 3: no second differences, the noise is taken as 0; a constant cube predicts exactly."""
    e = np.linspace(700, 720, 12)
    for shape, value in (((8, 2), 0.4), ((6, 5), 0.0)):
        cube = np.full((12, *shape), value)
        low = minimum_ratio(12, shape) * 1.001
        p = curiss.ACURISSPlanner(e, shape, sampling_ratio=min(1.0, low + 0.3), initial_ratio=low,
                                  seed=0, n_clusters=2, n_components=2)
        acq = curiss.replay(p, cube)
        assert p.stop_reason and acq.history[-1]["kind"] == "stop"
        rel = [h["prediction_error"] for h in acq.history[3:]]
        assert rel and all(abs(r) < 1e-12 for r in rel), rel
        np.testing.assert_allclose(acq.completed, cube, atol=1e-12)


def test_min_rows_and_budget_rule_are_recorded_and_older_runs_replay_as_before():
    """Start documents record min_rows, budget_rule, energy_refinement, tol_prediction,
    n_consecutive, row_refinement and row_coverage (get_params); a run written before they existed (none in
    planner_kwargs) is rebuilt with min_rows=1, budget_rule="images", energy_refinement="dictionary",
    tol_prediction=0.30, n_consecutive=2, row_refinement="arp" and row_coverage=False, the
    behaviour it was recorded with."""
    from types import SimpleNamespace

    from curiss.plans import planner_metadata
    from curiss.store._recompute import _planner_for

    e, cube, spectra = small_stack(2)
    kw = dict(sampling_ratio=0.8, initial_ratio=0.2, seed=1)
    meta = planner_metadata(curiss.ACURISSPlanner(e, cube.shape[1:], **kw))
    assert meta["min_rows"] == 2 and meta["budget_rule"] == "balanced"
    assert meta["energy_refinement"] == "residual" and meta["tol_prediction"] == 0.35
    assert meta["n_consecutive"] == 1 and meta["row_refinement"] == "pivoted"
    assert meta["row_coverage"] is True
    assert planner_metadata(curiss.ACURISSPlanner(e, cube.shape[1:], stop_rule="variation",
                                                  **kw))["row_coverage"] is False
    meta = planner_metadata(curiss.ACURISSPlanner(e, cube.shape[1:], energy_refinement="dictionary", **kw))
    assert meta["n_consecutive"] == 2  # random images: two passes in a row, as before
    meta = planner_metadata(curiss.ACURISSPlanner(e, cube.shape[1:], min_rows=3, budget_rule="authors", **kw))
    assert meta["min_rows"] == 3 and meta["budget_rule"] == "authors"
    assert planner_metadata(curiss.RISSPlanner(e, cube.shape[1:], sampling_ratio=0.3))["budget_rule"] == "images"

    def rebuilt(method, planner_kwargs):
        start = {"method": method, "planner_kwargs": planner_kwargs}
        return _planner_for(SimpleNamespace(start=start, energies=e, shape=cube.shape[1:], uid="x"))

    old = rebuilt("acuriss", dict(kw))  # as an earlier version recorded it
    assert old.min_rows == 1 and old.budget_rule == "images"
    assert old.energy_refinement == "dictionary" and old.tol_prediction == 0.30
    assert old.n_consecutive == 2 and old.row_refinement == "arp" and old.row_coverage is False
    # written with residual images before n_consecutive was recorded (tol_prediction 0.35 then)
    mid = rebuilt("acuriss", {**kw, "min_rows": 2, "budget_rule": "balanced",
                              "energy_refinement": "residual", "tol_prediction": 0.35})
    assert mid.energy_refinement == "residual" and mid.n_consecutive == 2 and mid.tol_prediction == 0.35
    assert mid.row_refinement == "arp"
    # written before row_refinement was recorded (every row scan by ARP, tol_prediction 0.30)
    prev = rebuilt("acuriss", {**kw, "min_rows": 2, "budget_rule": "balanced", "energy_refinement": "residual",
                               "tol_prediction": 0.30, "n_consecutive": 1})
    assert prev.row_refinement == "arp" and prev.tol_prediction == 0.30 and prev.n_consecutive == 1
    assert prev.row_coverage is False
    # written before row_coverage was recorded (the rule stopped whatever the rows missed)
    last = rebuilt("acuriss", {**kw, "min_rows": 2, "budget_rule": "balanced", "energy_refinement": "residual",
                               "tol_prediction": 0.35, "n_consecutive": 1, "row_refinement": "pivoted"})
    assert last.row_refinement == "pivoted" and last.row_coverage is False
    assert rebuilt("curiss", {"sampling_ratio": 0.3, "seed": 1}).budget_rule == "images"
    new = rebuilt("acuriss", {**kw, "min_rows": 2, "budget_rule": "balanced"})
    assert new.min_rows == 2 and new.budget_rule == "balanced"
    # the rebuilt planner retraces an earlier version's run decision by decision (the initial
    # step of this configuration differs between the two budget rules: 2 rows vs 1)
    # (row_refinement too: the rebuilt planner uses "arp", and without it this run differed on 1
    # of about 120 (data, planner) seed pairs a seed audit tried)
    earlier = dict(min_rows=1, budget_rule="images", energy_refinement="dictionary", tol_prediction=0.30,
                   n_consecutive=2, row_refinement="arp", row_coverage=False)
    a = curiss.replay(curiss.ACURISSPlanner(e, cube.shape[1:], **earlier, **kw), cube)
    b = curiss.replay(old, cube)
    assert [h["kind"] for h in a.history] == [h["kind"] for h in b.history]
    assert np.array_equal(a.mask, b.mask)
    assert curiss.ACURISSPlanner(e, cube.shape[1:], **kw).n_rows == 2 and old.n_rows == 1


# ------------------------------------------------------------------ residual refinement images
def two_group_stack(n_e=24, shape=(16, 20), seed=0, noise=1e-3):
    """Energies 0..n_e/2-1 see material A only, the others A + B: (energies, cube)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    A = 0.5 + 0.4 * np.sin(2 * np.pi * (0.7 * yy + 0.3 * xx) + rng.uniform(0, 6))
    B = 0.5 + 0.4 * np.cos(2 * np.pi * (0.2 * yy + 0.9 * xx) + rng.uniform(0, 6))
    a = rng.uniform(0.5, 1.5, n_e)
    b = np.where(np.arange(n_e) < n_e // 2, 0.0, rng.uniform(0.5, 1.5, n_e))
    cube = a[:, None, None] * A + b[:, None, None] * B + noise * rng.standard_normal((n_e, *shape))
    return np.linspace(700, 720, n_e), cube


@pytest.mark.parametrize("seed", range(12))
def test_residual_refinement_images_the_energy_the_images_do_not_explain(seed):
    """After one image and one row, when the image is of the A-only group every energy of that
    group is a multiple of it (nothing left to explain): the residual choice must take the A + B
    group. (An image of the A + B group explains neither group: then any energy may come next;
    a seed audit found 4 of seeds 0-59 taking another A + B energy, all with the first image in
    that group. This test once claimed the guarantee both ways, true of seeds 0-5 only.) The
    dictionary-drawn choice has no such guarantee."""
    e, cube = two_group_stack(seed=seed)
    p0 = 1.001 * minimum_ratio(e.size, cube.shape[1:])  # one image, one row
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=p0, seed=seed)
    assert p.energy_refinement == "residual" and (p.n_images, p.n_rows) == (1, 1)
    kinds = []
    while (req := p.suggest()) is not None:
        kinds.append(req.kind)
        if len(kinds) == 3:
            break
        for ee, r in req.pairs:
            p.ingest(ee, r, cube[ee, r])
    assert kinds == ["image", "rows", "image"]
    first = int(p.imaged_energies[0])
    (new,) = np.unique(req.pairs[:, 0])
    half = e.size // 2
    if first < half:
        assert new >= half, (first, new)
    w = req.energy_weights
    assert w.shape == (e.size,) and w.sum() == pytest.approx(1.0) and w[first] == 0 and w[new] == w.max()


def test_energy_refinement_keyword():
    e, cube = two_group_stack()
    kw = dict(sampling_ratio=0.5, initial_ratio=0.2, seed=0)
    assert curiss.ACURISSPlanner(e, cube.shape[1:], stop_rule="variation", **kw).energy_refinement == "dictionary"
    assert curiss.ACURISSPlanner(e, cube.shape[1:], energy_refinement="dictionary", **kw).energy_refinement == "dictionary"
    with pytest.raises(ValueError, match=r"energy_refinement must be one of \('residual', 'dictionary'\); got 'best'"):
        curiss.ACURISSPlanner(e, cube.shape[1:], energy_refinement="best", **kw)


@pytest.mark.parametrize("seed", [0, 1])
def test_residual_images_on_the_demo_stxm_poisson_noise(seed):
    """The `curiss demo` configuration on the simulated STXM (Poisson counts: the OD noise grows
    with the absorption). Scored against the stack-wide noise, the noisier absorbing energies
    looked unexplained and the residual choice imaged four energies of the edge (seed 0: error
    14.9 % against the truth; the dictionary draw 2.5 %). With the per-energy noise it is 2.7 %."""
    from bluesky import RunEngine

    from curiss.plans import subsampled_scan
    from sim_devices import PhantomSample, make_stxm
    from sim_devices._demo import _initial_ratio

    sample = PhantomSample(40, (48, 48), 3, seed=seed)
    stxm = make_stxm(sample, seed=seed + 1)
    p0 = _initial_ratio(40, 48)  # as the demo
    p = curiss.ACURISSPlanner(sample.energies, (48, 48), dictionary=sample.spectra, seed=seed,
                              initial_ratio=p0, sampling_ratio=0.3)
    RunEngine({})(subsampled_scan(p, stxm.detector, stxm.mono, stxm.stage,
                                  y_positions=stxm.y_positions, analysis=False))
    assert p.energy_refinement == "residual" and p.stop_reason.startswith("prediction error")
    err = np.linalg.norm(p.completed() - sample.cube) / np.linalg.norm(sample.cube)
    assert err < 0.05, (err, p.imaged_energies)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_stop_at_the_cap_names_what_the_prediction_rule_still_lacked(seed):
    """The cap ends a run the rule would continue: its stop reason says so, with the rule's last
    prediction error (the number in the stop record), and a capped variation-rule run is unchanged.
    (The rule cannot pass in 100 consecutive refinements under a cap of 0.3. It once relied on
    tol_prediction=0 being unreachable with noise; a seed audit found 3 of 60 seeds where the
    prediction MSE fell below the noise estimate, which the rule reads as error 0, and passed.)"""
    e, cube, spectra = small_stack(2, noise=0.05)
    kw = dict(sampling_ratio=0.3, initial_ratio=0.1, dictionary=spectra, seed=seed)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], tol_prediction=0.0, n_consecutive=100, **kw)
    acq = curiss.replay(p, cube)
    last = acq.history[-1]
    assert last["kind"] == "stop" and last["prediction_error"] >= 0
    # (with n_consecutive > 1 the reason lists the errors of the window, the last one last)
    assert p.stop_reason.startswith(
        "sampling_ratio budget 0.3 reached before the stop rule passed (prediction error ")
    assert p.stop_reason.endswith(
        f" {last['prediction_error']:.3g}, needs <= tol_prediction 0 in 100 consecutive refinement(s))")
    q = curiss.ACURISSPlanner(e, cube.shape[1:], stop_rule="variation", tol_completion=0.0,
                              tol_spectral=0.0, **kw)
    curiss.replay(q, cube)
    assert q.stop_reason == "sampling_ratio budget 0.3 reached"


# ------------------------------------------------------------------ refinement row scans
def test_row_refinement_keyword_and_the_defaults_it_sets():
    e, cube = two_group_stack()
    kw = dict(sampling_ratio=0.5, initial_ratio=0.2, seed=0)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], **kw)
    assert p.row_refinement == "pivoted" and p.tol_prediction == 0.35
    v = curiss.ACURISSPlanner(e, cube.shape[1:], stop_rule="variation", **kw)
    assert v.row_refinement == "arp" and v.tol_prediction == 0.30
    a = curiss.ACURISSPlanner(e, cube.shape[1:], row_refinement="arp", **kw)
    assert a.row_refinement == "arp" and a.tol_prediction == 0.30
    t = curiss.ACURISSPlanner(e, cube.shape[1:], tol_prediction=0.2, **kw)
    assert t.row_refinement == "pivoted" and t.tol_prediction == 0.2
    # images only: no row scans, the rule's threshold stays where it was measured
    assert curiss.ACURISSPlanner(e, cube.shape[1:], mode="energies", **kw).tol_prediction == 0.30
    for bad in ("greedy", 1, ["pivoted"]):
        with pytest.raises(ValueError, match=r"row_refinement must be one of \('pivoted', 'arp'\); got "):
            curiss.ACURISSPlanner(e, cube.shape[1:], row_refinement=bad, **kw)


def _first_row_scan(planner, cube):
    """Feed ``planner`` from ``cube`` until it asks for a row scan: that request."""
    while (req := planner.suggest()) is not None:
        if req.kind == "row_scan":
            return req
        for ee, r in req.pairs:
            planner.ingest(ee, r, cube[ee, r])
    raise AssertionError("no row scan before the stop")


def _residual_row_norms(cube, imaged, chosen):
    """Squared residual norms of the rows of the images' row basis, ``chosen`` projected out,
    shape (n_y,) (independent of the planner: SVD and Gram-Schmidt here)."""
    F = np.concatenate(list(cube[imaged]), axis=1)  # (n_y, images * n_x)
    V = np.linalg.svd(F, full_matrices=False)[0][:, :len(chosen) + 1]
    Q = np.linalg.qr(V[chosen].T)[0]
    return np.einsum("ij,ij->i", V - V @ Q @ Q.T, V - V @ Q @ Q.T)


def _least_explained_row(cube, imaged, chosen, exclude=()):
    """The row of largest residual norm in the images' row basis, ``chosen`` projected out."""
    norms = _residual_row_norms(cube, imaged, chosen)
    norms[list(chosen) + list(exclude)] = -1.0
    return int(np.argmax(norms))


@pytest.mark.parametrize("seed", range(4))
def test_a_pivoted_row_scan_measures_the_row_the_images_explain_least(seed):
    e, cube = two_group_stack(seed=seed)
    n_y = cube.shape[1]
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.15, seed=seed)
    req = _first_row_scan(p, cube)
    chosen = np.flatnonzero(p.row_mask.all(axis=0))
    (new,) = np.unique(req.pairs[:, 1])
    assert new not in chosen and new not in (0, n_y - 1)
    assert new == _least_explained_row(cube, p.imaged_energies, chosen, exclude=(0, n_y - 1))
    # the recorded weights are the scores it maximised: the residual norms, edges left out
    scores = _residual_row_norms(cube, p.imaged_energies, chosen)
    scores[chosen] = scores[[0, n_y - 1]] = 0.0
    np.testing.assert_allclose(req.row_weights, scores / scores.sum(), atol=1e-10)
    assert req.row_weights[new] == req.row_weights.max()
    # every energy not imaged gets the new row, as with ARP
    assert sorted(np.unique(req.pairs[:, 0])) == sorted(set(range(e.size)) - set(p.imaged_energies))


@pytest.mark.parametrize("seed", range(4))
def test_a_pivoted_row_scan_leaves_a_bad_first_raster_line_alone(seed):
    """A first raster line unlike every other (a scan artifact: its own spectrum on top of the
    sample) is the row the images explain least; the greedy choice would measure it, the
    planner does not. ARP may still draw it, with its probability."""
    e, cube = two_group_stack(seed=seed)
    cube = cube.copy()
    cube[:, 0, :] += 2.0 * np.linspace(1, -1, e.size)[:, None]
    n_y = cube.shape[1]
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.15, seed=seed)
    req = _first_row_scan(p, cube)
    chosen = np.flatnonzero(p.row_mask.all(axis=0))
    (new,) = np.unique(req.pairs[:, 1])
    assert new != 0
    assert new == _least_explained_row(cube, p.imaged_energies, chosen, exclude=(0, n_y - 1))
    if 0 not in chosen:  # (unless the initial ARP draw took it) the greedy choice would have
        assert _least_explained_row(cube, p.imaged_energies, chosen) == 0


@pytest.mark.parametrize("seed", range(3))
def test_an_arp_row_scan_records_the_distribution_of_its_draw(seed):
    """With ``row_refinement="arp"`` the recorded weights are ARP's distribution for the one
    new row given the rows chosen before; many draws from the same basis follow it."""
    e, cube = two_group_stack(seed=seed)
    p = curiss.ACURISSPlanner(e, cube.shape[1:], sampling_ratio=0.5, initial_ratio=0.15, seed=seed,
                              row_refinement="arp")
    req = _first_row_scan(p, cube)
    chosen = np.flatnonzero(p.row_mask.all(axis=0))
    (new,) = np.unique(req.pairs[:, 1])
    w = req.row_weights
    scores = _residual_row_norms(cube, p.imaged_energies, chosen)
    scores[chosen] = 0.0
    np.testing.assert_allclose(w, scores / scores.sum(), atol=1e-10)
    assert w[new] > 0 and np.all(w[chosen] == 0)
    # the kernel's own draws, conditioned on the same rows, follow the recorded distribution
    F = np.concatenate(list(cube[p.imaged_energies]), axis=1)
    V = np.linalg.svd(F, full_matrices=False)[0][:, :chosen.size + 1]
    rng = np.random.default_rng(seed)
    n = 4000
    counts = np.bincount([curiss.linalg.arp(V, chosen.size + 1, preselected=chosen, rng=rng)[-1]
                          for _ in range(n)], minlength=w.size)
    # 5 standard deviations of a binomial count, per row
    assert np.all(np.abs(counts - n * w) <= 5 * np.sqrt(n * w * (1 - w)) + 1), (counts, n * w)


@pytest.mark.parametrize("name", ["tol_completion", "tol_spectral"])
def test_a_variation_tolerance_with_the_prediction_rule_is_refused(name):
    """It would be ignored (the prediction rule stops on tol_prediction): a user who sets it
    expects an effect. The default value stays accepted (start documents record it)."""
    e = np.linspace(700.0, 730.0, 20)
    with pytest.raises(ValueError, match=f"{name}=0.5 has no effect with stop_rule='prediction'"):
        curiss.ACURISSPlanner(e, (8, 6), sampling_ratio=0.5, initial_ratio=0.3, **{name: 0.5})
    curiss.ACURISSPlanner(e, (8, 6), sampling_ratio=0.5, initial_ratio=0.3, **{name: 0.01})
    p = curiss.ACURISSPlanner(e, (8, 6), sampling_ratio=0.5, initial_ratio=0.3, stop_rule="variation",
                       **{name: 0.5})
    assert getattr(p, name) == 0.5


# ------------------------------------------------------------------ row coverage
def rare_material_stack(noise=0.005):
    """30 energies, 16 x 16: material A everywhere, B in a block of rows 2-11, and a rare C (8
    pixels of rows 13-14, weaker) that the images show but that two rows often miss. Returns
    (energies, noisy cube, spectra (30, 3), noise-free cube)."""
    E = np.linspace(700, 730, 30)
    S = np.stack([0.2 + 0.8 / (1 + np.exp(-(E - 708) / 0.8)),
                  0.1 + 1.2 * np.exp(-((E - 711) / 1.5) ** 2) + 0.5 / (1 + np.exp(-(E - 709) / 0.8)),
                  0.3 + 1.5 * np.exp(-((E - 722) / 1.2) ** 2) + 0.3 * (E - 700) / 30], axis=1)
    T = np.zeros((3, 16, 16))
    T[0] = 1.0
    T[1, 2:12, 1:9], T[0, 2:12, 1:9] = 1.0, 0.2
    T[2, 13:15, 10:14], T[0, 13:15, 10:14] = 0.5, 0.5
    truth = np.einsum("em,myx->eyx", S, T)
    rng = np.random.default_rng(12345)  # the data's noise; the planner seeds vary below
    return E, truth + noise * rng.standard_normal(truth.shape), S, truth


def _rare_run(seed, **kw):
    E, cube, S, truth = rare_material_stack()
    args = dict(dictionary=S, seed=seed, initial_ratio=0.1, sampling_ratio=0.4)
    p = curiss.ACURISSPlanner(E, cube.shape[1:], **{**args, **kw})
    acq = curiss.replay(p, cube)
    err = np.linalg.norm(acq.completed - truth) / np.linalg.norm(truth)
    own = not p.stop_reason.startswith("sampling_ratio budget")
    misses = not np.isin([13, 14], p._chosen_rows()).any()
    return p, acq, err, own, misses


def test_coverage_gap_sees_a_component_the_rows_miss():
    """Images whose rows are all alike but one: the rows without that one miss its material."""
    from curiss.planners._strategies import COVERAGE_GAP_MAX, _coverage_gap

    n_y, n_x = 8, 10
    spectra = np.array([[1.0, 0.2], [0.5, 1.0], [0.8, 0.9], [0.3, 0.4]])  # 4 images, 2 materials
    maps = np.zeros((2, n_y, n_x))
    maps[0] = 1.0
    maps[1, 5, 2:6] = 1.0  # material 2: 4 pixels of row 5
    images = np.einsum("em,myx->eyx", spectra, maps).reshape(4, -1)
    pixels = lambda rows: row_pixels(rows, n_x)  # noqa: E731
    noise = 1e-4
    fair = _coverage_gap(images, pixels(range(n_y)), noise)  # every row: the field itself
    assert fair <= 1.0 + 1e-9
    missed = _coverage_gap(images, pixels([0, 3]), noise)  # the rows miss material 2
    # the rows hold no part of material 2's spectrum across from material 1's: λ is its mean
    # square over the field (4 of 80 pixels) over ε alone; a pair of rows that holds it is back below
    s1, s2 = spectra.T
    across = s2 - (s2 @ s1) / (s1 @ s1) * s1
    np.testing.assert_allclose(missed, 4 / 80 * (across @ across) / noise, rtol=0.05)
    assert missed > 10 * COVERAGE_GAP_MAX
    assert _coverage_gap(images, pixels([0, 5]), noise) < COVERAGE_GAP_MAX
    assert _coverage_gap(images, pixels([0, 3]), 0.0) > missed  # noise-free: a floor, not 1/0


@pytest.mark.parametrize("seed", range(0, 30, 3))
def test_the_prediction_rule_does_not_stop_while_the_rows_miss_a_material(seed):
    """Two rows that both miss the rare material predict each other well, and the prediction
    rule used to stop there (28 of planner seeds 0-99, completion error up to 0.078 against at
    most 0.0056 for the others). With row coverage (the default) the images' component that the
    rows miss holds the stop back and a row scan comes next: 0 of those 100 seeds stop missing it."""
    p, acq, err, own, misses = _rare_run(seed)
    assert own and not misses, (p._chosen_rows(), p.stop_reason)
    assert "row coverage gap" in p.stop_reason and p.coverage_gap_ <= 10
    assert err < 0.01
    gaps = [h["coverage_gap"] for h in acq.history[3:]]  # recorded with every refinement
    assert gaps and all(np.isfinite(g) and g >= 0 for g in gaps)


def test_without_row_coverage_the_rule_stops_with_a_material_missed():
    """The contrast (the rule of earlier versions, ``row_coverage=False``): over planner seeds
    0-29 some runs stop by the prediction rule with rows that miss the rare material (28 of 100
    seeds measured), and their completion is worse than any run with row coverage. With row
    coverage the same run goes on from there with one row scan, at a row of the rare material
    (the row where what the rows miss is strongest; so in all 28), and completes to the noise.
    Capped where it stopped, it stops there too but says what it still lacked."""
    missed = []
    for seed in range(30):
        p, acq, err, own, misses = _rare_run(seed, row_coverage=False)
        assert "row coverage" not in p.stop_reason and "coverage_gap" not in acq.history[-1]
        if own and misses:
            missed.append((seed, acq, err))
    assert missed
    for seed, acq, err in missed[:3]:
        assert err > 0.01
        p, acq1, err1, own1, misses1 = _rare_run(seed)  # row coverage, room for a row scan
        assert np.all(acq1.mask >= acq.mask)  # the same acquisition, continued
        extra = np.setdiff1d(p._chosen_rows(), np.flatnonzero(acq.mask.all(axis=(0, 2))))
        assert extra.size == 1 and extra[0] in (13, 14), p._chosen_rows()
        assert own1 and err1 < 0.01
        capped, acq2, err2, own2, misses2 = _rare_run(seed, sampling_ratio=acq.sampling_ratio)
        assert not own2 and misses2 and np.array_equal(acq2.mask, acq.mask)
        assert "before the stop rule passed (" in capped.stop_reason
        assert "row coverage gap" in capped.stop_reason and "> 10" in capped.stop_reason


class _CountHolds(curiss.ACURISSPlanner):
    holds = 0

    def _prediction_stop(self):
        reason = super()._prediction_stop()
        self.holds += bool(self._coverage_blocked)
        return reason


def test_a_held_stop_measures_the_row_where_the_rows_miss_most():
    """The stack of ``curiss demo --energies 24 --size 16`` (make_phantom, Poisson noise at 1e4
    photons), cap 0.4. The row scan a held stop asks for is the row where the images'
    combination that the rows miss most is strongest. On seeds 1000-1119 the 10 runs held were
    each held once and ended at errors 0.023-0.032; the pivoted row of scheduled row scans (the
    row the images' row basis explains least) needed two scans for seeds 1034 and 1065. Here,
    for any seeds: some run is held; every held run ends with its rows covering what the images
    show (gap <= 10), or at the cap saying why; those that stop on their own are accurate."""
    from curiss.datasets import make_phantom
    from sim_devices._demo import _initial_ratio

    held = []
    for seed in range(1000, 1120):
        ph = make_phantom(24, (16, 16), 3, seed=seed)
        counts = np.random.default_rng(seed + 1).poisson(1e4 * np.exp(-ph.truth))
        cube = -np.log(np.maximum(counts, 1) / 1e4)
        p = _CountHolds(ph.energies, ph.shape, dictionary=ph.spectra, seed=seed, sampling_ratio=0.4,
                        initial_ratio=_initial_ratio(24, 16))
        acq = curiss.replay(p, cube)
        if p.holds:
            err = np.linalg.norm(acq.completed - ph.truth) / np.linalg.norm(ph.truth)
            held.append((seed, err, p.coverage_gap_, p.stop_reason))
    assert held
    for seed, err, gap, reason in held:
        if reason.startswith("sampling_ratio budget"):
            assert "before the stop rule passed" in reason, (seed, reason)
        else:
            assert gap <= 10 and "row coverage gap" in reason, (seed, gap, reason)
            assert err < 0.06, (seed, err)


def test_the_row_scan_of_a_held_stop_is_a_row_of_the_missed_material():
    """On the rare-material stack, every run that stopped with its rows missing the rare
    material (``row_coverage=False``) would have been held; the row scan asked for there is a
    row of that material (13 or 14; 28 of 28 over planner seeds 0-99)."""
    found = 0
    for seed in range(30):
        p, acq, err, own, misses = _rare_run(seed, row_coverage=False)
        if own and misses:
            found += 1
            dec = p._decide_coverage_row_scan(p._chosen_rows(), np.array([], dtype=int))
            assert dec.kind == "row_scan" and set(np.unique(dec.pairs[:, 1])) <= {13, 14}
            assert set(dec.pairs[:, 0]) == set(np.setdiff1d(np.arange(30), p.imaged_energies))
    assert found
