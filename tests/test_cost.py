"""Tests of curiss.cost: time and dose of acquisitions."""

from __future__ import annotations

import numpy as np
import pytest

from curiss.cost import Cost, CostModel, acquisition_cost, raster_cost

SEEDS = [0, 1, 7]


@pytest.mark.parametrize(
    "model", [CostModel(), CostModel(t_energy=2.5, t_line=0.1, dwell=2e-3, t_skip=0.01)]
)
@pytest.mark.parametrize("n_e, shape", [(1, (1, 1)), (7, (5, 9)), (30, (12, 4))])
def test_raster_time_formula(model, n_e, shape):
    n_y, n_x = shape
    c = raster_cost(n_e, shape, model=model)
    expected = n_e * model.t_energy + n_e * n_y * (model.t_line + n_x * model.dwell)
    assert c.time == pytest.approx(expected)
    assert c.n_rows == n_e * n_y
    assert c.n_energy_changes == n_e
    assert c.n_skipped == 0
    # incident dose: every pixel gets n_E * dwell * i0
    assert c.dose_map.shape == shape
    np.testing.assert_allclose(c.dose_map, n_e * model.dwell)
    assert c.dose_total == pytest.approx(n_e * n_y * n_x * model.dwell)


def test_energy_changes_counted_in_order():
    c = acquisition_cost([(0, 0), (1, 0), (0, 1)], 10)
    assert c.n_energy_changes == 3
    c2 = acquisition_cost([(0, 0), (0, 1), (1, 0)], 10)
    assert c2.n_energy_changes == 2
    m = CostModel()
    assert c.time - c2.time == pytest.approx(m.t_energy)
    assert c2.time == pytest.approx(2 * m.t_energy + 3 * (m.t_line + 10 * m.dwell))


def test_empty_order():
    c = acquisition_cost(np.zeros((0, 2), int), 5, n_y=3)
    assert c.time == 0.0 and c.n_rows == 0 and c.n_energy_changes == 0
    assert c.dose_map.shape == (3, 5) and c.dose_total == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_subset_cheaper_and_dose_properties(seed):
    rng = np.random.default_rng(seed)
    n_e, n_y, n_x = 12, 10, 8
    od = rng.random((n_e, n_y, n_x)) * 2.0
    full = raster_cost(n_e, (n_y, n_x), od=od, i0=100.0)
    pairs = np.array([(e, y) for e in range(n_e) for y in range(n_y)])
    keep = rng.random(len(pairs)) < 0.3
    keep[0] = True
    sub = acquisition_cost(pairs[keep], n_x, od=od, i0=100.0)
    assert sub.time < full.time
    assert sub.dose_total < full.dose_total
    assert sub.dose_peak <= full.dose_peak
    assert sub.dose_peak >= sub.dose_mean
    assert full.dose_peak >= full.dose_mean
    r = sub.ratio_to(full)
    assert set(r) == {"time", "dose_total", "dose_peak"}
    assert 0 < r["time"] < 1 and 0 < r["dose_total"] < 1
    assert r["time"] == pytest.approx(sub.time / full.time)
    # absorbed dose of the full raster: sum over energies of dwell * i0 * (1 - exp(-od))
    np.testing.assert_allclose(full.dose_map, (1e-3 * 100.0 * (1 - np.exp(-od))).sum(axis=0))
    assert full.dose_mean == pytest.approx(full.dose_map.mean())
    assert full.dose_total == pytest.approx(full.dose_map.sum())


def test_dose_map_per_row_and_per_energy_i0():
    i0 = np.array([1.0, 10.0, 100.0])
    c = acquisition_cost([(2, 1), (0, 1), (1, 3), (1, 1)], 4, i0=i0, n_y=5)
    expected_rows = np.zeros(5)
    expected_rows[1] = 1e-3 * (100 + 1 + 10)
    expected_rows[3] = 1e-3 * 10
    np.testing.assert_allclose(c.dose_map, np.repeat(expected_rows[:, None], 4, axis=1))
    assert c.dose_peak == pytest.approx(1e-3 * 111)
    assert c.dose_mean == pytest.approx(expected_rows.mean())


def test_negative_od_clipped_and_repeat_rows():
    od = np.full((1, 2, 3), -0.5)
    c = acquisition_cost([(0, 0), (0, 0)], 3, od=od)
    assert c.dose_total == 0.0
    assert c.n_rows == 2


def test_skipped_rows():
    model = CostModel(t_skip=0.5)
    # energy 0 visits rows 0 and 3 (rows 1, 2 skipped); energy 1 visits row 2 only
    c = acquisition_cost([(0, 0), (0, 3), (1, 2)], 4, model=model)
    assert c.n_skipped == 2
    base = acquisition_cost([(0, 0), (0, 3), (1, 2)], 4)
    assert c.time - base.time == pytest.approx(2 * 0.5)


@pytest.mark.parametrize("field", ["t_energy", "t_line", "dwell", "t_skip"])
def test_cost_model_validation(field):
    with pytest.raises(ValueError, match=field):
        CostModel(**{field: -1.0})
    with pytest.raises(ValueError, match=field):
        CostModel(**{field: float("nan")})
    with pytest.raises(TypeError, match=field):
        CostModel(**{field: "1"})


def test_acquisition_cost_validation():
    with pytest.raises(ValueError, match="shape"):
        acquisition_cost([1, 2, 3], 4)
    with pytest.raises(ValueError, match="negative"):
        acquisition_cost([(0, -1)], 4)
    with pytest.raises(TypeError, match="integer"):
        acquisition_cost([(0, 0.5)], 4)
    with pytest.raises(ValueError, match="n_x"):
        acquisition_cost([(0, 0)], 0)
    with pytest.raises(ValueError, match="row index"):
        acquisition_cost([(0, 5)], 4, n_y=3)
    with pytest.raises(ValueError, match="energy index"):
        acquisition_cost([(3, 0)], 4, od=np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="pixels per row"):
        acquisition_cost([(0, 0)], 5, od=np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="i0"):
        acquisition_cost([(0, 0)], 4, i0=-1.0)
    with pytest.raises(TypeError, match="CostModel"):
        acquisition_cost([(0, 0)], 4, model={"t_energy": 1})
    with pytest.raises(ValueError, match="od has shape"):
        raster_cost(3, (2, 4), od=np.zeros((2, 2, 4)))


@pytest.mark.parametrize("kw, exc, match", [
    # "100" was read as 100, True as 1, a complex OD lost its imaginary part (numpy's warning
    # only), a bool OD became 0/1; i0 with 5 values for 2 energies was accepted
    (dict(i0="100"), TypeError, "i0 must be real numbers; got '100', dtype <U3"),
    (dict(i0=True), TypeError, "i0 must be real numbers; got True, dtype bool"),
    (dict(i0=[1 + 5j, 1.0]), TypeError, "i0 must be real numbers; got an array of dtype complex128"),
    (dict(od=np.full((2, 3, 4), 0.5 + 3j)), TypeError, "od must be real numbers; got an array of dtype complex"),
    (dict(od=np.ones((2, 3, 4), bool)), TypeError, "od must be real numbers; got an array of dtype bool"),
    (dict(i0=[1.0, 2.0, 3.0, 4.0, 5.0]), ValueError, "i0 has 5 values but there are 2 energies"),
])
def test_raster_cost_refuses_what_numpy_would_convert(kw, exc, match):
    with pytest.raises(exc, match=match):
        raster_cost(2, (3, 4), **kw)
    assert raster_cost(2, (3, 4), i0=np.array([1, 2]), od=np.ones((2, 3, 4), np.int64)).dose_total > 0


def test_ratio_to_zero():
    zero = acquisition_cost(np.zeros((0, 2), int), 3, n_y=1)
    one = acquisition_cost([(0, 0)], 3)
    r = one.ratio_to(zero)
    assert r["time"] == np.inf
    assert np.isnan(zero.ratio_to(zero)["time"])
    assert isinstance(one, Cost) and not one.dose_map.flags.writeable
