"""Interruptions: a beam suspender and a pause/resume leave the planner consistent."""

import threading

import numpy as np
import pytest
from bluesky import Msg, RunEngine
from bluesky import preprocessors as bpp
from bluesky.suspenders import SuspendBoolHigh
from bluesky.utils import RunEngineInterrupted
from ophyd import Signal

import curiss
from curiss import plans
from curiss.plans import curiss_scan
from sim_devices import PhantomSample, make_stxm


@pytest.fixture(scope="module")
def sample():
    return PhantomSample(24, (12, 10), 3, seed=4)


def plan(sample, stxm):
    return curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                       y_positions=stxm.y_positions, sampling_ratio=0.2, dictionary=sample.spectra, seed=2)


def offline_pairs(sample):
    p = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2,
                             dictionary=sample.spectra, seed=2)
    return {tuple(x) for x in curiss.replay(p, sample.cube).order}


def primary(docs):
    return [(d["data"]["energy_index"], d["data"]["row_index"]) for n, d in docs
            if n == "event" and "detector_line" in d["data"]]


def test_beam_suspender_neither_repeats_nor_skips_rows(sample):
    stxm = make_stxm(sample, noise=False)
    beam_lost = Signal(name="beam_lost", value=0)
    RE = RunEngine({})
    RE.install_suspender(SuspendBoolHigh(beam_lost, sleep=0.1))
    docs, seen = [], {"n": 0}

    def cb(name, doc):
        docs.append((name, doc))
        if name == "event" and "detector_line" in doc["data"]:
            seen["n"] += 1
            if seen["n"] in (5, 30):  # the beam drops twice during the run, back after 0.2 s
                beam_lost.put(1)
                threading.Timer(0.2, lambda: beam_lost.put(0)).start()

    RE.subscribe(cb)
    RE(plan(sample, stxm))
    rows = primary(docs)
    assert len(rows) == len(set(rows))
    assert set(rows) == offline_pairs(sample)
    stop = [d for n, d in docs if n == "stop"][0]
    assert stop["exit_status"] == "success"


def test_pause_and_resume_neither_repeats_nor_skips_rows(sample):
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    docs, seen = [], {"n": 0}

    def cb(name, doc):
        docs.append((name, doc))
        if name == "event" and "detector_line" in doc["data"]:
            seen["n"] += 1
            if seen["n"] == 17:  # the operator pauses (from another thread, as Ctrl-C would)
                threading.Thread(target=RE.request_pause, kwargs={"defer": True}).start()

    RE.subscribe(cb)
    with pytest.raises(RunEngineInterrupted):
        RE(plan(sample, stxm))
    assert RE.state == "paused"
    n_before = len(primary(docs))
    dose_before = sample.dose.sum()
    RE.resume()
    rows = primary(docs)
    assert n_before >= 17 and len(rows) > n_before
    assert len(rows) == len(set(rows))
    assert set(rows) == offline_pairs(sample)
    assert sample.dose.sum() > dose_before
    completed = [d for n, d in docs if n == "event" and "completed" in d["data"]][0]["data"]["completed"]
    assert np.all(np.isfinite(completed))


@pytest.mark.parametrize("then", ["stop", "abort"])
def test_a_pause_after_a_saved_row_then_stop_leaves_the_planner_holding_every_saved_row(sample, then):
    """A deferred pause lands at the checkpoint after a row's save: the row was in 'primary'
    but, when the operator then stopped or aborted, it never reached the planner (which the
    plan's docstring offers for further use): one row fewer than the run."""
    stxm = make_stxm(sample, noise=False)
    planner = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2, seed=3)
    RE = RunEngine({})
    docs, seen = [], {"stream": None, "rows": 0}
    RE.subscribe(lambda name, doc: docs.append((name, doc)))

    def pause_after_ninth_row(msg):
        """The operator's deferred pause, requested as the 9th row is saved (as Ctrl-C would,
        from another thread; inserted as a message here, so that it lands there every time)."""
        if msg.command == "create":
            seen["stream"] = msg.kwargs.get("name")
        if msg.command == "save" and seen["stream"] == "primary":
            seen["rows"] += 1
            if seen["rows"] == 9:
                return None, bpp.single_gen(Msg("pause", defer=True))  # at the next checkpoint
        return None, None

    with pytest.raises(RunEngineInterrupted):
        RE(bpp.plan_mutator(plans.subsampled_scan(planner, stxm.detector, stxm.mono, stxm.stage,
                                                  y_positions=stxm.y_positions),
                            pause_after_ninth_row))
    getattr(RE, then)()
    rows = primary(docs)
    assert len(rows) == 9
    assert {tuple(p) for p in np.argwhere(planner.row_mask)} == set(rows)
