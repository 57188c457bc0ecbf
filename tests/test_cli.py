"""The command line: demo (from sim_devices), show, export, compare, recover; its errors for
user mistakes; the one default catalog of the command line, the demo and the IPython profile."""

import ast
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from curiss.cli import build_parser, main
from curiss.io import read_nexus_results


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    return data_dir


def test_demo_show_export(demo, capsys):
    assert main(["demo", "--data-dir", str(demo), "--energies", "24", "--size", "16"]) == 0
    out = capsys.readouterr().out
    uid = re.search(r"run uid\s+(\S+)", out).group(1)
    for label in ("sampling ratio", "stopped because", "time", "dose", "peak per pixel", "error vs truth"):
        assert label in out
    assert "load_run(open_catalog(" in out and uid in out
    # each refinement shows what the default stop rule looks at
    assert re.search(r"step \d+: .*prediction error [\d.]", out), out
    assert re.search(r"step \d+: .*row coverage gap [\d.]", out), out  # why a run goes on
    # with a legend that gives the run's own limits (its start document)
    assert "waits for:\n  prediction error <= 0.35 (" in out and "row coverage gap <= 10 (" in out, out
    err = float(re.search(r"error vs truth\s+([\d.]+)%", out).group(1))
    # the printed error is that of the run's completed stack in the catalog against the phantom
    # (the demo's phantom seed is its --seed, 0 by default)
    from curiss.store import load_run, open_catalog
    from sim_devices._demo import _demo_setup

    cube = _demo_setup(24, 16, 0)[0].cube
    data = load_run(open_catalog(demo / "catalog")[uid])
    assert abs(100 * np.linalg.norm(data.completed - cube) / np.linalg.norm(cube) - err) < 0.01
    # demo seeds 0-199 of this size: median 3.4 %, worst 11.2 %, two above 10 %
    # (benchmarks/row_coverage.py demo); a bound that any seed meets, far below the 100 % of a
    # completion that knows nothing
    assert err < 20
    figs = sorted((demo / "figures" / uid[:8]).glob("*.png"))
    assert len(figs) >= 4

    assert main(["show", uid[:8], "--store", str(demo / "catalog"), "--out", str(demo / "show")]) == 0
    out = capsys.readouterr().out
    assert uid in out and "acuriss_scan" in out
    shown = {p.name for p in (demo / "show").glob("*.png")}
    assert shown == {p.name for p in figs} - {"error.png"}  # no truth known to 'show'
    assert "error.png" in {p.name for p in figs}

    nxs = demo / "run.nxs"
    assert main(["export", uid, "--store", str(demo / "catalog"), "--out", str(nxs)]) == 0
    res = read_nexus_results(nxs)
    with h5py.File(nxs) as f:
        assert "entry1" in f
    assert res["completed"].shape == (24, 16, 16) and np.all(np.isfinite(res["completed"]))
    assert res["mask"].dtype == bool and 0 < res["mask"].mean() < 1
    # the run's own times, title and stage positions (it wrote the export's time, a generic
    # title and pixel indices)
    import datetime

    with h5py.File(nxs) as f:
        entry = f["entry1"]
        times = [datetime.datetime.fromisoformat(entry[k][0].decode()).timestamp()
                 for k in ("start_time", "end_time")]
        assert times == pytest.approx([data.start["time"], data.stop["time"]], abs=1e-5)
        assert entry["title"][0].decode() == f"curiss acuriss_scan {uid}, sample {data.start['sample']}"
        y = entry["counter0/sample_y"]
        assert y.attrs["units"] == "um"  # the simulated stage's describe gives µm
        np.testing.assert_array_equal(y[()], data.start["y_positions"])


def _raster_into(catalog, *, analysis, stop_after=None, per_call=None):
    """A small raster run (6 energies x 4 x 5) into ``catalog``; aborted after ``stop_after``
    rows when given. Returns its uid."""
    import threading

    from bluesky import RunEngine
    from bluesky.utils import RunEngineInterrupted

    from curiss.plans import curiss_scan, raster_scan
    from curiss.store import writer_for
    from sim_devices import PhantomSample, make_stxm

    sample = PhantomSample(6, (4, 5), 2, seed=0, pixel_size=0.05)
    stxm = make_stxm(sample, noise=False)
    RE = RunEngine({})
    RE.subscribe(writer_for(catalog))
    if stop_after is None:
        uid, = RE(raster_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                              y_positions=stxm.y_positions, analysis=analysis), **(per_call or {}))
        return uid
    rows = []

    def pause_at(name, doc):
        if name == "event" and "detector_line" in doc["data"]:
            rows.append(doc)
            if len(rows) == stop_after:
                threading.Thread(target=RE.request_pause, kwargs={"defer": True}).start()

    RE.subscribe(pause_at)
    with pytest.raises(RunEngineInterrupted):
        RE(curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                       y_positions=stxm.y_positions, sampling_ratio=0.5, seed=0))
    RE.abort("test")
    return catalog[-1].metadata["start"]["uid"]


def test_export_of_a_run_without_analysis_stream_recomputes_its_completion(tmp_path, capsys):
    """A run with analysis=False (or a failed analysis) ended "success" with every row measured,
    and export refused it: "has no analysis stream (interrupted?)"."""
    from curiss.store import load_run, open_catalog

    catalog = open_catalog(tmp_path / "runs")
    uid = _raster_into(catalog, analysis=False, per_call={"sample": "Fe film"})
    nxs = tmp_path / "raster.nxs"
    assert main(["export", uid, "--store", str(tmp_path / "runs"), "--out", str(nxs)]) == 0
    out = capsys.readouterr().out
    assert "has no analysis stream (exit status success): exporting the completion" in out
    data = load_run(catalog[uid])
    res = read_nexus_results(nxs)
    np.testing.assert_array_equal(res["completed"], data.od)  # a raster: the measured stack
    assert res["labels"] is None
    with h5py.File(nxs) as f:
        assert f["entry1/title"][0].decode() == f"curiss raster_scan {uid}, sample Fe film"
        np.testing.assert_allclose(f["entry1/counter0/sample_y"][()], [0.0, 0.05, 0.1, 0.15])
    # a run stopped after 3 rows of its first image: nothing can be completed
    short = _raster_into(catalog, analysis=True, stop_after=3)
    assert main(["export", short, "--store", str(tmp_path / "runs"),
                 "--out", str(tmp_path / "short.nxs")]) == 2
    err = capsys.readouterr().err
    assert (f"run {short} (exit status abort) has no completion to export: its measured rows "
            f"cannot be completed (it ended after 3 rows, before the planner had what a "
            f"completion needs)") in err  # it said "(no row measured)"
    assert not (tmp_path / "short.nxs").exists()


def test_unknown_run_is_a_clear_error(tmp_path, capsys):
    from curiss.store import open_catalog

    store = tmp_path / "catalog"
    open_catalog(store)  # an existing catalog without that run
    code = main(["show", "0123456789abcdef", "--store", str(store)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"no run '0123456789abcdef' in the catalog at {store}" in err
    assert main(["export", "0123456789abcdef", "--store", str(store)]) == 2
    assert "no run '0123456789abcdef' in the catalog" in capsys.readouterr().err


def test_the_command_line_drops_tiled_startup_line(tmp_path, caplog, capsys):
    """An embedded Tiled server logs "Tiled version X" (INFO, to stderr, through its own handler)
    when a process first opens a catalog: `curiss demo` printed it just before its progress
    lines. Every command drops that line, and only that one, from Tiled's server logger."""
    import logging

    assert main(["show", "0123456789abcdef", "--store", str(tmp_path / "none")]) == 2  # any command
    capsys.readouterr()
    caplog.set_level(logging.INFO, logger="tiled.server.app")
    caplog.clear()
    log = logging.getLogger("tiled.server.app")
    log.info("Tiled version 0.0")
    log.info("another line")
    assert [r.getMessage() for r in caplog.records] == ["another line"]


def test_compare_prints_a_table(capsys):
    assert main(["compare", "phantom", "--ratio", "0.1", "--seeds", "2", "--phantom-energies", "30",
                 "--phantom-size", "16", "--strategies", "raster,curiss_authors,curiss"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("raster", "curiss"))]
    assert [line.split()[0] for line in lines] == ["raster", "curiss_authors", "curiss"]
    raster = lines[0].split()
    assert raster[1] == "1" and raster[3] == "1"  # ratio 1 / 1


def test_parser_lists_the_commands():
    sub = build_parser()._subparsers._group_actions[0].choices
    assert {"compare", "show", "export", "demo"} <= set(sub)


def test_compare_below_a_strategys_minimum_ratio_skips_only_that_strategy(capsys):
    # 40 energies x 24 x 24: CURISS needs ratio >= 0.0656 (one full image and one row per
    # energy); random rows can run at 0.06. The table has the strategy that can run and the
    # output names the one left out, with the planner's reason.
    assert main(["compare", "phantom", "--ratio", "0.06", "--seeds", "1", "--phantom-energies", "40",
                 "--phantom-size", "24", "--strategies", "random_rows,curiss"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()
            if line.startswith(("random_rows", "curiss"))] == ["random_rows", "curiss:"]
    assert re.search(r"curiss: not run \(ratio too small: minimum is 0\.06563", out), out


# ----------------------------------------------------------------- user mistakes: clear errors
REPO = Path(__file__).resolve().parents[1]


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"curiss {command}: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("argv", [["show", "0123456789abcdef"], ["export", "0123456789abcdef"],
                                  ["recover"]], ids=lambda a: a[0])
def test_read_commands_refuse_a_directory_without_catalog_and_create_nothing(argv, tmp_path, capsys):
    typo = tmp_path / "typo" / "runs"
    assert main([*argv, "--store", str(typo)]) == 2
    err = _one_line_error(capsys, argv[0])
    assert f"no catalog at {typo} (give --store the directory the runs were written to)" in err
    assert not (tmp_path / "typo").exists()
    # an existing directory without catalog.db: refused too, left empty
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv, "--store", str(empty)]) == 2
    assert f"no catalog at {empty}" in _one_line_error(capsys, argv[0])
    assert list(empty.iterdir()) == []


def test_store_given_the_demo_data_dir_suggests_its_catalog(demo, capsys):
    if not (demo / "catalog" / "catalog.db").is_file():
        pytest.skip("needs the demo run of test_demo_show_export")
    assert main(["show", "0123456789abcdef", "--store", str(demo)]) == 2
    assert f"did you mean --store {demo / 'catalog'}?" in _one_line_error(capsys, "show")


def _default_store_env(monkeypatch, data_dir):
    for name in ("CURISS_STORE", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CURISS_DATA_DIR", str(data_dir))


def test_recover_default_store_never_used_has_nothing_to_recover(tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    _default_store_env(monkeypatch, data_dir)
    assert main(["recover"]) == 0
    assert f"no catalog at {data_dir / 'catalog'} yet" in capsys.readouterr().out
    assert not data_dir.exists()
    # show and export say where they looked
    assert main(["show", "0123456789abcdef"]) == 2
    assert f"no catalog at {data_dir / 'catalog'} (the default store" in _one_line_error(capsys, "show")
    # the default folder exists but holds no catalog: something else is there, an error
    (data_dir / "catalog").mkdir(parents=True)
    assert main(["recover"]) == 2
    _one_line_error(capsys, "recover")
    # $CURISS_STORE is as explicit as --store
    monkeypatch.setenv("CURISS_STORE", str(tmp_path / "typo"))
    assert main(["recover"]) == 2
    assert f"no catalog at {tmp_path / 'typo'} (give --store" in _one_line_error(capsys, "recover")
    assert not (tmp_path / "typo").exists()


def test_recover_into_a_new_catalog_when_the_journal_holds_runs(tmp_path, capsys):
    journal = tmp_path / "journals"
    journal.mkdir()
    (journal / "x.journal").write_bytes(b"")  # no start document: recover leaves it alone
    store = tmp_path / "new"
    assert main(["recover", "--store", str(store), "--journal", str(journal)]) == 0
    out = capsys.readouterr().out
    assert f"no catalog at {store}: creating one" in out and "nothing to recover" in out
    assert (store / "catalog.db").is_file()
    # a mistyped --journal is an error, not "nothing to recover"
    assert main(["recover", "--store", str(store), "--journal", str(tmp_path / "nojournal")]) == 2
    assert "--journal" in _one_line_error(capsys, "recover")


@pytest.mark.parametrize("argv, option, bound", [
    (["--seed0", "-1", "--seeds", "1"], "--seed0", ">= 0"),
    (["--seeds", "0"], "--seeds", ">= 1"),
    (["--seeds", "-2"], "--seeds", ">= 1"),
    (["--seeds", "two"], "--seeds", ">= 1"),
    (["--phantom-seed", "-1"], "--phantom-seed", ">= 0"),
])
def test_compare_seed_options_are_checked_by_the_parser(argv, option, bound, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "phantom", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("curiss compare: error: ") and option in err and bound in err, err


def test_demo_seed_error_names_the_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--seed", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("curiss demo: error: ") and "--seed" in err and ">= 0" in err, err


def test_demo_writes_to_curiss_store_where_show_reads(tmp_path, monkeypatch, capsys):
    """Without --data-dir the demo writes its run to $CURISS_STORE, the catalog `curiss show`
    reads without --store (it used to write DATA_DIR/catalog, so `show UID` did not find it)."""
    monkeypatch.setenv("CURISS_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("CURISS_DATA_DIR", str(tmp_path / "data"))
    assert main(["demo", "--energies", "12", "--size", "8", "--no-figures"]) == 0
    out = capsys.readouterr().out
    uid = re.search(r"run uid\s+(\S+)", out).group(1)
    assert f"open_catalog({str(tmp_path / 'store')!r})" in out
    assert not (tmp_path / "data" / "catalog").exists()
    assert main(["show", uid[:8], "--out", str(tmp_path / "show")]) == 0
    assert uid in capsys.readouterr().out
    # an explicit --data-dir still names the catalog, whatever $CURISS_STORE says
    assert main(["demo", "--data-dir", str(tmp_path / "dd"), "--energies", "12", "--size", "8",
                 "--no-figures"]) == 0
    assert f"open_catalog({str(tmp_path / 'dd' / 'catalog')!r})" in capsys.readouterr().out


def test_demo_data_dir_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "some_file"
    afile.write_text("not a folder")
    for data_dir in (afile, afile / "sub"):
        assert main(["demo", "--data-dir", str(data_dir), "--energies", "12", "--size", "8"]) == 2
        err = _one_line_error(capsys, "demo")
        assert f"--data-dir {data_dir}" in err and "not a folder" in err
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize("argv, too_small, smallest", [
    (["--size", "4"], "--size 4 is too small for --energies 40", "--size 5"),
    (["--energies", "6", "--size", "8"], "--size 8 is too small for --energies 6", "--size 10"),
    (["--energies", "5", "--size", "15"], "--size 15 is too small for --energies 5", "--size 16"),
    (["--energies", "4"], "--energies 4 is too small", "--energies 5"),
    (["--energies", "1", "--size", "8"], "--energies 1 is too small", "--energies 5"),
    (["--size", "0"], "--size 0 is too small for --energies 40", "--size 5"),
])
def test_demo_refuses_a_phantom_too_small_for_its_sampling_ratio(argv, too_small, smallest,
                                                                 tmp_path, capsys):
    """The demo starts at 1.2 x the minimum ratio: on tiny phantoms that start is above what the
    demo measured (0.3 then). It created the catalog (~14 s), printed a RunEngine traceback, then
    failed with "initial_ratio must be in (0.0, 0.3]", a keyword the user never gave. Refused now
    on one line, before anything is created, with the smallest size whose first pass fits in 0.3
    of the stack (the cap is 0.4 now, which leaves room for refinements)."""
    data_dir = tmp_path / "dd"
    assert main(["demo", "--data-dir", str(data_dir), *argv, "--no-figures"]) == 2
    err = _one_line_error(capsys, "demo")
    assert too_small in err and f"use {smallest} or more" in err and "0.3" in err, err
    assert "initial_ratio" not in err
    assert not data_dir.exists()


def _bad_npz(tmp_path, kind):
    good = tmp_path / "good.npz"
    np.savez(good, energies=np.linspace(700, 730, 12), cube=np.random.default_rng(0).random((12, 8, 8)))
    path = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:2000])
    elif kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("energy od\n700 0.1\n")
    elif kind == "npy":
        np.save(tmp_path / "a.npy", np.zeros(3))
        (tmp_path / "a.npy").rename(path)
    elif kind == "empty":
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind", ["truncated", "directory", "text", "npy", "empty"])
def test_compare_on_a_file_that_is_not_an_npz_stack(kind, tmp_path, capsys):
    path = _bad_npz(tmp_path, kind)
    assert main(["compare", str(path), "--seeds", "1"]) == 2
    err = _one_line_error(capsys, "compare")
    assert f"{path}: not a valid .npz stack" in err, err
    # the loader says it, as a ValueError naming the file
    from curiss.io import load_stack

    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: not a valid .npz stack"):
        load_stack(path)


def test_compare_on_a_missing_file_names_it(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing.npz")]) == 2
    assert f"{tmp_path / 'missing.npz'}: No such file or directory" in _one_line_error(capsys, "compare")


def test_compare_dictionary_options(tmp_path, capsys):
    assert main(["compare", "phantom", "--dictionary", "nosuch.txt", "--seeds", "1"]) == 2
    err = _one_line_error(capsys, "compare")
    assert "--dictionary applies to .npz/.hdr stacks" in err and "own material spectra" in err
    with pytest.raises(SystemExit) as exc:
        main(["compare", "stack.npz", "--dictionary", "refs.txt", "--no-dictionary"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    # a reference-spectra .npz that is not one: named, no traceback
    good = tmp_path / "good.npz"
    np.savez(good, energies=np.linspace(700, 730, 12), cube=np.random.default_rng(0).random((12, 8, 8)))
    refs = _bad_npz(tmp_path, "truncated")
    assert main(["compare", str(good), "--dictionary", str(refs), "--seeds", "1"]) == 2
    assert f"{refs}: not a valid .npz reference spectra file" in _one_line_error(capsys, "compare")


# ---------------------------------------------------------- one default catalog for everything
def _profile_store() -> str:
    """CURISS_STORE as the profile's 00-catalog.py computes it (its statements before it opens
    the catalog)."""
    path = REPO / "profiles" / "profile_curiss_sim" / "startup" / "00-catalog.py"
    body = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "catalog" for t in node.targets):
            break
        body.append(node)
    ns: dict = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), ns)
    return ns["CURISS_STORE"]


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
@pytest.mark.parametrize("env, expected", [
    ({"CURISS_DATA_DIR": "TMP/cd", "XDG_DATA_HOME": "TMP/xdg"}, "TMP/cd/catalog"),
    ({"XDG_DATA_HOME": "TMP/xdg"}, "TMP/xdg/curiss/catalog"),
    ({"XDG_DATA_HOME": "relative"}, "TMP/home/.local/share/curiss/catalog"),
    ({}, "TMP/home/.local/share/curiss/catalog"),
])
def test_profile_demo_and_show_use_one_default_catalog(platform, env, expected, tmp_path,
                                                       monkeypatch, capsys):
    import sys

    from sim_devices._demo import default_data_dir

    for name in ("CURISS_STORE", "CURISS_DATA_DIR", "XDG_DATA_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("TMP", str(tmp_path)))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "platform", platform)
    expected = expected.replace("TMP", str(tmp_path))
    assert _profile_store() == expected
    assert str(default_data_dir() / "catalog") == expected
    assert main(["show", "0123456789abcdef"]) == 2
    assert f"no catalog at {expected} " in _one_line_error(capsys, "show")
    assert not Path(expected).parent.exists()  # nothing created


# ------------------------------------------------------------------------- docs run as pasted
def test_doc_pages_define_tmp_before_using_it():
    """tests/test_docs.py predefines ``tmp`` for the pages' blocks; a reader pasting them has no
    such name, so a page that uses it must define it first (docs/howto-recover-resume.md)."""
    from test_docs import PAGES, _python_blocks

    for page in PAGES:
        defined = False
        for block in _python_blocks(page):
            names = sorted((n.lineno, n.col_offset, isinstance(n.ctx, ast.Store))
                           for n in ast.walk(ast.parse(block["code"]))
                           if isinstance(n, ast.Name) and n.id == "tmp")
            for line, _, store in names:
                defined = defined or store
                assert defined, f"{page.name}:{block['line'] + line - 1}: uses tmp before defining it"


def test_compare_subtract_pre_edge(tmp_path, capsys):
    """--subtract-pre-edge EV makes a raw stack (e.g. the ALS .hdr) the stack the converted .npz
    gives; 'no' turns the format's default off; the phantom refuses it."""
    from curiss.cli import _load_for_compare

    e = np.linspace(700, 710, 11)
    rng = np.random.default_rng(0)
    offset = rng.random((1, 4, 5))
    cube = offset + np.where(e >= 705, 1.0, 0.0)[:, None, None] * rng.random((1, 4, 5))
    path = tmp_path / "s.npz"
    np.savez(path, energies=e, cube=cube)
    parser = build_parser()
    raw = _load_for_compare(parser.parse_args(["compare", str(path)]))[2]
    np.testing.assert_allclose(raw, cube)  # a curiss .npz: no subtraction by default
    sub = _load_for_compare(parser.parse_args(["compare", str(path), "--subtract-pre-edge", "705"]))[2]
    np.testing.assert_allclose(sub, cube - cube[e < 705].mean(axis=0), atol=1e-12)
    off = _load_for_compare(parser.parse_args(["compare", str(path), "--subtract-pre-edge", "no"]))[2]
    np.testing.assert_allclose(off, cube)
    assert main(["compare", "phantom", "--subtract-pre-edge", "705", "--seeds", "1"]) == 2
    assert "--subtract-pre-edge applies to stacks read from a file" in _one_line_error(capsys, "compare")
    with pytest.raises(SystemExit):
        main(["compare", str(path), "--subtract-pre-edge", "-3"])
    assert "--subtract-pre-edge" in capsys.readouterr().err


@pytest.fixture
def one_connection_attempt():
    """Tiled's client retries a refused connection with backoff (``stamina``, about 25 s in
    all); the refusal, not the retries, is what a test of the message needs."""
    try:
        import stamina  # Tiled's dependency, not ours: without it the test is only slower
    except ImportError:
        yield
        return
    with stamina.set_testing(True, attempts=1):
        yield


def test_an_unreachable_tiled_server_is_one_line_not_a_traceback(capsys, one_connection_attempt):
    """The CLI printed httpx's traceback (exit 1) for a server that is not running."""
    code = main(["show", "0123abcd", "--store", "http://127.0.0.1:9/"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "cannot reach the Tiled server at http://127.0.0.1:9/" in err


def test_compare_takes_the_analysis_settings_its_errors_ask_to_change(tmp_path, capsys):
    """On a uniform film the analysis says "lower n_clusters", which compare had no option for."""
    stack = tmp_path / "film.npz"
    np.savez(stack, energies=np.linspace(700.0, 720.0, 12), cube=np.ones((12, 16, 16)))
    args = ["compare", str(stack), "--seeds", "1", "--no-dictionary", "--ratio", "0.2",
            "--strategies", "raster,curiss"]
    assert main(args) == 2
    assert "k-means cannot find that many clusters; lower n_clusters" in capsys.readouterr().err
    assert main(args + ["--n-clusters", "1", "--n-components", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^curiss\s+0\.1\d+ / ", out, re.M), out
    with pytest.raises(SystemExit):
        main(args + ["--n-clusters", "0"])
    assert "argument --n-clusters: must be an integer >= 1; got 0" in capsys.readouterr().err


def test_compare_refuses_an_empty_strategy_list(capsys):
    """--strategies "" ran all seven strategies (an empty string counted as not given)."""
    assert main(["compare", "phantom", "--strategies", "", "--seeds", "1"]) == 2
    assert "--strategies is empty" in capsys.readouterr().err


def test_compare_names_its_strategies_and_refuses_an_unknown_one_before_reading_the_stack(capsys,
                                                                                          tmp_path):
    """--help did not say which names --strategies takes (quality.md uses curiss_images), and an
    unknown one was refused only after the stack was read (minutes for a large file)."""
    from curiss.compare import _OTHER_STRATEGIES, STRATEGIES

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["compare"]
                         .format_help().split())
    assert all(n in help_text for n in STRATEGIES + _OTHER_STRATEGIES)
    assert "default 80)" in help_text and "(default 0.01)" in help_text
    missing = tmp_path / "not-there.npz"  # never read: the strategies are checked first
    assert main(["compare", str(missing), "--strategies", "curiss,curis"]) == 2
    err = capsys.readouterr().err
    assert "--strategies: unknown ['curis']; choose from raster" in err and "not-there" not in err
