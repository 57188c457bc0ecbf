"""Plans guard the beamline: bad input refused before anything moves, a pause never makes
'primary' disagree with the planner, a dead detector stops the run, resume uses the run's keys."""

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from bluesky import Msg, RunEngine
from bluesky import preprocessors as bpp
from bluesky.utils import RunEngineInterrupted

import curiss
from curiss import plans
from curiss.store._load import line_od
from sim_devices import PhantomSample, make_stxm


@pytest.fixture(scope="module")
def sample():
    return PhantomSample(24, (12, 10), 3, seed=4)


def _curiss(energies=lambda e: e, y=lambda y: y, **kw):
    """A curiss_scan with ``kw`` (and energies, y_positions changed by the two functions)."""
    def build(sample, stxm):
        args = dict(y_positions=y(stxm.y_positions), sampling_ratio=0.2, seed=0)
        args.update(kw)
        return plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, energies(sample.energies), **args)
    return build


def _lockstep(**kw):
    def build(sample, stxm):
        planner = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2, seed=0)
        return plans.subsampled_scan(planner, stxm.detector, stxm.mono, stxm.stage,
                                     y_positions=stxm.y_positions, **kw)
    return build


def _unseeded(seed):
    def build(sample, stxm):
        planner = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2, seed=seed)
        return plans.subsampled_scan(planner, stxm.detector, stxm.mono, stxm.stage,
                                     y_positions=stxm.y_positions)
    return build


def _repeated_y(sample, stxm):
    y = stxm.y_positions.copy()
    y[3] = y[2]
    return plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies, y_positions=y,
                             sampling_ratio=0.2, seed=0)


class _MoveOnly:
    """A Movable that cannot be read (the plans record the energy of each row)."""

    name = "mono"

    def set(self, value):
        from ophyd.status import Status

        st = Status()
        st.set_finished()
        return st


class _AsyncDetector:
    """An ophyd-async style detector: describe() and read() are coroutines."""

    parent = None

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name

    def trigger(self):
        return self.inner.trigger()

    async def describe(self):
        return self.inner.describe()

    async def read(self):
        return self.inner.read()


BAD_CALLS = [
    # devices the plans would find unusable only once the run was open
    (lambda sample, stxm: plans.curiss_scan(stxm.detector, _MoveOnly(), stxm.stage, sample.energies,
                                            y_positions=stxm.y_positions, sampling_ratio=0.2),
     TypeError, "mono must be a movable, readable energy positioner"),

    (_curiss(energies=lambda e: e + 100.0), ValueError, "outside the monochromator limits"),
    (_curiss(y=lambda y: y + 1000.0), ValueError, "outside the stage y limits"),
    (_curiss(sampling_ratio=1e-4), ValueError, "ratio too small: minimum is"),
    (_curiss(shape=(12, 7)), ValueError, "detector's line has 10 pixels"),
    (_curiss(dictionary=np.ones((5, 2))), ValueError, "n_energies"),
    (_curiss(energies=lambda e: e[::-1]), ValueError, "strictly increasing"),
    (_curiss(core_rank=0), ValueError, "core_rank must be >= 1"),
    (_curiss(energy_sampling="uniform"), ValueError, "energy_sampling must be 'volume' or 'leverage'"),
    (_curiss(budget_rule="rows"), ValueError, "budget_rule must be one of"),
    (_curiss(noise_level=-1.0), ValueError, "noise_level must be >= 0"),
    (_curiss(n_clusters=0), ValueError, "n_clusters must be in [1, 120]"),
    (_curiss(n_clusters=500), ValueError, "n_clusters must be in [1, 120]"),
    (_curiss(n_components=99), ValueError, "n_components must be in [1, 24]"),
    (_curiss(n_clusters=2.5), TypeError, "n_clusters must be an int"),
    (_curiss(sampling_ratio="0.2"), TypeError, "sampling_ratio must be a number"),
    (_curiss(sampling_ratio=True), TypeError, "sampling_ratio must be a number"),
    (_curiss(analysis="no"), TypeError, "analysis must be True or False"),
    (_curiss(md="sample A"), TypeError, "md must be a dict"),
    (_curiss(md={"energies": [1, 2], "sample": "A"}), ValueError, "md must not set ['energies']"),
    (_curiss(max_retries=None), ValueError, "max_retries must be a non-negative integer"),
    (_curiss(trigger_timeout="10"), ValueError, "trigger_timeout must be a positive number"),
    (_curiss(seed=np.random.default_rng(1)), TypeError, "seed must be an int or None in a plan"),
    (_lockstep(line_key="detector_lines"), ValueError, "'detector_lines' not among the reading keys"),
    (_lockstep(i0_key="detector_I0"), ValueError, "'detector_I0' not among the reading keys"),
    (_repeated_y, ValueError, "y_positions must be distinct"),
    # values the catalog or the journal cannot store (object() lost the whole run)
    (_curiss(md={"x": object()}), TypeError, "md['x'] is a object: the start document must be"),
    (_curiss(md={"file": Path("a.h5")}), TypeError, "md['file'] is a PosixPath"),
    (_curiss(md={"t": [1.0, float("nan")]}), TypeError, "md['t'] is nan, not a finite number"),
    (_curiss(md={"uid": "abc"}), ValueError, "md must not set ['uid']"),
    # the journal (msgpack) holds UTF-8 text and 64-bit integers, the catalog whole numbers
    # within +-(2**53 - 1) (clamping others, floats too): 2**64 switched the journal off for the
    # run, a lone surrogate failed after the detector was staged, 2**60 was stored as 2**53 - 1
    (_curiss(md={"note": 2**64}), TypeError, "md['note'] is 18446744073709551616, a whole number outside"),
    (_curiss(md={"n": [-2**63 - 1]}), TypeError, "md['n'] is -9223372036854775809, a whole number outside"),
    (_curiss(md={"n": 2**53}), TypeError, "md['n'] is 9007199254740992, a whole number outside "
                                          "[-(2**53 - 1), 2**53 - 1], which the catalog would store clamped"),
    (_curiss(md={"dose": 1e20}), TypeError, "md['dose'] is 1e+20, a whole number outside"),
    (_curiss(md={"ids": np.array([1, 2**60])}), TypeError, "md['ids'] is 1152921504606846976, a whole"),
    # a Fraction passed as a number: neither the journal nor the writer could store it, and the
    # run went on measuring with nothing kept
    (_curiss(md={"thickness_um": Fraction(1, 3)}), TypeError, "md['thickness_um'] is a Fraction"),
    # a long double neither JSON nor msgpack stores (the run aborted at its start); a 0-d array
    # the catalog writer cannot iterate (the run went to the journal only)
    (_curiss(md={"t": np.longdouble(1.5)}), TypeError, "a float128; give a float"),
    (_curiss(md={"t": np.array([1.5], np.longdouble)}), TypeError, "an array of float128"),
    (_curiss(md={"t": np.array(50.0)}), TypeError, "md['t'] is a 0-d array (array(50.)); give value.item()"),
    # a seed above 2**53 - 1 was stored clamped: the run could be neither resumed nor recomputed
    (_curiss(seed=2**53), ValueError, "seed must be at most 2**53 - 1 = 9007199254740991 in a plan"),
    (_unseeded(2**60), ValueError, "the planner's seed must be at most 2**53 - 1"),
    (_curiss(md={"sample": "fe\udcff"}), TypeError, "md['sample'] is 'fe\\udcff', a str that is not valid UTF-8"),
    (_curiss(md={"meta": {"fe\udcff": 1}}), TypeError, "md['meta'] has a key that is not a str"),
    (_curiss(md={1: "a"}), TypeError, "md keys must be str"),
    (_curiss(md={"scan_id": "abc"}), TypeError, "md['scan_id'] must be an int"),
    # a run that records no int seed can be neither resumed nor recomputed
    (_unseeded(None), TypeError, "the planner's seed must be an int (it is None)"),
    (_unseeded(np.random.default_rng(0)), TypeError, "the planner's seed must be an int"),
    # the detector's keys swapped: used to expose the sample, then fail with a numpy message
    (_lockstep(line_key="detector_i0", i0_key="detector_line"), ValueError,
     "line_key 'detector_i0' must be the detector's 1-D line"),
    (_lockstep(i0_key="detector_line"), ValueError, "i0_key 'detector_line' must be a scalar"),
    (_curiss(y=lambda y: None, shape=(12.5, 10)), ValueError, "shape must be (n_y, n_x), two positive integers"),
    (lambda sample, stxm: plans.riss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                                          y_positions=stxm.y_positions, sampling_ratio=0.2,
                                          max_rank=0), ValueError, "max_rank must be >= 1"),
    (lambda sample, stxm: plans.curiss_scan(None, stxm.mono, stxm.stage, sample.energies, shape=(12, 10),
                                            sampling_ratio=0.2), TypeError, "detector must be a triggerable"),
    (lambda sample, stxm: plans.curiss_scan(stxm.mono, stxm.detector, stxm.stage, sample.energies,
                                            shape=(12, 10), sampling_ratio=0.2),
     TypeError, "mono must be a movable"),
    (lambda sample, stxm: plans.acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                                             y_positions=stxm.y_positions, sampling_ratio=0.3),
     ValueError, "initial_ratio=0.02 is too small"),
]


@pytest.mark.parametrize("build, exc, match", BAD_CALLS, ids=[m for _, _, m in BAD_CALLS])
def test_bad_input_is_refused_before_anything_moves(sample, build, exc, match):
    stxm = make_stxm(sample, noise=False)
    mono_before, y_before = stxm.mono.position, stxm.stage.y.position
    dose_before = sample.dose.copy()
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append(n))
    with pytest.raises(exc) as info:
        RE(build(sample, stxm))
    assert match in str(info.value)
    assert docs == [], "a run was opened"
    assert stxm.mono.position == mono_before and stxm.stage.y.position == y_before
    assert np.array_equal(sample.dose, dose_before), "the sample was exposed"


def test_a_one_axis_pseudo_positioner_as_monochromator_has_its_limits_checked(sample):
    """A one-axis ophyd PseudoPositioner's limits read PseudoPosition(energy=(lo, hi)): they were
    taken as "no limits", and the run opened, measured rows and failed at the first energy out
    of range (ophyd's "outside of pseudo single limits")."""
    from ophyd import Component as Cpt
    from ophyd import SoftPositioner
    from ophyd.pseudopos import (PseudoPositioner, PseudoSingle, pseudo_position_argument,
                                 real_position_argument)

    lo, hi = float(sample.energies[2]), float(sample.energies[-3])

    class Mono(PseudoPositioner):
        energy = Cpt(PseudoSingle, limits=(lo, hi), egu="eV")
        theta = Cpt(SoftPositioner, init_pos=lo)

        @pseudo_position_argument
        def forward(self, p):
            return self.RealPosition(theta=p.energy)

        @real_position_argument
        def inverse(self, r):
            return self.PseudoPosition(energy=r.theta)

    mono = Mono(name="dcm")
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append(n))
    with pytest.raises(ValueError, match="outside the monochromator limits"):
        RE(plans.curiss_scan(stxm.detector, mono, stxm.stage, sample.energies,
                             y_positions=stxm.y_positions, sampling_ratio=0.3, seed=1))
    assert docs == [] and mono.position.energy == lo


def _run_with_pause_after(sample, n_pause, planner_cls=curiss.CURISSPlanner):
    """Run a plan with an immediate pause (Ctrl-C twice) after its n-th message, then resume."""
    stxm = make_stxm(sample, noise=True, seed=1)  # noise: a replayed reading differs from the first
    planner = planner_cls(sample.energies, sample.shape, sampling_ratio=0.2, seed=3)
    RE = RunEngine({})
    docs, msgs = [], []
    RE.subscribe(lambda n, d: docs.append((n, d)))

    def pause_after(msg):
        msgs.append(msg)
        if len(msgs) != n_pause:
            return None, None

        def head():
            return (yield msg)

        def tail():
            yield Msg("pause", None, defer=False)

        return head(), tail()

    plan = bpp.plan_mutator(plans.subsampled_scan(planner, stxm.detector, stxm.mono, stxm.stage,
                                                  y_positions=stxm.y_positions), pause_after)
    try:
        RE(plan)
    except RunEngineInterrupted:
        RE.resume()
    return planner, docs, msgs


def _at_row(n, action, key="detector_line"):
    """A document callback that calls ``action()`` once, as the n-th row's event is emitted."""
    seen = {"rows": 0}

    def cb(name, doc):
        if name == "event" and key in doc["data"]:
            seen["rows"] += 1
            if seen["rows"] == n:
                action()

    return cb


def _stream(docs, name):
    desc = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == name}
    return [d["data"] for n, d in docs if n == "event" and d["descriptor"] in desc]


def test_an_immediate_pause_never_saves_a_row_the_planner_did_not_use(sample):
    """An immediate pause rewinds to the last checkpoint and replays what follows. Between a
    row's read and its save the replay used to save a second reading in place of the one the
    planner was given; after a save it saved the event twice."""
    _, _, msgs = _run_with_pause_after(sample, 10**9)
    det = [i for i, m in enumerate(msgs) if m.command == "read" and m.obj is not None
           and m.obj.name == "detector"]
    saves = [i for i, m in enumerate(msgs) if m.command == "save"]
    # after the detector's read (before the row's save), after a row's save, after the first
    # decision's save, and between a save and the checkpoint after it
    points = sorted({det[0] + 1, det[4] + 1, det[11] + 2, saves[0] + 1, saves[1] + 1, saves[6] + 1,
                     saves[20] + 1})
    for n in points:
        planner, docs, _ = _run_with_pause_after(sample, n)
        rows = _stream(docs, "primary")
        pairs = [(d["energy_index"], d["row_index"]) for d in rows]
        assert len(pairs) == len(set(pairs)), f"pause after message {n}: a row saved twice"
        assert set(pairs) == {tuple(p) for p in np.argwhere(planner.row_mask)}
        for d in rows:
            od = line_od(np.asarray(d["detector_line"], float), float(d["detector_i0"]))
            assert np.allclose(od, planner.measured[d["energy_index"], d["row_index"]]), \
                f"pause after message {n}: row {(d['energy_index'], d['row_index'])} is not what the planner used"
        assert len(_stream(docs, "planner")) == len(planner.history), f"pause after message {n}"
        assert [d for n_, d in docs if n_ == "stop"][0]["exit_status"] == "success"


def test_a_dead_detector_stops_the_run_after_five_rows_and_keeps_what_was_measured(sample):
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs = []
    n_triggers = {"n": 0}
    trigger = stxm.detector.trigger

    def counting_trigger():
        n_triggers["n"] += 1
        return trigger()

    stxm.detector.trigger = counting_trigger

    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    # the shutter closes after seven rows
    RE.subscribe(_at_row(7, lambda: stxm.detector.inject_fault("zeros", 10_000)))
    with pytest.raises(RuntimeError, match="5 rows in a row gave no valid reading in 3 attempts"):
        RE(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                             y_positions=stxm.y_positions, sampling_ratio=0.2, seed=0, max_retries=2))
    assert n_triggers["n"] == 7 + 5 * 3
    assert len(_stream(docs, "primary")) == 7
    failed = [d for d in _stream(docs, "faults") if d["kind"] == "failed"]
    assert len(failed) == 5
    stop = [d for n, d in docs if n == "stop"][0]
    assert stop["exit_status"] == "fail" and "detector or the beam is down" in stop["reason"]


def test_plot_hints_name_the_monochromator_read_key(sample):
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(plans.raster_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                         y_positions=stxm.y_positions, analysis=False))
    start = docs[0][1]
    (fields, stream), = start["hints"]["dimensions"]
    assert list(fields) == stxm.mono.hints["fields"] and stream == "primary"
    primary = _stream(docs, "primary")
    assert all(f in primary[0] for f in fields)  # the x axis of a live plot is in the events
    assert start["dictionary_name"] is None and start["line_key"] == "detector_line"


def test_an_unhinted_monochromator_is_plotted_against_its_read_key(sample):
    """A monochromator that hints no field got dimensions [its name], which is not a read key
    when its readback is 'mono_energy': BestEffortCallback dropped the energy axis."""
    from sim_devices._devices import Monochromator

    stxm = make_stxm(sample, noise=False)
    mono = Monochromator(name="mono", limits=(float(sample.energies[0]) - 1,
                                              float(sample.energies[-1]) + 1),
                         init_pos=float(sample.energies[0]))
    mono.readback.kind = "normal"  # read, not hinted
    assert mono.hints["fields"] == [] and "mono" not in mono.read()
    stxm.detector._mono = mono
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(plans.raster_scan(stxm.detector, mono, stxm.stage, sample.energies,
                         y_positions=stxm.y_positions, analysis=False))
    (fields, stream), = docs[0][1]["hints"]["dimensions"]
    assert fields == [next(iter(mono.read()))] and fields[0] in _stream(docs, "primary")[0]


def test_best_effort_callback_plots_only_what_is_hinted(sample):
    """curiss's own records had no hints, so BestEffortCallback plotted every field of them: a
    20-axes planner figure (strings and arrays included) redrawn at every decision, and the
    row and energy indices against energy; a scan ran 70-130x slower with plots on."""
    from bluesky.callbacks.best_effort import hinted_fields

    stxm = make_stxm(sample, noise=False)
    stxm.detector.inject_fault("nan", 1)  # a faults event too
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                         y_positions=stxm.y_positions, sampling_ratio=0.3, seed=0))
    descriptors = {d["name"]: d for n, d in docs if n == "descriptor"}
    assert {"primary", "planner", "faults", "analysis"} <= set(descriptors)
    assert hinted_fields(descriptors["planner"]) == ["sampling_ratio"]
    assert hinted_fields(descriptors["faults"]) == hinted_fields(descriptors["analysis"]) == []
    primary = hinted_fields(descriptors["primary"])
    assert "energy_index" not in primary and "row_index" not in primary
    assert set(stxm.mono.hints["fields"]) <= set(primary)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from curiss.store import open_catalog

    return open_catalog(tmp_path_factory.mktemp("guards") / "runs")


def _renamed(sample):
    stxm = make_stxm(sample, noise=False)
    stxm.detector.line.name = "detector_counts"
    stxm.detector.i0.name = "detector_incident"
    return stxm


def test_resume_reads_the_keys_the_run_was_measured_with(sample, catalog):
    from curiss.store import load_run, recompute, writer_for

    stxm = _renamed(sample)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    RE.subscribe(_at_row(20, lambda: stxm.detector.inject_fault("zeros", 10_000), key="detector_counts"))
    planner = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2,
                                   dictionary=sample.spectra, seed=2)
    with pytest.raises(RuntimeError, match="rows in a row gave no valid reading"):
        RE(plans.subsampled_scan(planner, stxm.detector, stxm.mono, stxm.stage,
                                 y_positions=stxm.y_positions, line_key="detector_counts",
                                 i0_key="detector_incident"))
    old = load_run(catalog[-1])
    assert old.exit_status == "fail" and len(old.order) == 20
    fresh = _renamed(sample)  # the shutter open again
    new_uid, = RE(plans.resume(old.uid, fresh.detector, fresh.mono, fresh.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    assert new.exit_status == "success" and new.start["line_key"] == "detector_counts"
    assert len(new.order) > new.reused == 20 and len(new.failed) == 5  # read with the run's keys
    assert np.array_equal(recompute(new).mask, new.mask)  # the planner retraced, failures included


def test_a_dead_monochromator_stops_the_run_and_resume_continues_it(sample, catalog):
    """A monochromator that dies mid-run was never stopped for: the plan tried 577 moves, gave up
    on 280 rows, ended with exit_status 'success' and no completion, and resume() refused the
    run ("finished successfully") once the monochromator was back."""
    from curiss.store import load_run, writer_for

    stxm = make_stxm(sample, noise=False)
    moves = {"n": 0}
    set_ = stxm.mono.set

    def counting_set(*args, **kwargs):
        moves["n"] += 1
        return set_(*args, **kwargs)

    stxm.mono.set = counting_set
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    RE.subscribe(_at_row(5, lambda: stxm.mono.fail_next_moves(10**6)))
    kw = dict(y_positions=stxm.y_positions, sampling_ratio=0.2, seed=0, max_retries=2)
    with pytest.raises(RuntimeError, match="failed to reach 5 energies in a row .3 attempts each"):
        RE(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies, **kw))
    old = load_run(catalog[-1])
    # the rest of the first image needs no move: its n_y rows are measured
    assert old.exit_status == "fail" and len(old.order) == sample.shape[0]
    # the first energy's move, five energies three tries each, then another energy three tries
    assert moves["n"] == 1 + 5 * 3 + 3
    assert len({int(e) for e, _ in old.failed}) == 5
    fresh = make_stxm(sample, noise=False)  # the monochromator back
    new_uid, = RE(plans.resume(old.uid, fresh.detector, fresh.mono, fresh.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    assert new.exit_status == "success" and new.reused == sample.shape[0]
    assert new.completed is not None


@pytest.mark.parametrize("method", ["curiss"])  # the stop is the plan's, whatever the planner
def test_a_monochromator_that_cannot_reach_the_top_energies_is_told_from_a_dead_one(sample,
                                                                                    catalog,
                                                                                    method):
    """Requests go in energy order, so a monochromator that cannot reach the top of the grid
    (a grating or harmonic change that fails) fails five energies in a row, as a dead one does.
    The run stops either way (no planner can complete an energy without rows, so measuring on
    would spend dose on a run without a completion); the error now says which it is, after
    asking for an energy it reached before, and resume completes the run once it is fixed."""
    from curiss.store import load_run, writer_for

    n_e = sample.energies.size
    bad = set(range(n_e - 6, n_e))
    stxm = make_stxm(sample, noise=False)
    move = stxm.mono.move

    def failing_move(position, *args, **kwargs):
        if any(position == float(sample.energies[e]) for e in bad):
            stxm.mono.fail_next_moves(1)
        return move(position, *args, **kwargs)

    stxm.mono.move = failing_move
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    kw = dict(y_positions=stxm.y_positions, max_retries=1)
    if method == "curiss":
        kw.update(sampling_ratio=0.3, dictionary=sample.spectra, seed=1)
    with pytest.raises(RuntimeError, match=r"failed to reach 5 energies in a row .*, but it reached "
                                           r"energy index \d+ .* when asked for it: those energies "
                                           r"look out of its reach"):
        RE(getattr(plans, f"{method}_scan")(stxm.detector, stxm.mono, stxm.stage,
                                            sample.energies, **kw))
    old = load_run(catalog[-1])
    assert old.exit_status == "fail" and len(old.order) > 0
    assert {int(e) for e, _ in old.failed} <= bad
    fresh = make_stxm(sample, noise=False)  # the grating fixed
    new_uid, = RE(plans.resume(old.uid, fresh.detector, fresh.mono, fresh.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    assert new.exit_status == "success" and new.completed is not None
    if method == "raster":
        assert new.mask.all()


def _curiss_interrupted_at_row_15(sample, catalog, end, per_call=None):
    """A CURISS run (ratio 0.2, seed 4, the sample's dictionary) paused after its 15th row and
    ended with ``RE.stop()`` or ``RE.abort()`` (``end``); returns ``(RE, stxm)``."""
    from curiss.store import writer_for

    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    pause = threading.Thread(target=RE.request_pause, kwargs={"defer": True})
    token = RE.subscribe(_at_row(15, pause.start))
    kw = dict(y_positions=stxm.y_positions, sampling_ratio=0.2, dictionary=sample.spectra, seed=4)
    with pytest.raises(RunEngineInterrupted):
        RE(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies, **kw),
           **(per_call or {}))
    getattr(RE, end)()
    RE.unsubscribe(token)
    return RE, stxm


def test_per_call_metadata_of_a_reserved_name_does_not_break_the_run(sample, catalog):
    """bluesky's per-call metadata, RE(plan, method="STXM stack"), takes precedence over the
    plan's start-document keys (md= refuses them): the run could be neither resumed nor
    recomputed ("unknown method 'STXM stack'"). The plan's own copy, start["curiss"], is read."""
    from curiss.store import load_run, recompute

    per_call = {"method": "STXM stack", "seed": 99, "shape": [3, 3], "sample": "Fe film"}
    RE, stxm = _curiss_interrupted_at_row_15(sample, catalog, "abort", per_call)
    raw = catalog[-1].metadata["start"]
    assert raw["method"] == "STXM stack" and raw["curiss"]["method"] == "curiss"  # both kept
    old = load_run(catalog[-1])
    assert old.start["method"] == "curiss" and old.start["seed"] == 4
    assert old.shape == sample.shape and old.start["sample"] == "Fe film"
    assert np.array_equal(recompute(old).mask, old.mask)
    new_uid, = RE(plans.resume(old.uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    ref = curiss.replay(curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2,
                                             dictionary=sample.spectra, seed=4), sample.cube)
    assert new.exit_status == "success" and np.array_equal(new.mask, ref.mask)


def test_a_run_stopped_with_RE_stop_can_be_resumed(sample, catalog):
    """RE.stop() ends a run with exit_status 'success' before its planner has finished."""
    from curiss.store import load_run

    RE, stxm = _curiss_interrupted_at_row_15(sample, catalog, "stop")
    old = load_run(catalog[-1])
    assert old.exit_status == "success" and 15 <= len(old.order) < 57
    new_uid, = RE(plans.resume(old.uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    ref = curiss.replay(curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2,
                                             dictionary=sample.spectra, seed=4), sample.cube)
    assert np.array_equal(new.mask, ref.mask) and new.exit_status == "success"
    with pytest.raises(ValueError, match="finished successfully"):  # now it has nothing left
        RE(plans.resume(new_uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))


def test_an_analysis_that_fails_on_complete_data_does_not_fail_the_run():
    """k-means cannot find 4 clusters in a uniform film: the run is complete all the same."""
    from sim_devices import ReplaySample

    energies = np.linspace(700.0, 720.0, 6)
    cube = np.broadcast_to(np.linspace(0.1, 0.6, 6)[:, None, None], (6, 4, 5)).copy()
    sample = ReplaySample(energies, cube)
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(plans.raster_scan(stxm.detector, stxm.mono, stxm.stage, energies, y_positions=stxm.y_positions,
                         n_clusters=4))
    assert [d for n, d in docs if n == "stop"][0]["exit_status"] == "success"
    assert len(_stream(docs, "primary")) == 6 * 4
    (fault,) = [d for d in _stream(docs, "faults") if d["kind"] == "analysis"]
    assert "analysis skipped" in fault["message"] and "k-means" in fault["message"]
    assert not _stream(docs, "analysis")


def test_an_asynchronous_detector_runs_without_a_never_awaited_coroutine(sample, recwarn):
    """The key check called an ophyd-async style describe() and dropped the coroutine: a
    "coroutine ... was never awaited" RuntimeWarning at every plan call. It is closed now; the
    RunEngine drives the device (its keys are not checked before the run, as documented)."""
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(plans.curiss_scan(_AsyncDetector(stxm.detector), stxm.mono, stxm.stage, sample.energies,
                         y_positions=stxm.y_positions, shape=sample.shape, sampling_ratio=0.2,
                         seed=0, analysis=False))
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
    assert [d["exit_status"] for n, d in docs if n == "stop"] == ["success"]
    assert sum(1 for n, d in docs if n == "event" and "detector_line" in d["data"]) > 0


@pytest.mark.parametrize("reached, unreached, current, expected", [
    ([0, 1, 2], [3, 4, 5, 6, 7], 2, 1),        # the latest energy reached that it is not at
    ([0, 1, 2], [3, 4, 5, 6, 7], None, 1),     # position unknown: not the last one reached
    ([4], [5, 6, 7, 8, 9], 4, None),           # nothing reached elsewhere: farthest (below)
    ([], [5, 6, 7, 8, 9], 23, None),           # a mono parked at the top of the grid
])
def test_the_monochromator_is_probed_away_from_where_it_sits(reached, unreached, current,
                                                            expected):
    """A move to where a stuck monochromator sits succeeds: the probe at the top of the grid,
    where a scan on the same grid had left it, took a dead monochromator for a live one."""
    from curiss.plans import _probe_energy

    got = _probe_energy(reached, unreached, 24, current)
    if expected is not None:
        assert got == expected
    assert got is not None and got not in unreached and got != current
    assert got != (reached[-1] if reached else None)


def test_a_pause_right_after_the_run_opens_declares_primary_once(sample):
    """'primary' is declared when the run opens; an immediate pause right after it rewound to
    the run's start and declared it again on resume (a second, empty 'primary' descriptor)."""
    from bluesky import Msg
    from bluesky import preprocessors as bpp

    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    paused = {"done": False}

    def pause_after_declare(msg):
        if msg.command != "declare_stream" or paused["done"]:
            return None, None
        paused["done"] = True

        def declare_then_pause():
            ret = yield msg
            yield Msg("pause", defer=False)  # as an immediate Ctrl-C right here would
            return ret
        return declare_then_pause(), None

    plan = bpp.plan_mutator(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage,
                                              sample.energies, y_positions=stxm.y_positions,
                                              sampling_ratio=0.2, seed=0), pause_after_declare)
    with pytest.raises(RunEngineInterrupted):
        RE(plan)
    RE.resume()
    primary = [d for n, d in docs if n == "descriptor" and d["name"] == "primary"]
    assert paused["done"] and len(primary) == 1
    assert [d for n, d in docs if n == "stop"][0]["exit_status"] == "success"


@pytest.mark.parametrize("position, expected", [(700.0, 0), ((700.0,), 0), (1e9, None),
                                                (float("nan"), None), ("not a number", None)])
def test_where_the_monochromator_sits_is_read_from_its_position(position, expected):
    """A one-axis PseudoPositioner's position is a one-field namedtuple: it was not read, so a
    monochromator stuck where a run starts could be probed where it sits; a position far off
    the grid is no grid energy."""
    import types

    from curiss.plans import _energy_index_of

    energies = np.linspace(700.0, 720.0, 11)
    assert _energy_index_of(types.SimpleNamespace(position=position), energies) == expected

    class Disconnected:
        @property
        def position(self):
            raise RuntimeError("disconnected")

    assert _energy_index_of(Disconnected(), energies) is None
