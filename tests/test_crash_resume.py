"""A killed run keeps every measured row (journal + recover), and resume() continues it."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bluesky import RunEngine

import curiss
from curiss.plans import acuriss_scan, curiss_scan, resume
from curiss.store import load_run, open_catalog, read_journal, recompute, recover, writer_for
from sim_devices import PhantomSample, make_stxm

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = dict(n_energies=30, shape=(16, 12), n_materials=3, seed=1)
PLAN = dict(sampling_ratio=0.5, initial_ratio=0.1, seed=3)  # the default (prediction) stop rule

CHILD = textwrap.dedent("""
    import sys, time
    from bluesky import RunEngine
    from curiss.plans import acuriss_scan
    from curiss.store import open_catalog, writer_for
    from sim_devices import PhantomSample, make_stxm

    sample = PhantomSample(**{sample})
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({{}})
    RE.subscribe(writer_for(open_catalog(sys.argv[1])))   # the journal is on by default

    def tell(name, doc):  # subscribed after the writer: a row printed has been journaled
        if name == "start":
            print("START", doc["uid"], flush=True)
        if name == "event" and "detector_line" in doc["data"]:
            print("ROW", doc["data"]["energy_index"], doc["data"]["row_index"], flush=True)
            time.sleep(0.03)  # a slower beamline, so that the parent can kill us mid-run

    RE.subscribe(tell)
    RE(acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                    y_positions=stxm.y_positions, dictionary=sample.spectra, **{plan}))
    print("DONE", flush=True)
""").format(sample=repr(SAMPLE), plan=repr(PLAN))

READER = textwrap.dedent("""
    import json, sys
    from curiss.store import load_run, open_catalog, recover
    catalog = open_catalog(sys.argv[1])
    uid = sys.argv[2]
    try:
        before = len(load_run(catalog[uid]).order)
    except KeyError:
        before = 0
    recovered = recover(catalog)
    data = load_run(catalog[uid])
    print(json.dumps({"before": before, "recovered": recovered, "exit_status": data.exit_status,
                      "reason": data.stop.get("reason"), "rows": data.order.tolist()}))
""")


def _env():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def offline(sample):
    planner = curiss.ACURISSPlanner(sample.energies, sample.shape, dictionary=sample.spectra, **PLAN)
    return curiss.replay(planner, sample.cube)


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A child process runs ACURISS into an embedded catalog and is SIGKILLed mid-run."""
    store = tmp_path_factory.mktemp("killed") / "runs"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(store)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    uid, rows = None, []
    try:
        for line in proc.stdout:
            word, *rest = line.split()
            if word == "START":
                uid = rest[0]
            elif word == "ROW":
                rows.append((int(rest[0]), int(rest[1])))
                if len(rows) == 47:  # mid-run, between two writer batches of 10
                    proc.send_signal(signal.SIGKILL)
                    break
            elif word == "DONE":
                break
        proc.wait(timeout=60)
        rows += [(int(a), int(b)) for w, a, b in (ln.split() for ln in proc.stdout.read().splitlines()
                                                 if ln.startswith("ROW"))]
    finally:
        proc.kill()
    assert uid is not None, proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, f"the child was not killed mid-run: {proc.stderr.read()}"
    journals = list((store / "journal").glob("*.journal"))
    journal_docs = read_journal(journals[0]) if len(journals) == 1 else []
    # a new process finds the run, recovers it from the journal, and reads it back
    out = subprocess.run([sys.executable, "-c", READER, str(store), uid], capture_output=True,
                         text=True, env=_env(), cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(store=store, uid=uid, printed=rows, journals=[p.stem for p in journals],
                journal_docs=journal_docs, reader=res)


def test_killed_run_keeps_every_measured_row(killed):
    store, uid, printed, res = killed["store"], killed["uid"], killed["printed"], killed["reader"]
    assert killed["journals"] == [uid]  # left behind by the dead process
    docs = killed["journal_docs"]
    assert docs[0][0] == "start" and not any(n == "stop" for n, _ in docs)
    rows = [tuple(r) for r in res["rows"]]
    assert res["recovered"] == [uid]
    assert rows[:len(printed)] == printed  # every row measured before the kill, in order
    assert len(rows) == len(set(rows))
    # what the batched writer alone had stored: part of the run (so recover replaced a partial
    # copy), never more than was measured
    assert 10 <= res["before"] <= len(printed)
    assert res["exit_status"] == "abort" and "journal" in res["reason"]
    assert not list((store / "journal").glob("*.journal"))  # the journal is gone once written


def test_resume_continues_the_killed_run_into_a_linked_run(killed):
    store, uid = killed["store"], killed["uid"]
    catalog = open_catalog(store)
    old = load_run(catalog[uid])
    sample = PhantomSample(**SAMPLE)
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    new_uid, = RE(resume(uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    assert new.resumes == uid and new.start["resumed_rows"] == len(old.order)
    assert new.reused == len(old.order)
    assert np.array_equal(new.order[:new.reused], old.order)  # the old rows, reused as measured
    measured_now = {tuple(p) for p in new.order[new.reused:]}
    assert measured_now and not measured_now & {tuple(p) for p in old.order}  # none twice
    # the same acquisition as one uninterrupted run: same rows, same completion
    ref = offline(sample)
    assert np.array_equal(new.mask, ref.mask)
    assert sorted(map(tuple, new.order.tolist())) == sorted(map(tuple, ref.order.tolist()))
    assert np.allclose(new.completed, ref.completed, atol=1e-6 * np.abs(ref.completed).max())
    assert new.exit_status == "success"
    assert recompute(new).mask.sum() == new.mask.sum()  # the new run alone replays exactly
    # the sample was not exposed twice: the new run measured only the missing rows
    assert sample.dose.sum() > 0


def test_resume_refuses_a_finished_run_before_anything_moves(killed):
    sample = PhantomSample(**SAMPLE)
    stxm = make_stxm(sample, noise=False)
    catalog = open_catalog(killed["store"])  # (one catalog for the whole module: creating one costs seconds)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    uid, = RE(acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                           y_positions=stxm.y_positions, dictionary=sample.spectra, **PLAN))
    dose = sample.dose.sum()
    with pytest.raises(ValueError, match="finished successfully"):
        RE(resume(uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    assert sample.dose.sum() == dose
    assert not list((killed["store"] / "journal").glob(f"{uid}.journal"))  # deleted after the stop


def test_journal_survives_a_failing_catalog_writer(killed, tmp_path):
    """The catalog going away mid-run does not abort the measurement; recover() writes it later."""
    from curiss.store import JournaledWriter

    calls = {"n": 0}

    def flaky(name, doc):
        calls["n"] += 1
        if calls["n"] > 5:
            raise ConnectionError("catalog server went away")

    sample = PhantomSample(**SAMPLE)
    stxm = make_stxm(sample, noise=False)
    writer = JournaledWriter(flaky, tmp_path / "journal")
    RE = RunEngine({})
    RE.subscribe(writer)
    with pytest.warns(RuntimeWarning, match="journal"):
        uid, = RE(acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                               y_positions=stxm.y_positions, dictionary=sample.spectra, **PLAN))
    docs = read_journal(tmp_path / "journal" / f"{uid}.journal")
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "success"
    catalog = open_catalog(killed["store"])
    # the journal file itself is not its folder: refused, not "nothing to recover"
    with pytest.raises(ValueError, match="journal must be the journal folder"):
        recover(catalog, tmp_path / "journal" / f"{uid}.journal")
    assert recover(catalog, tmp_path / "journal") == [uid]
    data = load_run(catalog[uid])
    assert data.exit_status == "success"
    assert np.array_equal(data.mask, offline(sample).mask)


@pytest.mark.parametrize("first", ["writer", "journal"])
def test_a_run_nothing_can_store_any_more_is_stopped(tmp_path, monkeypatch, first):
    """A full disk under both the journal and the catalog: each failure was handled as if the
    other copy still worked, and the plan went on measuring, with nothing stored."""
    import curiss.store._journal as journal_mod
    from curiss.store import JournaledWriter

    packb, counts = journal_mod.msgpack.packb, {"writer": 0, "journal": 0}
    when = {"writer": 6, "journal": 16} if first == "writer" else {"writer": 16, "journal": 6}

    def full(kind):
        counts[kind] += 1
        if counts[kind] > when[kind]:
            raise OSError(28, "No space left on device")

    def journal_packb(*args, **kwargs):
        full("journal")
        return packb(*args, **kwargs)

    monkeypatch.setattr(journal_mod.msgpack, "packb", journal_packb)
    sample = PhantomSample(**SAMPLE)
    stxm = make_stxm(sample, noise=False)
    writer = JournaledWriter(lambda name, doc: full("writer"), tmp_path / "journal")
    RE = RunEngine({})
    RE.subscribe(writer)
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="neither the catalog "
                                                     "writer .* nor the journal can store"):
        RE(acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                        y_positions=stxm.y_positions, dictionary=sample.spectra, **PLAN))
    # stopped at the document where the second copy failed: nothing measured after it
    lost_at = max(when.values()) + 1
    assert sum(1 for name, _ in docs if name == "event") <= lost_at
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "fail"
    (path,) = (tmp_path / "journal").iterdir()
    assert path.name.endswith(".journal.incomplete")
    assert len(read_journal(path)) == when["journal"]  # what reached the journal is there


def test_repeated_primary_event_keeps_the_reading_the_planner_used(killed):
    """Bluesky replays a row's messages after an immediate pause landing after its save: the same
    pair twice in primary. load_run keeps the first (the planner's) and lists the repeat."""
    from bluesky.preprocessors import plan_mutator

    sample = PhantomSample(**SAMPLE)
    stxm = make_stxm(sample, noise=True, seed=0)
    catalog = open_catalog(killed["store"])
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    state = {"saves": 0, "cache": []}

    def replay_one_row(msg):  # what RunEngine does on rewind: re-run the messages since the checkpoint
        if msg.command == "checkpoint":
            state["cache"] = []
        else:
            state["cache"].append(msg)
        if msg.command == "save" and any(m.command == "trigger" and m.obj is stxm.detector
                                         for m in state["cache"]):
            state["saves"] += 1
            if state["saves"] == 7:
                again = list(state["cache"])

                def head():
                    yield msg
                    for m in again:
                        yield m
                return head(), None
        return None, None

    plan = curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                       y_positions=stxm.y_positions, dictionary=sample.spectra, sampling_ratio=0.2,
                       seed=5)
    uid, = RE(plan_mutator(plan, replay_one_row))
    data = load_run(catalog[uid])
    assert len(data.repeats) == 1
    e, r = data.repeats[0]
    lines = data.primary["detector_line"][(data.primary["energy_index"] == e)
                                          & (data.primary["row_index"] == r)]
    assert len(lines) == 2 and not np.array_equal(lines[0], lines[1])  # two different readings
    assert np.array_equal(data.counts[e, r], lines[0])  # the first, which the planner ingested
    recompute(data)  # the stored completion is reproduced from the kept readings


def test_recover_leaves_a_live_run_alone_and_reads_a_cut_journal(killed, tmp_path):
    from curiss.store import JournaledWriter

    seen = []
    writer = JournaledWriter(lambda name, doc: seen.append(name), tmp_path / "journal")
    start = {"uid": "0123abcd-live", "time": 1.0, "energies": np.arange(3.0)}
    writer("start", start)
    writer("descriptor", {"uid": "d1", "run_start": start["uid"], "name": "primary", "time": 1.5,
                          "data_keys": {}})
    assert seen == ["start", "descriptor"]
    catalog = open_catalog(killed["store"])
    assert recover(catalog, tmp_path / "journal") == []  # held by this (live) writer: left alone
    assert writer.path.exists()
    # a copy cut in the middle of a record, as a killed process can leave it
    cut = tmp_path / "cut.journal"
    cut.write_bytes(writer.path.read_bytes() + b"\x92\xa5even")
    docs = read_journal(cut)
    assert [n for n, _ in docs] == ["start", "descriptor"]
    assert np.array_equal(docs[0][1]["energies"], np.arange(3.0))  # arrays come back as arrays
    writer("stop", {"uid": "s1", "run_start": start["uid"], "time": 2.0, "exit_status": "success",
                    "num_events": {}})
    assert writer.path is None and not list((tmp_path / "journal").glob("*.journal"))


def test_resume_a_run_stopped_before_its_first_row(killed):
    """Nothing to reuse: the resumed run has no 'reused' stream and is the whole acquisition."""
    import threading

    from bluesky.utils import RunEngineInterrupted

    sample = PhantomSample(**SAMPLE)
    stxm = make_stxm(sample, noise=False)
    catalog = open_catalog(killed["store"])
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    token = RE.subscribe(lambda name, doc: threading.Thread(target=RE.request_pause).start()
                         if name == "start" else None)
    with pytest.raises(RunEngineInterrupted):
        RE(acuriss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                        y_positions=stxm.y_positions, dictionary=sample.spectra, **PLAN))
    RE.abort("stopped at once")
    RE.unsubscribe(token)
    old = load_run(catalog[-1])
    assert old.exit_status == "abort" and len(old.order) == 0
    new_uid, = RE(resume(old.uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    assert new.reused == 0 and new.resumes == old.uid
    assert np.array_equal(new.mask, offline(sample).mask)


def test_a_failing_journal_warns_and_the_run_goes_on_to_the_catalog(tmp_path):
    from curiss.store import JournaledWriter

    seen = []
    writer = JournaledWriter(lambda name, doc: seen.append(name), tmp_path / "journal")
    writer("start", {"uid": "0123abcd-disk-full", "time": 1.0})
    path = writer.path
    writer._file.close()
    writer._file = _FullDisk()  # the disk fills up mid-run
    with pytest.warns(RuntimeWarning, match="catalog only"):
        writer("descriptor", {"uid": "d1", "run_start": "0123abcd-disk-full", "name": "primary",
                              "time": 1.5, "data_keys": {}})
    # marked incomplete, so that recover() never takes it for the whole run
    assert not path.exists() and path.with_name(path.name + ".incomplete").exists()
    writer("stop", {"uid": "s1", "run_start": "0123abcd-disk-full", "time": 2.0,
                    "exit_status": "success", "num_events": {}})
    assert seen == ["start", "descriptor", "stop"]  # the catalog got every document
    assert not list(path.parent.iterdir())  # the partial journal is removed once the catalog has the run


class _FullDisk:
    def write(self, data):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def close(self):
        pass


def test_a_writer_failing_at_the_stop_after_the_journal_failed_is_not_silent(tmp_path):
    """The journal fails mid-run (catalog only), then the catalog writer fails on the stop
    document, where bluesky-tiled-plugins flushes its buffered rows: neither copy holds the end
    of the run, and the only sign was a log entry."""
    from curiss.store import JournaledWriter

    def writer(name, doc):
        if name == "stop":
            raise OSError(28, "No space left on device")

    journal = JournaledWriter(writer, tmp_path / "journal")
    journal("start", {"uid": "0123abcd-full-at-stop", "time": 1.0})
    journal._file.close()
    journal._file = _FullDisk()
    with pytest.warns(RuntimeWarning, match="catalog only"):
        journal("descriptor", {"uid": "d1", "run_start": "0123abcd-full-at-stop",
                               "name": "primary", "time": 1.5, "data_keys": {}})
    with pytest.warns(RuntimeWarning, match=r"failed on the run's stop document .* after the "
                                            r"journal had failed: the end of the run .* is in "
                                            r"neither copy; the journal .*incomplete holds"):
        journal("stop", {"uid": "s1", "run_start": "0123abcd-full-at-stop", "time": 2.0,
                         "exit_status": "success", "num_events": {}})


def test_a_journal_that_could_not_be_opened_is_not_named_as_holding_the_run(tmp_path,
                                                                         monkeypatch):
    """The journal's path was set before open() failed, so the message when the writer failed
    too said "the journal DIR/UID.journal holds the run" of a file that did not exist."""
    import builtins

    from curiss.store import JournaledWriter

    def writer(name, doc):
        if name == "event":
            raise OSError(28, "No space left on device")

    journal = JournaledWriter(writer, tmp_path / "journal")
    real_open = builtins.open

    def failing_open(path, *args, **kwargs):
        if str(path).endswith(".journal"):
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing_open)
    with pytest.warns(RuntimeWarning, match="cannot open the curiss journal"):
        journal("start", {"uid": "0123abcd-no-journal", "time": 1.0})
    monkeypatch.setattr(builtins, "open", real_open)
    assert journal.path is None
    with pytest.raises(RuntimeError, match="no journal could be opened"):
        journal("event", {"uid": "e1", "descriptor": "d1", "seq_num": 1, "time": 1.5,
                          "data": {}, "timestamps": {}})


# a smaller run for the tests that write documents row by row (60 rows; each row written alone
# costs tens of milliseconds, and the killed run's 240-row sample made these the suite's slowest)
SHORT = dict(n_energies=24, shape=(10, 10), n_materials=3, seed=1)


def _documents(seed=3):
    """The documents of a short CURISS run (60 rows) on ``SHORT``, as emitted (deep copies)."""
    import copy

    sample = PhantomSample(**SHORT)
    stxm = make_stxm(sample, noise=False)
    docs = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: docs.append((name, copy.deepcopy(doc))))
    RE(curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                   y_positions=stxm.y_positions, dictionary=sample.spectra, sampling_ratio=0.25,
                   seed=seed))
    return docs


def _write_journal(path, docs):
    import msgpack

    from curiss.store._journal import _default

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(msgpack.packb([n, d], default=_default, use_bin_type=True)
                              for n, d in docs))


def _rows_end(docs, n):
    """Index just after the n-th row event."""
    rows = [i for i, (name, d) in enumerate(docs) if name == "event" and "detector_line" in d["data"]]
    return rows[n - 1] + 1


def test_recover_never_replaces_catalog_rows_with_a_shorter_journal(tmp_path):
    """The journal failed (a full disk) at row 10, the catalog writer went on to row 20, then
    the process was killed: recover() used to replace the catalog's 20 rows by the journal's 10."""
    from bluesky_tiled_plugins import TiledWriter

    docs = [d for d in _documents() if d[0] != "stop"]
    uid = docs[0][1]["uid"]
    catalog = open_catalog(tmp_path / "runs")
    writer = TiledWriter(catalog, batch_size=1, max_array_size=0)  # what reached it before the kill
    for name, doc in docs[:_rows_end(docs, 20)]:
        writer(name, doc)
    journal = tmp_path / "runs" / "journal"
    _write_journal(journal / f"{uid}.journal.incomplete", docs[:_rows_end(docs, 10)])
    assert recover(catalog) == [uid]
    data = load_run(catalog[uid])
    assert len(data.order) == 20 and data.exit_status == "abort"
    assert data.stop["num_events"]["primary"] == 20
    assert not list(journal.iterdir())  # every journaled event is in the catalog's copy
    # a complete journal (the usual case) still replaces a shorter catalog copy
    _write_journal(journal / f"{uid}.journal", docs)
    catalog.delete_contents(uid, recursive=True, external_only=False)
    writer = TiledWriter(catalog, batch_size=1, max_array_size=0)
    for name, doc in docs[:_rows_end(docs, 5)]:
        writer(name, doc)
    assert recover(catalog) == [uid]
    n_rows = sum(1 for n, d in docs if n == "event" and "detector_line" in d["data"])
    assert len(load_run(catalog[uid]).order) == n_rows > 5


def test_a_damaged_journal_neither_stops_recover_nor_hides_the_others(tmp_path):
    """One bad journal used to make recover() raise (TokenError, TypeError from a flipped bit,
    or the writer refusing its documents): no other run was recovered, and a profile that
    recovers at start did not start."""
    docs = [d for d in _documents() if d[0] != "stop"]
    uid = docs[0][1]["uid"]
    journal = tmp_path / "runs" / "journal"
    _write_journal(journal / f"{uid}.journal", docs)
    # decodable up to a record whose map has a list as key (msgpack: unhashable)
    flipped = journal / "0000aaaa-flipped.journal"
    _write_journal(flipped, docs[:1])
    flipped.write_bytes(flipped.read_bytes() + b"\x81\x91\x01\x01")
    assert [n for n, _ in read_journal(flipped)] == ["start"]  # the good prefix, no exception
    # decodable, but documents the catalog writer refuses
    refused = journal / "0000bbbb-refused.journal"
    _write_journal(refused, [("start", {"uid": "0000bbbb-refused"}), ("event", {"x": 1})])
    catalog = open_catalog(tmp_path / "runs")
    with pytest.warns(RuntimeWarning, match="could not recover the journal .*0000bbbb-refused"):
        done = recover(catalog)
    assert uid in done and len(load_run(catalog[uid]).order) == sum(
        1 for n, d in docs if n == "event" and "detector_line" in d["data"])
    assert refused.exists() and not (journal / f"{uid}.journal").exists()


def test_recover_holds_the_journal_while_it_writes_it(tmp_path, monkeypatch):
    """Two recover() at once (IPython and the queue worker starting the same profile) used to
    write the same run twice: one failed with a 409 or 404 from the catalog."""
    from curiss.store import _journal

    docs = [d for d in _documents() if d[0] != "stop"]
    uid = docs[0][1]["uid"]
    path = tmp_path / "runs" / "journal" / f"{uid}.journal"
    _write_journal(path, docs)
    seen = []
    original = _journal._recover_one

    def spy(catalog, p, *args):
        seen.append(_journal._claim(p))  # what a second recover() would get now
        return original(catalog, p, *args)

    monkeypatch.setattr(_journal, "_recover_one", spy)
    catalog = open_catalog(tmp_path / "runs")
    assert recover(catalog) == [uid] and seen == [None]
    assert recover(catalog) == []  # and once done, nothing is left to claim


def test_resume_refuses_a_run_that_was_not_recovered(tmp_path):
    """A killed run without a stop document, before recover(): resume used to rebuild it from the
    catalog's rows alone and measure again the rows that only the journal held (7 of 47)."""
    from bluesky_tiled_plugins import TiledWriter

    docs = [d for d in _documents() if d[0] != "stop"]
    uid = docs[0][1]["uid"]
    catalog = open_catalog(tmp_path / "runs")
    writer = TiledWriter(catalog, batch_size=1, max_array_size=0)
    for name, doc in docs[:_rows_end(docs, 12)]:
        writer(name, doc)
    _write_journal(tmp_path / "runs" / "journal" / f"{uid}.journal", docs[:_rows_end(docs, 15)])
    sample = PhantomSample(**SHORT)
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    with pytest.raises(ValueError, match="no stop document.*recover"):
        RE(resume(uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    assert len(catalog) == 1  # nothing was opened, nothing moved
    assert recover(catalog) == [uid]
    old = load_run(catalog[uid])
    assert len(old.order) == 15 and old.exit_status == "abort"
    new_uid, = RE(resume(uid, stxm.detector, stxm.mono, stxm.stage, catalog=catalog))
    new = load_run(catalog[new_uid])
    assert new.reused == 15 and not set(map(tuple, new.order[15:])) & set(map(tuple, old.order))
