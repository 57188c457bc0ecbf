"""curiss.store: the embedded Tiled catalog, its writer and load_run (design §5, §6, §6b).

One catalog directory is opened once for the module (opening costs seconds). Runs are written by
a private plan that emits the curiss document model of design §5 with ophyd signals (primary:
plain ``ophyd.Signal``s, which declare no ``dtype_numpy`` so arrays come back as float64; planner
and analysis: readables that declare ``dtype_numpy`` like ``curiss.plans`` does).

Readers checked in a separate process (started as soon as the runs are written): ``open_catalog``
+ ``load_run``; the plain Tiled client (``tiled.client.from_profile`` of a profile with an in-line
``direct:`` app, i.e. ``from_context`` on a freshly built app over the same directory, written into a
temporary ``TILED_PROFILES`` folder); databroker 2.x through ``databroker.catalog[PROFILE]`` (its
v2/v3 entry point: a ``FactoryMap`` over ``tiled.client.from_profile``), and through the v1
``databroker.Broker.named(PROFILE)`` when databroker's ``back-compat`` extra (humanize, doct,
boltons) is installed — without it ``databroker.v1`` fails to import (``No module named
'humanize'``). ``Broker.from_config`` raises NotImplementedError in databroker 2.x.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

bluesky = pytest.importorskip("bluesky")
pytest.importorskip("tiled")
pytest.importorskip("bluesky_tiled_plugins")

import bluesky.plan_stubs as bps  # noqa: E402
from bluesky import RunEngine  # noqa: E402
from ophyd import Component as Cpt  # noqa: E402
from ophyd import Device, Signal  # noqa: E402

from curiss.store import RunData, load_run, open_catalog, writer_for  # noqa: E402
from curiss.store import _catalog  # noqa: E402

SEEDS = [0, 1]


# ----------------------------------------------------------------------------- the test plan
class _LineDetector(Device):
    """Named "detector": reads detector_line (n_x,), detector_i0, detector_dwell."""

    line = Cpt(Signal, value=np.zeros(1))
    i0 = Cpt(Signal, value=1.0)
    dwell = Cpt(Signal, value=1e-3)


# the plans' own readable for computed streams (planner, analysis)
from curiss.plans import _Record  # noqa: E402


def _key(dtype, shape=(), np_dtype=None):
    d = {"source": "test", "dtype": dtype, "shape": list(shape)}
    if np_dtype is not None:
        d["dtype_numpy"] = np.dtype(np_dtype).str
    return d


def _content(seed, n_e=4, n_y=5, n_x=6):
    """Everything a run will hold: energies, acquisition order, lines, I0, decisions, analysis."""
    rng = np.random.default_rng(seed)
    energies = 280.0 + np.cumsum(rng.uniform(0.5, 2.0, n_e))
    full = int(rng.integers(n_e))  # one full image, then random rows at other energies
    pairs = [(full, y) for y in range(n_y)]
    others = [(e, y) for e in range(n_e) for y in range(n_y) if e != full]
    pick = rng.choice(len(others), size=int(rng.integers(3, 8)), replace=False)
    pairs += [others[i] for i in pick]
    order = np.array(pairs, dtype=np.int64)
    i0 = rng.uniform(900.0, 1100.0, len(order))
    od_true = rng.uniform(0.1, 2.0, (len(order), n_x))
    lines = np.maximum(rng.poisson(i0[:, None] * np.exp(-od_true)), 1).astype(float)
    mask = np.zeros((n_e, n_y, n_x), bool)
    mask[order[:, 0], order[:, 1]] = True
    decisions = []
    for it, (lo, hi, kind) in enumerate([(0, n_y, "image"), (n_y, len(order), "rows")]):
        req = np.zeros((n_e, n_y), np.uint8)
        req[order[lo:hi, 0], order[lo:hi, 1]] = 1
        decisions.append({
            "iteration": it, "kind": kind, "request": req,
            "energy_weights": rng.random(n_e), "row_weights": rng.random(n_y),
            "rank": it + 1, "condition": float(rng.uniform(1, 10)),
            "completion_variation": np.nan if it == 0 else float(rng.random()),
            "spectral_variation": float(rng.random()), "sampling_ratio": float(hi * n_x / mask.size),
            "time": float(rng.uniform(1, 100)), "dose": float(rng.uniform(1, 100)),
            "stop_reason": "" if it == 0 else "budget",
        })
    analysis = {
        "completed": rng.random((n_e, n_y, n_x)), "mask": mask.astype(np.uint8),
        "labels": rng.integers(0, 3, (n_y, n_x)).astype(np.int64),
        "cluster_spectra": rng.random((n_e, 3)), "eigenspectra": rng.random((n_e, 2)),
    }
    return {"energies": energies, "shape": (n_y, n_x), "order": order, "i0": i0, "lines": lines,
            "decisions": decisions, "analysis": analysis, "seed": seed}


def _curiss_like_plan(c, *, fail_after=None, abort_after_decision=False):
    """Emit the curiss document model (design §5) for the content ``c``."""
    n_e, (n_y, n_x) = len(c["energies"]), c["shape"]
    det = _LineDetector(name="detector")
    mono = Signal(name="mono_energy", value=0.0)
    e_idx = Signal(name="energy_index", value=0)
    r_idx = Signal(name="row_index", value=0)
    stage_y = Signal(name="stage_y", value=0.0)
    planner = _Record("planner", {
        "iteration": _key("integer", (), "int64"), "kind": _key("string"),
        "request": _key("array", (n_e, n_y), "uint8"),
        "energy_weights": _key("array", (n_e,), "float64"),
        "row_weights": _key("array", (n_y,), "float64"),
        "rank": _key("integer", (), "int64"), "condition": _key("number", (), "float64"),
        "completion_variation": _key("number", (), "float64"),
        "spectral_variation": _key("number", (), "float64"),
        "sampling_ratio": _key("number", (), "float64"), "time": _key("number", (), "float64"),
        "dose": _key("number", (), "float64"), "stop_reason": _key("string"),
    })
    ana = _Record("analysis", {
        "completed": _key("array", (n_e, n_y, n_x), "float64"),
        "mask": _key("array", (n_e, n_y, n_x), "uint8"),
        "labels": _key("array", (n_y, n_x), "int64"),
        "cluster_spectra": _key("array", (n_e, 3), "float64"),
        "eigenspectra": _key("array", (n_e, 2), "float64"),
    })
    y_positions = (np.arange(n_y) * 0.5).tolist()
    md = {
        "plan_name": "_curiss_like_plan", "plan_args": {"seed": c["seed"]}, "method": "curiss",
        "energies": c["energies"].tolist(), "shape": list(c["shape"]), "y_positions": y_positions,
        "seed": c["seed"], "sampling_ratio": 0.3, "planner": "CURISSPlanner",
        "planner_kwargs": {"sampling_ratio": 0.3}, "cost_model": {"t_energy": 1.0},
        "curiss_version": "0.0.test", "schema_version": 1,
        "hints": {"dimensions": [(["mono_energy"], "primary")]},
    }
    yield from bps.open_run(md=md)
    n_first = n_y
    planner.set(c["decisions"][0])
    yield from bps.trigger_and_read([planner], name="planner")
    if abort_after_decision:
        yield from bps.close_run(exit_status="abort", reason="stopped by the user")
        return
    for k, (e, y) in enumerate(c["order"]):
        if k == n_first:
            planner.set(c["decisions"][1])
            yield from bps.trigger_and_read([planner], name="planner")
        if fail_after is not None and k == fail_after:
            raise RuntimeError("simulated hardware failure")
        yield from bps.mv(mono, float(c["energies"][e]), e_idx, int(e), r_idx, int(y),
                          stage_y, y_positions[y], det.line, c["lines"][k], det.i0, float(c["i0"][k]))
        yield from bps.trigger_and_read([det, mono, e_idx, r_idx, stage_y])
    ana.set(c["analysis"])
    yield from bps.trigger_and_read([ana], name="analysis")
    yield from bps.close_run()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("store") / "catalog"


def _spy_init(calls):
    """A subprocess.run that records `tiled catalog init` calls (how from_uri initialises)."""
    real_run = subprocess.run

    def spy(cmd, *a, **k):
        if isinstance(cmd, (list, tuple)) and "init" in cmd:
            calls.append(cmd)
        return real_run(cmd, *a, **k)

    return spy


@pytest.fixture(scope="module")
def opened(store_dir):
    """(catalog, init calls, warnings) of the first open of a new directory."""
    assert not store_dir.exists()
    calls = []
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp.setattr(subprocess, "run", _spy_init(calls))
        catalog = open_catalog(store_dir)
    return catalog, calls, caught


@pytest.fixture(scope="module")
def catalog(opened):
    return opened[0]


BATCH = 3  # the module's writer batch size


@pytest.fixture(scope="module")
def RE(catalog):
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog, batch_size=BATCH))
    return RE


def _live_reader(catalog, at=(3, 7)):
    """A callback (subscribed after the writer) that loads the run while it is being written,
    after the primary events numbered in ``at``; records (events emitted, rows loaded, stop)."""
    state = {"uid": None, "primary": None, "n": 0, "seen": []}

    def reader(name, doc):
        if name == "start":
            state["uid"] = doc["uid"]
        elif name == "descriptor" and doc["name"] == "primary":
            state["primary"] = doc["uid"]
        elif name == "event" and doc["descriptor"] == state["primary"]:
            state["n"] += 1
            if state["n"] in at:
                d = load_run(catalog[state["uid"]])
                state["seen"].append((state["n"], len(d.order), d.stop))

    return reader, state["seen"]


@pytest.fixture(scope="module")
def runs(RE, catalog):
    """seed -> (uid, content, live observations), written once for the module."""
    out = {}
    for i, seed in enumerate(SEEDS):
        c = _content(seed)
        reader, seen = _live_reader(catalog)
        token = RE.subscribe(reader) if i == 0 else None  # watch one run live
        try:
            (uid,) = RE(_curiss_like_plan(c))
        finally:
            if token is not None:
                RE.unsubscribe(token)
        out[seed] = (uid, c, seen)
    return out


@pytest.fixture(scope="module")
def child(runs, store_dir, tmp_path_factory):
    """The other-process reader (see _CHILD), started as soon as the runs are written so that
    it works while this process runs the other tests; (Popen, stdout path, stderr path)."""
    uid = runs[SEEDS[0]][0]
    tmp = tmp_path_factory.mktemp("child")
    profiles = tmp / "profiles"
    profiles.mkdir()
    profile = "curiss_store_test"
    (profiles / "curiss.yml").write_text(textwrap.dedent(f"""\
        {profile}:
          direct:
            catalog:
              uri: "sqlite:///{store_dir}/catalog.db"
              writable_storage: ["{store_dir}/data", "sqlite:///{store_dir}/storage.sqlite"]
              specs: [{{name: CatalogOfBlueskyRuns, version: "3.0"}}]
        """))
    env = dict(os.environ, TILED_PROFILES=str(profiles), TILED_SITE_PROFILES=str(tmp / "none"))
    out_path, err_path = tmp / "stdout", tmp / "stderr"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(store_dir), uid, profile],
                                stdout=out, stderr=err, env=env)
    yield proc, out_path, err_path
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def loaded(runs, catalog, child):
    return {seed: load_run(catalog[uid]) for seed, (uid, *_) in runs.items()}


def _expected_od(c):
    n_e, (n_y, n_x) = len(c["energies"]), c["shape"]
    od = np.full((n_e, n_y, n_x), np.nan)
    od[c["order"][:, 0], c["order"][:, 1]] = -np.log(c["lines"] / c["i0"][:, None])
    return od


# ----------------------------------------------------------------------------- tests
def test_open_catalog_creates_directory_with_bluesky_spec(opened, store_dir):
    catalog, init_calls, caught = opened
    assert len(init_calls) == 1  # a new directory is initialised, once
    assert (store_dir / "catalog.db").is_file()
    assert len(catalog) == 0
    # Context.from_app's Starlette deprecation warning is filtered at the source, not all warnings
    assert not [w for w in caught if "starlette" in str(w.message).lower()]
    assert (store_dir / "data").is_dir()
    assert "CatalogOfBlueskyRuns" in [s.name for s in catalog.specs]
    assert open_catalog(store_dir) is catalog  # cached per resolved directory
    assert open_catalog(str(store_dir)) is catalog


@pytest.mark.parametrize("seed", SEEDS)
def test_roundtrip_in_process(runs, loaded, seed):
    uid, c, _ = runs[seed]
    data = loaded[seed]
    assert isinstance(data, RunData)
    n_e, (n_y, n_x) = len(c["energies"]), c["shape"]
    assert data.uid == uid
    assert data.start["schema_version"] == 1 and data.start["method"] == "curiss"
    assert data.stop["exit_status"] == "success" and data.exit_status == "success"
    np.testing.assert_array_equal(data.energies, c["energies"])
    assert data.shape == (n_y, n_x)
    np.testing.assert_array_equal(data.order, c["order"])
    assert data.order.dtype.kind == "i"
    assert data.od.shape == data.mask.shape == data.counts.shape == (n_e, n_y, n_x)
    expected_mask = np.zeros((n_e, n_y, n_x), bool)
    expected_mask[c["order"][:, 0], c["order"][:, 1]] = True
    np.testing.assert_array_equal(data.mask, expected_mask)
    assert data.mask.dtype == bool
    np.testing.assert_array_equal(data.od, _expected_od(c))  # NaN exactly where unmeasured
    np.testing.assert_array_equal(data.counts[c["order"][:, 0], c["order"][:, 1]], c["lines"])
    assert np.isnan(data.counts[~data.mask]).all()
    assert data.sampling_ratio == pytest.approx(expected_mask.mean())
    # primary: one entry per data key, one row per event
    for key in ["mono_energy", "energy_index", "row_index", "stage_y", "detector_line",
                "detector_i0", "detector_dwell", "time"]:
        assert len(data.primary[key]) == len(c["order"]), key
    np.testing.assert_array_equal(data.primary["detector_i0"], c["i0"])
    np.testing.assert_array_equal(data.primary["mono_energy"], c["energies"][c["order"][:, 0]])
    # planner history, with the reserved key "time" restored and request as bool
    assert len(data.history) == len(c["decisions"])
    for got, want in zip(data.history, c["decisions"]):
        assert set(got) == set(want)
        assert got["kind"] == want["kind"] and got["stop_reason"] == want["stop_reason"]
        assert got["iteration"] == want["iteration"] and got["rank"] == want["rank"]
        assert got["time"] == want["time"] and got["dose"] == want["dose"]
        np.testing.assert_array_equal(got["completion_variation"], want["completion_variation"])
        assert got["request"].dtype == bool
        np.testing.assert_array_equal(got["request"], want["request"].astype(bool))
        np.testing.assert_array_equal(got["energy_weights"], want["energy_weights"])
    # analysis
    np.testing.assert_array_equal(data.completed, c["analysis"]["completed"])
    assert data.analysis["mask"].dtype == bool
    np.testing.assert_array_equal(data.analysis["mask"], expected_mask)
    np.testing.assert_array_equal(data.analysis["labels"], c["analysis"]["labels"])
    assert data.analysis["labels"].dtype.kind == "i"
    np.testing.assert_array_equal(data.analysis["eigenspectra"], c["analysis"]["eigenspectra"])


def test_load_run_by_uid(runs, loaded, catalog, store_dir):
    uid, c, _ = runs[SEEDS[0]]
    b = load_run(uid, catalog=str(store_dir))  # a directory resolves to the cached catalog
    np.testing.assert_array_equal(b.od, loaded[SEEDS[0]].od)
    np.testing.assert_array_equal(b.order, c["order"])
    with pytest.raises(TypeError, match="catalog"):
        load_run(uid)
    with pytest.raises(KeyError, match="no run"):
        load_run("not-a-uid-at-all", catalog=catalog)
    with pytest.raises(TypeError, match="catalog entry"):
        load_run(42)


def test_failed_run_keeps_rows(RE, catalog):
    c = _content(7)
    fail_after = len(c["order"]) - 2
    uids = []
    token = RE.subscribe(lambda name, doc: uids.append(doc["uid"]), "start")
    try:
        with pytest.raises(RuntimeError, match="simulated hardware failure"):
            RE(_curiss_like_plan(c, fail_after=fail_after))
    finally:
        RE.unsubscribe(token)
    (uid,) = uids
    data = load_run(catalog[uid])
    assert data.exit_status == "fail"
    assert len(data.order) == fail_after  # rows buffered by the writer were flushed at stop
    np.testing.assert_array_equal(data.order, c["order"][:fail_after])
    partial = dict(c, order=c["order"][:fail_after], lines=c["lines"][:fail_after],
                   i0=c["i0"][:fail_after])
    np.testing.assert_array_equal(data.od, _expected_od(partial))
    assert data.completed is None and data.analysis is None
    assert len(data.history) == 2


def test_rows_visible_while_running(runs):
    """With batch size b, a reader during the run sees all but at most b - 1 rows."""
    _, _, seen = runs[SEEDS[0]]
    assert len(seen) == 2
    for emitted, stored, stop in seen:
        assert stop is None
        assert emitted - (BATCH - 1) <= stored <= emitted


def test_reopen_existing_does_not_reinitialise(store_dir, runs, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", _spy_init(calls))
    monkeypatch.setattr(_catalog, "_CACHE", {})  # forget the module's open catalog
    again = open_catalog(store_dir)
    assert calls == []
    uid, c, _ = runs[SEEDS[1]]
    assert uid in again
    assert open_catalog(store_dir) is again


def test_bad_arguments(catalog, tmp_path):
    with pytest.raises(TypeError, match="store must be"):
        open_catalog(3)
    with pytest.raises(ValueError, match="empty"):
        open_catalog("  ")
    with pytest.raises(ValueError, match="neither an existing directory nor a Tiled profile"):
        open_catalog("no_such_profile_or_dir_4711")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        open_catalog(f)
    with pytest.raises(ValueError, match="batch_size"):
        writer_for(catalog, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        writer_for(catalog, batch_size=2.5)
    with pytest.raises(TypeError, match="Tiled container"):
        writer_for(object())
    # a '#' or '?' in the path: the catalog opened, then every write failed (the rows of each
    # run were in the journal only)
    for name in ("runs#1", "runs?x"):
        with pytest.raises(ValueError, match="storage URIs cannot hold"):
            open_catalog(tmp_path / name)
        assert not (tmp_path / name).exists()


def test_non_curiss_run_is_refused(RE, catalog):
    sig = Signal(name="plain", value=1.0)
    (uid,) = RE(_count_plan(sig))
    with pytest.raises(ValueError, match="not a curiss run"):
        load_run(catalog[uid])


def test_run_without_rows(RE, catalog):
    c = _content(5)
    (uid,) = RE(_curiss_like_plan(c, abort_after_decision=True))
    data = load_run(catalog[uid])
    n_e, (n_y, n_x) = len(c["energies"]), c["shape"]
    assert data.exit_status == "abort"
    assert data.order.shape == (0, 2)
    assert data.od.shape == (n_e, n_y, n_x) and np.isnan(data.od).all()
    assert not data.mask.any() and data.sampling_ratio == 0.0
    assert len(data.history) == 1 and data.history[0]["kind"] == "image"
    assert data.analysis is None and data.completed is None


def _count_plan(sig):
    yield from bps.open_run(md={"plan_name": "count"})
    yield from bps.trigger_and_read([sig])
    yield from bps.close_run()


_CHILD = textwrap.dedent(r"""
    import json, sys, time, warnings
    import numpy as np
    store, uid, profile = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {}
    from curiss.store import open_catalog, load_run


    def read_all():
        d = load_run(open_catalog(store)[uid])
        out["curiss"] = {"order": d.order.tolist(), "od": d.od.tolist(), "mask": d.mask.tolist(),
                         "energies": d.energies.tolist(), "exit_status": d.exit_status,
                         "n_history": len(d.history)}
        # the plain Tiled client (bluesky-tiled-plugins installed): the profile's in-line app
        from tiled.client import from_profile
        client = from_profile(profile)
        run = client[uid]
        out["tiled"] = {"client": type(client).__name__,
                        "row_index": np.asarray(run["primary"]["row_index"].read()).tolist(),
                        "line": np.asarray(run["primary"]["detector_line"].read()).tolist()}
        # databroker 2.x, v2/v3 API: databroker.catalog[profile] -> tiled.client.from_profile(profile)
        import databroker
        run = databroker.catalog[profile][uid]
        out["databroker"] = {"catalog": type(databroker.catalog[profile]).__name__,
                             "uid": run.start["uid"],
                             "energy_index": run["primary"].read()["energy_index"].values.tolist()}
        # v1 API: Broker.named(profile); needs the "back-compat" extra of databroker (humanize, ...)
        try:
            db = databroker.Broker.named(profile)
        except ImportError as err:
            out["databroker_v1"] = {"error": repr(err)}
        else:
            out["databroker_v1"] = {"row_index": db[uid].table()["row_index"].tolist()}

    # This process reads while the test process goes on writing other runs into the same
    # embedded catalog. SQLite then refuses a read now and then ("database is locked"; see
    # docs/howto-tiled-server.md): such a read is retried, a few times, and counted.
    for attempt in range(6):
        try:
            read_all()
            break
        except Exception as err:
            if "database is locked" not in str(err) or attempt == 5:
                raise
            time.sleep(1.0)
    out["locked_retries"] = attempt
    print("JSON:" + json.dumps(out))
""")


def test_other_process_reads_same_data(runs, loaded, child):
    uid, c, _ = runs[SEEDS[0]]
    here = loaded[SEEDS[0]]
    proc, out_path, err_path = child
    proc.wait(timeout=300)
    assert proc.returncode == 0, err_path.read_text()[-3000:]
    line = [ln for ln in out_path.read_text().splitlines() if ln.startswith("JSON:")][-1]
    out = json.loads(line[len("JSON:"):])
    got = out["curiss"]
    np.testing.assert_array_equal(np.array(got["order"]), here.order)
    np.testing.assert_array_equal(np.array(got["od"], dtype=float), here.od)
    np.testing.assert_array_equal(np.array(got["mask"]), here.mask)
    np.testing.assert_array_equal(np.array(got["energies"]), here.energies)
    assert got["exit_status"] == "success" and got["n_history"] == len(here.history)
    assert out["tiled"]["client"] == "CatalogOfBlueskyRuns"
    np.testing.assert_array_equal(out["tiled"]["row_index"], c["order"][:, 1])
    np.testing.assert_array_equal(out["tiled"]["line"], c["lines"])
    assert out["databroker"]["uid"] == uid
    assert out["databroker"]["catalog"] == "CatalogOfBlueskyRuns"
    np.testing.assert_array_equal(out["databroker"]["energy_index"], c["order"][:, 0])
    v1 = out["databroker_v1"]
    if "error" in v1:
        assert "No module named" in v1["error"]  # only the optional extra may be missing
    else:
        np.testing.assert_array_equal(v1["row_index"], c["order"][:, 1])
