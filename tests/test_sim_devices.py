"""Tests of sim_devices: sample models and the simulated STXM under a bluesky RunEngine."""

from __future__ import annotations

import time
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd.utils import LimitError

from curiss.datasets import make_phantom
from sim_devices import (
    LineDetector,
    Monochromator,
    PhantomSample,
    RasterStage,
    ReplaySample,
    SimPositioner,
    make_stxm,
)

SEEDS = [0, 1, 42]


@pytest.fixture(scope="module")
def RE():
    return RunEngine({})


def _run(RE, plan):
    docs = []
    RE(plan, lambda name, doc: docs.append((name, doc)))
    return docs


def _events(docs):
    return [doc for name, doc in docs if name == "event"]


def _od(event):
    line = np.asarray(event["data"]["detector_line"], dtype=float)
    return -np.log(line / event["data"]["detector_i0"])


# --------------------------------------------------------------------- samples
def test_replay_sample_returns_its_cube():
    rng = np.random.default_rng(0)
    energies = np.array([700.0, 701.0, 703.0, 706.0])
    cube = rng.uniform(0.0, 2.0, size=(4, 5, 6))
    keep = cube.copy()
    s = ReplaySample(energies, cube, pixel_size=0.5)
    np.testing.assert_array_equal(s.cube, keep)
    np.testing.assert_array_equal(s.energies, energies)
    assert s.shape == (5, 6)
    np.testing.assert_allclose(s.y_positions, 0.5 * np.arange(5))
    np.testing.assert_allclose(s.x_positions, 0.5 * np.arange(6))
    cube[:] = 0  # the sample holds its own copy
    np.testing.assert_array_equal(s.cube, keep)
    for k in range(4):
        for y in range(5):
            np.testing.assert_array_equal(s.od_at(energies[k], y), keep[k, y])
    np.testing.assert_array_equal(s.dose, np.zeros((5, 6)))


def test_phantom_sample_wraps_make_phantom():
    s = PhantomSample(20, (6, 7), 2, seed=5, energy_range=(705.0, 715.0), pixel_size=2.0)
    ph = make_phantom(20, (6, 7), 2, seed=5, energy_range=(705.0, 715.0))
    np.testing.assert_array_equal(s.cube, ph.truth)
    np.testing.assert_array_equal(s.energies, ph.energies)
    np.testing.assert_array_equal(s.dictionary, ph.spectra)
    np.testing.assert_array_equal(s.labels, ph.labels)
    assert s.shape == (6, 7)
    np.testing.assert_allclose(s.y_positions, 2.0 * np.arange(6))


def test_od_at_interpolates_linearly():
    energies = np.array([700.0, 702.0, 706.0])
    cube = np.random.default_rng(1).uniform(0, 2, size=(3, 2, 4))
    s = ReplaySample(energies, cube)
    np.testing.assert_allclose(s.od_at(701.0, 1), 0.5 * (cube[0, 1] + cube[1, 1]))
    np.testing.assert_allclose(s.od_at(705.0, 0), 0.25 * cube[1, 0] + 0.75 * cube[2, 0])
    np.testing.assert_array_equal(s.od_at(706.0, 0), cube[2, 0])
    for bad in (699.9, 706.1):
        with pytest.raises(ValueError, match="outside"):
            s.od_at(bad, 0)
    with pytest.raises(ValueError, match="row_index"):
        s.od_at(701.0, 2)


def test_row_index_nearest_within_half_pixel():
    s = ReplaySample([700.0, 701.0], np.zeros((2, 4, 3)), pixel_size=2.0, origin=(10.0, -3.0))
    np.testing.assert_allclose(s.y_positions, [10.0, 12.0, 14.0, 16.0])
    np.testing.assert_allclose(s.x_positions, [-3.0, -1.0, 1.0])
    assert s.row_index(12.0) == 1
    assert s.row_index(12.9) == 1
    assert s.row_index(13.1) == 2
    assert s.row_index(9.05) == 0
    for bad in (8.5, 17.5):
        with pytest.raises(ValueError, match="not on the sample"):
            s.row_index(bad)


@pytest.mark.parametrize(
    "energies, cube, match",
    [
        ([700.0, 700.0], np.zeros((2, 2, 2)), "strictly increasing"),
        ([700.0, 701.0], np.zeros((3, 2, 2)), "energies"),
        ([700.0, 701.0], np.zeros((2, 4)), "3-D"),
        ([700.0, 701.0], np.full((2, 2, 2), np.nan), "finite"),
    ],
)
def test_replay_sample_rejects_bad_input(energies, cube, match):
    with pytest.raises(ValueError, match=match):
        ReplaySample(energies, cube)


@pytest.mark.parametrize("energies, cube, name, dtype", [
    ([700.0, 701.0], np.zeros((2, 2, 2)) + 1j, "cube", "complex128"),  # the imaginary part was dropped
    ([700.0, 701.0], np.ones((2, 2, 2), bool), "cube", "bool"),  # True was read as OD 1
    ([700.0, 701.0], np.full((2, 2, 2), "0.5"), "cube", "<U3"),
    ([True, False], np.zeros((2, 2, 2)), "energies", "bool"),
    (np.array([700.0, 701.0]) + 0j, np.zeros((2, 2, 2)), "energies", "complex128"),
])
def test_replay_sample_refuses_what_is_not_real_numbers(energies, cube, name, dtype):
    with pytest.raises(TypeError, match=f"{name} must hold real numbers .*got dtype {dtype}"):
        ReplaySample(energies, cube)
    assert ReplaySample([700, 701], np.zeros((2, 2, 2), np.int32)).cube.dtype == float  # integers are fine


def test_measure_row_expectation_and_dose():
    s = PhantomSample(10, (5, 8), 2, seed=3)
    i0 = 1e4
    counts = s.measure_row(s.energies[4], s.y_positions[2], i0=i0, noise=False)
    np.testing.assert_allclose(-np.log(counts / i0), s.cube[4, 2], rtol=1e-12, atol=1e-12)
    dose = s.dose
    np.testing.assert_allclose(dose[2], i0 * (1 - np.exp(-s.cube[4, 2])))
    assert np.all(np.delete(dose, 2, axis=0) == 0)
    s.measure_row(s.energies[5], s.y_positions[2], i0=i0, noise=False)
    np.testing.assert_allclose(s.dose[2], dose[2] + i0 * (1 - np.exp(-s.cube[5, 2])))
    s.reset_dose()
    assert np.all(s.dose == 0)
    with pytest.raises(ValueError, match="i0"):
        s.measure_row(s.energies[0], 0.0, i0=0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_measure_row_poisson(seed):
    s = PhantomSample(10, (4, 64), 3, seed=seed)
    i0 = 1e4
    od = s.cube[3, 1]
    counts = s.measure_row(s.energies[3], s.y_positions[1], i0=i0, rng=seed)
    assert np.all(counts == np.round(counts))  # integer counts
    again = s.measure_row(s.energies[3], s.y_positions[1], i0=i0, rng=seed)
    np.testing.assert_array_equal(counts, again)  # reproducible from the rng
    err = -np.log(counts / i0) - od
    sigma = 1 / np.sqrt(i0 * np.exp(-od))  # per-pixel OD noise
    assert abs(err.mean()) < 5 * np.sqrt(np.sum(sigma**2)) / od.size
    assert np.std(err / sigma) == pytest.approx(1.0, abs=0.35)


# --------------------------------------------------------------------- devices
def test_make_stxm_names_limits_and_keys():
    s = PhantomSample(12, (6, 5), 2, seed=0, pixel_size=0.5)
    stxm = make_stxm(s, noise=False)
    assert (stxm.mono.name, stxm.stage.name, stxm.detector.name) == ("mono", "stage", "detector")
    assert stxm.sample is s and stxm.shape == (6, 5)
    np.testing.assert_array_equal(stxm.energies, s.energies)
    np.testing.assert_array_equal(stxm.y_positions, s.y_positions)
    assert stxm.mono.limits == (s.energies[0] - 1, s.energies[-1] + 1)
    assert stxm.stage.y.limits == (-0.5, 3.0)
    assert stxm.stage.x.limits == (-0.5, 2.5)
    assert stxm.mono.position == s.energies[0]
    assert stxm.stage.y.position == 0.0
    assert "mono_energy" in stxm.mono.read()
    assert {"stage_x", "stage_y"} <= set(stxm.stage.read())
    desc = stxm.detector.describe()
    assert {"detector_line", "detector_i0", "detector_dwell"} <= set(desc)
    assert desc["detector_line"]["dtype"] == "array"
    assert desc["detector_line"]["shape"] == [5]
    assert stxm.detector.i0.get() == 1e4 and stxm.detector.dwell.get() == 1e-3
    assert stxm.detector.fault is None
    with pytest.raises(TypeError, match="SampleBase"):
        make_stxm(s.cube)


def test_mono_limits_enforced():
    s = PhantomSample(12, (4, 4), 2, seed=0)
    mono = make_stxm(s).mono
    lo, hi = mono.limits
    for bad in (lo - 0.01, hi + 5.0):
        with pytest.raises(LimitError):
            mono.set(bad)
        assert mono.position == s.energies[0]  # did not move
        assert mono.setpoint.get() == s.energies[0]
    with pytest.raises(ValueError):  # LimitError is a ValueError
        mono.set(hi + 1)
    st = mono.set(hi)
    assert st.done and st.success and mono.position == hi


def test_stage_limits_enforced():
    stxm = make_stxm(PhantomSample(12, (4, 4), 2, seed=0))
    with pytest.raises(LimitError):
        stxm.stage.y.set(4.5)
    with pytest.raises(LimitError):
        stxm.stage.x.set(-1.5)
    assert stxm.stage.y.set(3.0).done and stxm.stage.y.position == 3.0


def test_move_time_status_finishes_later():
    stxm = make_stxm(PhantomSample(12, (4, 4), 2, seed=0), move_time=0.2)
    target = float(stxm.energies[5])
    t0 = time.monotonic()
    st = stxm.mono.set(target)
    assert time.monotonic() - t0 < 0.1  # set() does not block
    assert not st.done
    assert stxm.mono.moving
    assert stxm.mono.setpoint.get() == target
    assert stxm.mono.position == stxm.energies[0]  # readback not there yet
    st.wait(timeout=5)
    assert st.done and st.success
    assert time.monotonic() - t0 >= 0.19
    assert stxm.mono.position == target and not stxm.mono.moving


def test_superseded_and_stopped_moves():
    stxm = make_stxm(PhantomSample(12, (4, 4), 2, seed=0), move_time=0.2)
    first = stxm.mono.set(float(stxm.energies[3]))
    second = stxm.mono.set(float(stxm.energies[7]))
    second.wait(timeout=5)
    assert first.done and not first.success
    time.sleep(0.25)  # the first move's timer must not fire afterwards
    assert stxm.mono.position == stxm.energies[7]
    third = stxm.stage.y.set(2.0)
    stxm.stage.y.stop()
    assert third.done and not third.success
    time.sleep(0.25)
    assert stxm.stage.y.position == 0.0


@pytest.mark.parametrize("attempt", range(3))
def test_a_move_with_a_timeout_superseded_does_not_stop_the_next(attempt):
    """ophyd fails a superseded move's status; with a timeout, its failure handler called
    stop() on another thread after the new move had started, which cancelled the new move
    (20 of 20 tries failed in review)."""
    stxm = make_stxm(PhantomSample(12, (4, 4), 2, seed=0), move_time=0.1)
    first = stxm.mono.set(float(stxm.energies[3]), timeout=5)
    second = stxm.mono.set(float(stxm.energies[7]), timeout=5)
    second.wait(timeout=5)
    assert second.success and first.done and not first.success
    time.sleep(0.15)  # neither the first timer nor a late stop() acts afterwards
    assert stxm.mono.position == stxm.mono.setpoint.get() == stxm.energies[7]


def test_dose_is_never_negative_where_the_od_is():
    """A pre-edge-subtracted OD is negative in places: the counts exceed I0 there, but the
    absorbed dose is 0, not negative (as the cost model clips OD at 0)."""
    od = np.array([[[-0.3, 0.0, 0.5]]])
    s = ReplaySample([700.0], od)
    counts = s.measure_row(700.0, float(s.y_positions[0]), i0=1e4, noise=False)
    np.testing.assert_allclose(counts, 1e4 * np.exp(-od[0, 0]))
    np.testing.assert_allclose(s.dose[0], [0.0, 0.0, 1e4 * (1 - np.exp(-0.5))])


def test_trigger_measures_current_row_and_rejects_off_sample():
    s = PhantomSample(12, (4, 6), 2, seed=0)
    stxm = make_stxm(s, noise=False)
    stxm.mono.set(float(s.energies[2]))
    stxm.stage.y.set(float(s.y_positions[3]))
    st = stxm.detector.trigger()
    assert st.done and st.success
    np.testing.assert_allclose(-np.log(stxm.detector.line.get() / 1e4), s.cube[2, 3], atol=1e-12)
    stxm.mono.set(float(s.energies[-1]) + 0.5)  # within the mono limits, off the sample grid
    with pytest.raises(ValueError, match="outside"):
        stxm.detector.trigger()


@pytest.mark.parametrize("set_after_fault", [None, 5e4])
def test_the_beam_comes_back_after_an_i0_zero_fault_with_the_latest_setting(set_after_fault):
    """The trigger after an "i0_zero" fault put back the flux from before the fault, also when
    i0 had been set in between (the setting was lost)."""
    s = PhantomSample(12, (4, 6), 2, seed=0)
    stxm = make_stxm(s, noise=False)
    stxm.mono.set(float(s.energies[2]))
    stxm.stage.y.set(float(s.y_positions[1]))
    stxm.detector.inject_fault("i0_zero")
    stxm.detector.trigger()
    assert stxm.detector.i0.get() == 0.0 and not stxm.detector.line.get().any()
    if set_after_fault is not None:
        stxm.detector.i0.put(set_after_fault)
    stxm.detector.trigger()
    i0 = 1e4 if set_after_fault is None else set_after_fault
    assert stxm.detector.i0.get() == i0
    np.testing.assert_allclose(-np.log(stxm.detector.line.get() / i0), s.cube[2, 1], atol=1e-12)


def test_list_scan_noise_off_gives_truth(RE):
    s = PhantomSample(15, (6, 9), 3, seed=2)
    stxm = make_stxm(s, noise=False)
    docs = _run(RE, bp.list_scan([stxm.detector], stxm.mono, list(s.energies[:3])))
    events = _events(docs)
    assert len(events) == 3
    for k, ev in enumerate(events):
        assert {"detector_line", "detector_i0", "detector_dwell", "mono_energy"} <= set(ev["data"])
        assert ev["data"]["mono_energy"] == s.energies[k]
        assert np.asarray(ev["data"]["detector_line"]).shape == (9,)
        np.testing.assert_allclose(_od(ev), s.cube[k, 0], rtol=1e-12, atol=1e-12)
    descriptor = next(doc for name, doc in docs if name == "descriptor")
    assert descriptor["data_keys"]["detector_line"]["dtype"] == "array"
    assert descriptor["data_keys"]["detector_line"]["shape"] == [9]


def _rows_plan(stxm, pairs):
    """Measure (energy index, row index) pairs, one event each."""
    yield from bps.open_run()
    for k, y in pairs:
        yield from bps.mv(stxm.stage.y, stxm.y_positions[y], stxm.mono, stxm.energies[k])
        yield from bps.trigger_and_read([stxm.detector, stxm.mono, stxm.stage.y])
    yield from bps.close_run()


@pytest.mark.parametrize("move_time", [0.0, 0.01])
def test_row_plan_noise_off_and_dose(RE, move_time):
    s = PhantomSample(15, (7, 8), 3, seed=4)
    stxm = make_stxm(s, noise=False, move_time=move_time)
    pairs = [(1, 2), (6, 5), (3, 2)]
    doses = []
    for pair in pairs:
        events = _events(_run(RE, _rows_plan(stxm, [pair])))
        assert len(events) == 1
        ev = events[0]
        assert {"detector_line", "detector_i0", "detector_dwell", "mono_energy",
                "stage_y"} <= set(ev["data"])
        k, y = pair
        assert ev["data"]["stage_y"] == s.y_positions[y]
        np.testing.assert_allclose(_od(ev), s.cube[k, y], rtol=1e-12, atol=1e-12)
        doses.append(s.dose)
    # dose grows with each measured row, and only at measured rows
    expected = np.zeros(s.shape)
    for (k, y), dose in zip(pairs, doses):
        expected[y] += 1e4 * (1 - np.exp(-s.cube[k, y]))
        np.testing.assert_allclose(dose, expected)
    assert np.all(doses[-1][[0, 1, 3, 4, 6]] == 0)
    assert np.all(doses[1][2] == doses[0][2])
    assert np.all(doses[2][2] >= doses[1][2]) and doses[2][2].sum() > doses[1][2].sum()
    assert doses[0].sum() < doses[1].sum() < doses[2].sum()


@pytest.mark.parametrize("seed", SEEDS)
def test_row_plan_noise_on_is_close_to_truth(RE, seed):
    s = PhantomSample(15, (6, 48), 3, seed=seed)
    stxm = make_stxm(s, seed=seed)
    pairs = [(0, 1), (7, 3), (14, 5)]
    events = _events(_run(RE, _rows_plan(stxm, pairs)))
    assert len(events) == 3
    for (k, y), ev in zip(pairs, events):
        od = s.cube[k, y]
        err = _od(ev) - od
        assert np.any(err != 0)  # noise is on
        sigma = 1 / np.sqrt(1e4 * np.exp(-od))
        assert abs(err.mean()) < 5 * np.sqrt(np.sum(sigma**2)) / od.size
        assert np.max(np.abs(err)) < 6 * sigma.max()


def test_detector_noise_reproducible_from_seed(RE):
    lines = []
    for _ in range(2):
        stxm = make_stxm(PhantomSample(10, (4, 16), 2, seed=0), seed=123)
        events = _events(_run(RE, _rows_plan(stxm, [(2, 1), (5, 3)])))
        lines.append([np.asarray(ev["data"]["detector_line"]) for ev in events])
    for a, b in zip(*lines):
        np.testing.assert_array_equal(a, b)


def test_off_grid_energy_interpolates(RE):
    s = PhantomSample(10, (4, 6), 2, seed=1)
    stxm = make_stxm(s, noise=False)
    mid = 0.5 * (s.energies[3] + s.energies[4])

    def plan():
        yield from bps.open_run()
        yield from bps.mv(stxm.mono, mid, stxm.stage.y, s.y_positions[2])
        yield from bps.trigger_and_read([stxm.detector, stxm.mono])
        yield from bps.close_run()

    (ev,) = _events(_run(RE, plan()))
    np.testing.assert_allclose(_od(ev), 0.5 * (s.cube[3, 2] + s.cube[4, 2]), rtol=1e-10)


DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_replay_recorded_als_stack(RE):
    path = DATA / "als_stxm_fe_L23_breier2012" / "71214078_stack.npz"
    if not path.exists():
        pytest.skip(f"shared data not available ({path})")
    with np.load(path) as z:
        energies, x_um, y_um = z["energies_eV"], z["x_um"], z["y_um"]
        od = -np.log(z["transmitted"].astype(float) / z["i0"][:, None, None])
    step = float(np.median(np.diff(x_um)))
    s = ReplaySample(energies, od, pixel_size=step, origin=(y_um[0], x_um[0]))
    np.testing.assert_allclose(s.y_positions, y_um, atol=step / 4)
    stxm = make_stxm(s, noise=False)
    pairs = [(60, 100), (5, 0)]
    events = _events(_run(RE, _rows_plan(stxm, pairs)))
    for (k, y), ev in zip(pairs, events):
        np.testing.assert_allclose(_od(ev), od[k, y], rtol=1e-10, atol=1e-10)


# ------------------------------------------------------- bad input: refused, not reinterpreted
@pytest.mark.parametrize("bad, error, match", [
    (-1, ValueError, ">= 0"),
    (2.5, TypeError, "integer"),
    ("3", TypeError, "integer"),
    ("x", TypeError, "integer"),
    (True, TypeError, "integer"),
    (None, TypeError, "integer"),
])
def test_fault_injection_counts_are_non_negative_integers(bad, error, match):
    """``fail_next_moves`` and ``inject_fault`` counts: -1 used to make the move counter negative
    (a later ``fail_next_moves(1)`` then injected nothing), 2.5/2.7 were truncated, "3" and True
    were read as 3 and 1, 'x' failed with int()'s message, ``inject_fault('nan', -2)`` did
    nothing. Refused now, naming ``count``, and nothing is queued."""
    s = PhantomSample(10, (4, 5), 2, seed=1)
    stxm = make_stxm(s, noise=False, seed=0)
    with pytest.raises(error, match=f"count.*{match}"):
        stxm.mono.fail_next_moves(bad)
    with pytest.raises(error, match=f"count.*{match}"):
        stxm.detector.inject_fault("nan", bad)
    assert stxm.detector.pending_faults == []
    # a refused count leaves the counter alone: the next injection still works
    stxm.mono.fail_next_moves(1)
    st = stxm.mono.set(float(s.energies[3]))
    assert st.done and not st.success and stxm.mono.position == s.energies[0]
    st = stxm.mono.set(float(s.energies[3]))
    assert st.done and st.success
    # numpy integers and 0 are counts
    stxm.mono.fail_next_moves(np.int64(0))
    assert stxm.mono.set(float(s.energies[4])).success
    stxm.detector.inject_fault("zeros", np.int32(2))
    stxm.detector.inject_fault("nan", 0)
    assert stxm.detector.pending_faults == ["zeros", "zeros"]


def _refusals_of_a_seed(s, stxm):
    return {
        "PhantomSample": ("seed", lambda seed: PhantomSample(5, (4, 4), 1, seed=seed)),
        "make_stxm": ("seed", lambda seed: make_stxm(s, seed=seed)),
        "reseed": ("seed", lambda seed: stxm.detector.reseed(seed)),
        "measure_row": ("rng", lambda seed: s.measure_row(s.energies[0], 0.0, i0=10.0, rng=seed)),
        "measure_row noise off": ("rng", lambda seed: s.measure_row(s.energies[0], 0.0, i0=10.0,
                                                                     rng=seed, noise=False)),
    }


@pytest.mark.parametrize("bad, error, match", [
    (True, TypeError, r"got True \(bool\)"),
    (np.True_, TypeError, r"got (np\.)?True_? \((numpy\.)?bool_?\)"),
    (-1, ValueError, "non-negative int, got -1"),
    (np.int64(-3), ValueError, "non-negative int, got -3"),
])
@pytest.mark.parametrize("where", ["PhantomSample", "make_stxm", "reseed", "measure_row",
                                   "measure_row noise off"])
def test_seeds_refuse_bools_and_negatives_naming_the_argument(where, bad, error, match):
    """A seed of True was drawn as seed 1; -1 failed with numpy's "expected non-negative integer",
    which does not say which argument. Refused before anything is drawn or measured."""
    s = ReplaySample([700.0, 701.0], np.full((2, 3, 4), 0.5))
    stxm = make_stxm(s, noise=False, seed=0)
    name, call = _refusals_of_a_seed(s, stxm)[where]
    with pytest.raises(error, match=f"^{name} must be .*{match}"):
        call(bad)
    assert np.all(s.dose == 0)
    for good in (None, 0, np.int64(7), np.random.default_rng(1)):
        call(good)


def test_measure_row_and_the_noise_signal_refuse_strings_and_non_bools():
    """``noise="False"`` drew Poisson noise (a non-empty string is true); ``energy="700"`` and
    ``y_position="0"`` were converted with float(); ``detector.noise.put("False")`` switched
    nothing off either."""
    s = ReplaySample([700.0, 701.0], np.full((2, 3, 4), 0.5))
    for bad in ("False", 0, 1, None):
        with pytest.raises(TypeError, match=f"noise must be True or False, got {bad!r}"):
            s.measure_row(700.0, 0.0, i0=100.0, noise=bad)
    for kw, bad in (("energy", "700"), ("energy", True), ("energy", None),
                    ("y_position", "0"), ("y_position", False), ("y_position", np.array(0.0))):
        args = {"energy": 700.0, "y_position": 0.0}
        args[kw] = bad
        with pytest.raises(TypeError, match=f"^{kw} must be a real number"):
            s.measure_row(args["energy"], args["y_position"], i0=100.0, noise=False)
    with pytest.raises(TypeError, match="^y_position must be a real number"):
        s.row_index("1")
    with pytest.raises(TypeError, match="^energy must be a real number"):
        s.od_at("700", 0)
    assert np.all(s.dose == 0)
    # numpy scalars are numbers
    expected = 100.0 * np.exp(-0.5) * np.ones(4)
    np.testing.assert_allclose(s.measure_row(np.float32(700.0), np.int64(0), i0=100.0,
                                             noise=np.False_), expected)
    # at run time: the noise signal refuses a put that is not a bool
    stxm = make_stxm(s, noise=True, seed=0)
    for bad in ("False", 0, None):
        with pytest.raises(TypeError, match=f"detector_noise must be True or False, got {bad!r}"):
            stxm.detector.noise.put(bad)
    assert stxm.detector.noise.get() is True
    stxm.detector.noise.put(False)
    stxm.detector.trigger()
    np.testing.assert_allclose(stxm.detector.line.get(), 100 * expected)  # i0 1e4: no noise


@pytest.mark.parametrize("bad, error, match", [
    (True, TypeError, r"i0 must be a positive float, got True \(bool\)"),
    ("1e4", TypeError, r"i0 must be a positive float, got '1e4' \(str\)"),
    (None, TypeError, r"i0 must be a positive float, got None"),
    (0.0, ValueError, r"i0 must be a finite float > 0, got 0\.0"),
    (np.nan, ValueError, r"i0 must be a finite float > 0, got nan"),
    (1e20, ValueError, r"i0 must be at most 1e\+18 photons per pixel \(numpy's Poisson sampling "
                       r"handles expected counts up to about 9\.2e\+18\), got 1e\+20"),
])
def test_detector_i0_is_refused_at_construction_if_it_cannot_be_measured(bad, error, match):
    """i0=True was taken as 1.0 and "1e4" as 1e4; i0=1e20 was accepted and every trigger then
    failed with numpy's "lam value too large". Refused when the detector is built (and when the
    signal is set at run time), before any device exists or anything is measured."""
    s = PhantomSample(5, (4, 4), 1, seed=0)
    with pytest.raises(error, match=match):
        make_stxm(s, i0=bad)
    stxm = make_stxm(s, seed=0)
    with pytest.raises(error, match=match):
        LineDetector(name="d2", sample=s, mono=stxm.mono, stage=stxm.stage, i0=bad)
    with pytest.raises(error, match=match.replace("i0", "detector_i0", 1)):
        stxm.detector.i0.put(bad)
    assert stxm.detector.i0.get() == 1e4
    assert np.all(s.dose == 0)


def test_the_largest_i0_is_measured_and_measure_row_names_poisson_limits():
    s = PhantomSample(5, (4, 4), 1, seed=0)
    stxm = make_stxm(s, i0=1e18, seed=0)  # the largest accepted: still sampled
    stxm.detector.trigger()
    assert np.all(np.isfinite(stxm.detector.line.get()))
    # measure_row directly: an expectation numpy cannot sample is refused before the dose counts
    s.reset_dose()
    with pytest.raises(ValueError, match=r"expected counts up to 1e\+20 .*Poisson.*9\.2e\+18"):
        s.measure_row(s.energies[0], 0.0, i0=1e20 / np.exp(-s.cube[0, 0].min()), noise=True)
    assert np.all(s.dose == 0)
    assert np.all(np.isfinite(s.measure_row(s.energies[0], 0.0, i0=1e20, noise=False)))


@pytest.mark.parametrize("bad, error", [(np.nan, ValueError), (np.inf, ValueError),
                                        (-np.inf, ValueError), ("a", TypeError), ("1", TypeError),
                                        (True, TypeError), (None, TypeError)])
def test_positioners_refuse_an_initial_position_that_is_not_a_finite_number(bad, error):
    """SimPositioner(init_pos=nan) and RasterStage(init_pos=(nan, 0)) were accepted: the readback
    was NaN."""
    with pytest.raises(error, match=r"^p: init_pos must be a finite number"):
        SimPositioner(name="p", init_pos=bad)
    with pytest.raises(error, match=r"^mono: init_pos must be a finite number"):
        Monochromator(name="mono", init_pos=bad)
    for pos in ((bad, 0.0), (0.0, bad)):
        with pytest.raises(error, match=r"^stage: init_pos must be a pair of finite numbers "
                                        r"\(y, x\) in µm, got"):
            RasterStage(name="stage", init_pos=pos)
    for pos in ((1.0,), (1.0, 2.0, 3.0), 1.0, "ab"):
        with pytest.raises(TypeError, match=r"^stage: init_pos must be a pair"):
            RasterStage(name="stage", init_pos=pos)
    # numbers (numpy included) are positions
    assert SimPositioner(name="p", init_pos=np.float32(2.5)).position == 2.5
    stage = RasterStage(name="stage", init_pos=(np.int64(3), 1.5))
    assert (stage.y.position, stage.x.position) == (3.0, 1.5)
