"""The command line: demo (from sim_devices), show, export, compare."""

import re

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
    err = float(re.search(r"error vs truth\s+([\d.]+)%", out).group(1))
    assert err < 10
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


def test_unknown_run_is_a_clear_error(demo, capsys):
    (demo / "catalog").mkdir(exist_ok=True)
    code = main(["show", "0123456789abcdef", "--store", str(demo / "catalog")])
    assert code == 2
    assert "error" in capsys.readouterr().err


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
