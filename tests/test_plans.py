"""Bluesky plans: same method as offline replay, message sequence, validation before anything moves."""

import json

import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.simulators import RunEngineSimulator

import curiss
from curiss import plans
from sim_devices import PhantomSample, make_stxm


@pytest.fixture(scope="module")
def sample():
    return PhantomSample(24, (12, 10), 3, seed=4)


def run_collect(plan):
    RE = RunEngine({})
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(plan)
    return docs


def events(docs, stream):
    desc = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == stream}
    return [d for n, d in docs if n == "event" and d["descriptor"] in desc]


STRATEGIES = [
    (plans.raster_scan, curiss.RasterPlanner, {}),
    (plans.random_rows_scan, curiss.RandomRowsPlanner, {"sampling_ratio": 0.25}),
    (plans.riss_scan, curiss.RISSPlanner, {"sampling_ratio": 0.2}),
    (plans.curiss_scan, curiss.CURISSPlanner, {"sampling_ratio": 0.2}),
    (plans.acuriss_scan, curiss.ACURISSPlanner,
     {"sampling_ratio": 0.4, "initial_ratio": 0.15, "max_iterations": 3}),
]


@pytest.mark.parametrize("plan, cls, kw", STRATEGIES, ids=lambda x: getattr(x, "__name__", ""))
def test_plan_defaults_are_the_planner_defaults(plan, cls, kw):
    """A keyword the plan passes on to its planner has the planner's default, so a plan run
    with defaults makes the decisions that docs/quality.md measured for the planner."""
    import inspect

    planner = inspect.signature(cls.__init__).parameters
    empty = inspect.Parameter.empty
    shared = [(n, p.default) for n, p in inspect.signature(plan).parameters.items()
              if n in planner and empty not in (p.default, planner[n].default)]
    assert "cost_model" in {n for n, _ in shared}
    for name, default in shared:
        assert default == planner[name].default, (plan.__name__, name, default, planner[name].default)


@pytest.mark.parametrize("plan, cls, kw", STRATEGIES, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("seed", [0, 5])
def test_plan_mask_equals_offline_replay(sample, plan, cls, kw, seed):
    """The bluesky path and the offline path are the same method (noise-free detector)."""
    stxm = make_stxm(sample, noise=False, seed=seed)
    if cls is not curiss.RasterPlanner:
        kw = dict(kw, seed=seed)
    if cls in (curiss.RISSPlanner, curiss.CURISSPlanner, curiss.ACURISSPlanner):
        kw["dictionary"] = sample.spectra
    docs = run_collect(plan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                            y_positions=stxm.y_positions, **kw))
    prim = events(docs, "primary")
    mask = np.zeros((sample.energies.size, sample.shape[0]), bool)
    for ev in prim:
        e, r = ev["data"]["energy_index"], ev["data"]["row_index"]
        assert not mask[e, r]
        mask[e, r] = True
        assert ev["data"]["mono_energy"] == pytest.approx(sample.energies[e])
        assert ev["data"]["stage_y"] == pytest.approx(stxm.y_positions[r])
    offline = curiss.replay(cls(sample.energies, sample.shape, **kw), sample.cube)
    assert np.array_equal(mask, offline.mask[:, :, 0])
    # the monochromator moves once per energy visited
    visited = [ev["data"]["energy_index"] for ev in prim]
    changes = 1 + sum(a != b for a, b in zip(visited, visited[1:]))
    req = [ev["data"]["request"] for ev in events(docs, "planner")]
    assert changes == sum(len(np.unique(np.nonzero(np.asarray(r))[0])) for r in req)
    # planner stream: one event per decision, the last one says why it stopped
    pl = events(docs, "planner")
    assert len(pl) == len(offline.history)
    assert pl[-1]["data"]["kind"] == "stop" and pl[-1]["data"]["stop_reason"]
    ana = events(docs, "analysis")
    assert len(ana) == 1
    # same completion up to the rounding of exp/log in the detector path; LoopedASD is iterative
    # and stops on stagnation, so rounding-level differences grow there
    completed = np.asarray(ana[0]["data"]["completed"])
    tol = 1e-2 if cls in (curiss.RandomRowsPlanner, curiss.RISSPlanner) else 1e-8
    assert np.linalg.norm(completed - offline.completed) <= tol * np.linalg.norm(offline.completed)


def test_start_document_reproduces_the_run(sample):
    stxm = make_stxm(sample, noise=False)
    docs = run_collect(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                                         y_positions=stxm.y_positions, sampling_ratio=0.2,
                                         dictionary=sample.spectra))
    start = docs[0][1]
    for key in ("plan_name", "plan_args", "method", "energies", "shape", "y_positions", "seed",
                "sampling_ratio", "cost_model", "curiss_version", "schema_version", "hints",
                "planner_kwargs"):
        assert key in start, key
    assert start["plan_name"] == "curiss_scan" and start["method"] == "curiss"
    assert isinstance(start["seed"], int)  # a seed is drawn and recorded when none is given
    assert start["planner_kwargs"]["seed"] == start["seed"]
    p = curiss.make_planner(start["method"], start["energies"], start["shape"], **start["planner_kwargs"])
    offline = curiss.replay(p, sample.cube)
    rows = {(ev["data"]["energy_index"], ev["data"]["row_index"]) for ev in events(docs, "primary")}
    assert rows == {tuple(x) for x in offline.order}


@pytest.mark.parametrize("plan", ["riss_scan", "curiss_scan", "acuriss_scan"])
def test_the_authors_choices_are_plan_keywords_and_recorded(sample, plan):
    """energy_sampling and budget_rule reach the planner from the plans (the queue can only run
    the named plans), and the start document records them whether given or not."""
    stxm = make_stxm(sample, noise=False)
    kw = {"sampling_ratio": 0.3} if plan != "acuriss_scan" else {
        "sampling_ratio": 0.4, "initial_ratio": 0.25, "max_iterations": 2}
    for given in ({}, {"energy_sampling": "leverage", "budget_rule": "authors"}):
        docs = run_collect(getattr(plans, plan)(stxm.detector, stxm.mono, stxm.stage,
                                                sample.energies, y_positions=stxm.y_positions,
                                                dictionary=sample.spectra, seed=3, **kw, **given))
        start = docs[0][1]
        recorded = start["planner_kwargs"]
        p = curiss.make_planner(start["method"], start["energies"], start["shape"], **recorded)
        for key in ("energy_sampling", "budget_rule"):
            assert recorded[key] == given.get(key, getattr(p, key))
            assert getattr(p, key) == given.get(key, recorded[key])
        rows = [(ev["data"]["energy_index"], ev["data"]["row_index"]) for ev in events(docs, "primary")]
        offline = curiss.replay(p, sample.cube)
        assert sorted(rows) == sorted(map(tuple, offline.order))


def test_message_sequence_without_hardware(sample):
    stxm = make_stxm(sample, noise=False)
    pos = {}
    sim = RunEngineSimulator()
    sim.add_handler("set", lambda msg: pos.__setitem__(msg.obj.name, msg.args[0]))

    def read_detector(msg):
        e = int(np.argmin(abs(sample.energies - pos["mono"])))
        r = int(np.argmin(abs(stxm.y_positions - pos["stage_y"])))
        line = 1e4 * np.exp(-sample.cube[e, r])
        return {"detector_line": {"value": line, "timestamp": 0}, "detector_i0": {"value": 1e4, "timestamp": 0}}

    sim.add_handler("read", read_detector, lambda msg: msg.obj is stxm.detector)
    msgs = sim.simulate_plan(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                                               y_positions=stxm.y_positions, sampling_ratio=0.2, seed=1))
    cmds = [m.command for m in msgs]
    # the detector, the mono and the stage are staged (as bluesky's scans stage their detectors
    # and motors: stage_sigs applied; staging stage.y stages its root device), unstaged in
    # reverse order
    assert cmds[:4] == ["stage"] * 3 + ["open_run"]
    assert [m.obj for m in msgs[:3]] == [stxm.detector, stxm.mono, stxm.stage]
    assert cmds[-4:] == ["close_run"] + ["unstage"] * 3
    assert [m.obj for m in msgs[-3:]] == [stxm.stage, stxm.mono, stxm.detector]
    # every detector trigger is preceded by a checkpoint and a stage move, and read into 'primary'
    trig = [i for i, m in enumerate(msgs) if m.command == "trigger" and m.obj is stxm.detector]
    assert trig
    for i in trig:
        back = cmds[max(0, i - 6):i]
        assert "checkpoint" in back and "set" in back
    creates = [m.kwargs.get("name") for m in msgs if m.command == "create"]
    assert creates[0] == "planner" and creates[-1] == "analysis"
    assert creates.count("planner") == 3  # images, rows, stop
    n_rows = creates.count("primary")
    p = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.2, seed=1)
    s_e, s_r = p.n_images, p.n_rows
    assert n_rows == s_e * sample.shape[0] + (sample.energies.size - s_e) * s_r
    # one monochromator move per energy, ascending within each request (images, then rows)
    segments, current = [], []
    for m in msgs:
        if m.command == "create" and m.kwargs.get("name") == "planner":
            segments.append(current)
            current = []
        elif m.command == "set" and m.obj is stxm.mono:
            current.append(m.args[0])
    assert sum(len(seg) for seg in segments) == sample.energies.size
    assert all(np.all(np.diff(seg) > 0) for seg in segments)


def test_numpy_ints_and_a_cost_model_dict_are_accepted_as_given(sample):
    """np.int64 analysis settings used to pass the check and fail the run after every row (the
    start document's schema); a cost model as a dict (what the queue's JSON carries) was refused."""
    stxm = make_stxm(sample, noise=False)
    docs = run_collect(plans.curiss_scan(
        stxm.detector, stxm.mono, stxm.stage, sample.energies, y_positions=stxm.y_positions,
        sampling_ratio=0.3, seed=2, n_clusters=np.int64(3), n_components=np.int32(2),
        cost_model={"t_energy": 2.0}))
    start, stop = docs[0][1], docs[-1][1]
    assert stop["exit_status"] == "success"
    assert start["analysis"] == {"n_components": 2, "n_clusters": 3}
    assert type(start["analysis"]["n_clusters"]) is int
    assert start["cost_model"]["t_energy"] == 2.0 == start["planner_kwargs"]["cost_model"]["t_energy"]
    ana = events(docs, "analysis")
    assert len(ana) == 1 and np.asarray(ana[0]["data"]["cluster_spectra"]).shape[1] == 3


def test_the_planner_stream_records_the_absorbed_dose_recompute_reports(sample):
    """'dose' is the incident dose (dwell x pixels); the design's dose is the absorbed one, which
    'dose_absorbed' records: at the end it equals what recompute() computes from the run."""
    stxm = make_stxm(sample, noise=False)
    docs = run_collect(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                                         y_positions=stxm.y_positions, sampling_ratio=0.3, seed=5,
                                         dictionary=sample.spectra))
    pl = [ev["data"] for ev in events(docs, "planner")]
    n_rows = len(events(docs, "primary"))
    offline = curiss.replay(curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.3,
                                                 seed=5, dictionary=sample.spectra), sample.cube)
    assert pl[-1]["dose"] == pytest.approx(n_rows * sample.shape[1] * 1e-3)  # incident
    assert pl[-1]["dose_absorbed"] == pytest.approx(offline.cost.dose_total, rel=1e-9)
    assert 0 < pl[-1]["dose_absorbed"] < pl[-1]["dose"]
    absorbed = [d["dose_absorbed"] for d in pl]
    assert absorbed == sorted(absorbed) and absorbed[0] == 0.0  # nothing measured at the first


@pytest.mark.parametrize("plan, kw", [
    ("raster_scan", {}),
    ("random_rows_scan", {"sampling_ratio": 0.3}),
    ("riss_scan", {"sampling_ratio": 0.2, "dictionary": "spectra"}),
    ("curiss_scan", {"sampling_ratio": 0.2, "dictionary": "spectra"}),
    ("acuriss_scan", {"sampling_ratio": 0.4, "initial_ratio": 0.13, "dictionary": "spectra"}),
])
def test_plan_args_run_the_plan_again(sample, plan, kw):
    """plan_args listed planner keywords that are not the plan's (raster_scan(seed=...) and
    random_rows_scan(row_budget=...) raised TypeError) and left out the dictionary (the plan
    called again built another planner)."""
    stxm = make_stxm(sample, noise=False)
    kw = {k: (sample.spectra if v == "spectra" else v) for k, v in kw.items()}
    func = getattr(plans, plan)
    docs = run_collect(func(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                            y_positions=stxm.y_positions, **kw))
    start = docs[0][1]
    args = json.loads(json.dumps(start["plan_args"]))  # as a catalog gives them back
    for name in ("detector", "mono", "stage"):
        assert isinstance(args.pop(name), str)  # (a repr)
    again = run_collect(func(stxm.detector, stxm.mono, stxm.stage, **args))[0][1]
    assert again["planner_kwargs"] == start["planner_kwargs"]
    assert again["energies"] == start["energies"] and again["shape"] == start["shape"]


def test_user_hints_are_merged_and_the_raster_says_how_many_rows(sample):
    """md={"hints": ...} replaced the plan's hints (the energy axis of live plots was lost)."""
    stxm = make_stxm(sample, noise=False)
    start = run_collect(plans.raster_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                                          y_positions=stxm.y_positions, analysis=False,
                                          md={"hints": {"gridding": "rectilinear"}}))[0][1]
    assert start["hints"]["gridding"] == "rectilinear"
    assert [list(d) for d in start["hints"]["dimensions"]] == [[["mono_energy"], "primary"]]
    assert start["num_points"] == sample.energies.size * sample.shape[0]


def test_supplemental_data_records_a_baseline_with_the_plans(sample):
    """docs/howto-own-devices.md: extra signals go through bluesky's SupplementalData."""
    from bluesky.preprocessors import SupplementalData
    from ophyd import Signal

    ring = Signal(name="ring_current", value=500.0)
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    RE.preprocessors.append(SupplementalData(baseline=[ring]))
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(plans.curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                         y_positions=stxm.y_positions, sampling_ratio=0.2, seed=0, analysis=False))
    base = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == "baseline"}
    values = [d["data"]["ring_current"] for n, d in docs if n == "event" and d["descriptor"] in base]
    assert values == [500.0, 500.0]  # at the start and at the end
    assert [d["exit_status"] for n, d in docs if n == "stop"] == ["success"]
