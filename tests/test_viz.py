"""curiss.viz: figures (data drawn = data given), figures_for_run, the live callback's bounds."""

import time
import types
import uuid

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import curiss  # noqa: E402
from curiss import viz  # noqa: E402

SEEDS = [0, 1, 2]


def axes_by_label(fig):
    return {ax.get_label(): ax for ax in fig.axes if ax.get_label() != "<colorbar>"}


def n_colorbars(fig):
    return sum(ax.get_label() == "<colorbar>" for ax in fig.axes)


def image_data(ax):
    (im,) = ax.get_images()
    return np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan)


def random_order(rng, n_e, n_y, n_rows):
    """n_rows distinct (energy, row) pairs in a random acquisition order."""
    flat = rng.choice(n_e * n_y, size=n_rows, replace=False)
    return np.column_stack(np.unravel_index(flat, (n_e, n_y)))


def energies(n_e):
    return np.linspace(700.0, 730.0, n_e)


# ----------------------------------------------------------------------------- plot_sampling
@pytest.mark.parametrize("seed", SEEDS)
def test_sampling_image_is_the_step_of_each_row(seed):
    rng = np.random.default_rng(seed)
    n_e, n_y, n_x = int(rng.integers(5, 30)), int(rng.integers(4, 20)), 7
    order = random_order(rng, n_e, n_y, int(rng.integers(1, n_e * n_y)))
    fig = viz.plot_sampling(order, (n_y, n_x), energies(n_e))
    assert isinstance(fig, Figure)
    ax = axes_by_label(fig)
    assert set(ax) == {"sampling", "ratio"} and n_colorbars(fig) == 1
    img = image_data(ax["sampling"])
    expected = np.full((n_e, n_y), np.nan)
    expected[order[:, 0], order[:, 1]] = np.arange(len(order))
    np.testing.assert_array_equal(img, expected)
    # the ratio curve ends at the fraction of rows measured and never decreases
    (line,) = ax["ratio"].get_lines()
    y = np.asarray(line.get_ydata())
    assert y[-1] == pytest.approx(len(order) / (n_e * n_y))
    assert np.all(np.diff(y) >= 0)
    # an int n_y is the same as the shape; inputs are not mutated
    before = order.copy()
    img2 = image_data(axes_by_label(viz.plot_sampling(order, n_y, energies(n_e)))["sampling"])
    np.testing.assert_array_equal(img2, expected)
    np.testing.assert_array_equal(order, before)


@pytest.mark.parametrize("seed", SEEDS)
def test_sampling_steps_follow_the_decisions_of_history(seed):
    rng = np.random.default_rng(seed)
    n_e, n_y = 12, 9
    pairs = random_order(rng, n_e, n_y, 40)
    cuts = np.sort(rng.choice(np.arange(1, 40), size=4, replace=False))
    groups = np.split(pairs, cuts)
    # RunData form: request (n_E, n_y) bool; Acquisition form: pairs (n, 2); a final stop record
    history = []
    for i, g in enumerate(groups):
        if i % 2:
            history.append({"iteration": i, "kind": "rows", "pairs": g})
        else:
            req = np.zeros((n_e, n_y), bool)
            req[g[:, 0], g[:, 1]] = True
            history.append({"iteration": i, "kind": "image", "request": req})
    history.append({"iteration": len(groups), "kind": "stop", "pairs": np.zeros((0, 2), int)})
    order = np.concatenate(groups)
    expected = np.full((n_e, n_y), np.nan)
    for i, g in enumerate(groups):
        expected[g[:, 0], g[:, 1]] = i
    fig = viz.plot_sampling(order, (n_y, 5), energies(n_e), history=history)
    ax = axes_by_label(fig)
    np.testing.assert_array_equal(image_data(ax["sampling"]), expected)
    (line,) = ax["ratio"].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(len(groups)))
    np.testing.assert_allclose(line.get_ydata(), np.cumsum([len(g) for g in groups]) / (n_e * n_y))
    # a history that does not request a measured row is refused, not silently drawn
    with pytest.raises(ValueError, match="no decision of history requested"):
        viz.plot_sampling(order, n_y, energies(n_e), history=history[:-2])


def test_sampling_from_a_replayed_planner():
    from curiss.datasets import make_phantom

    ph = make_phantom(20, (10, 8), 2, seed=3)
    acq = curiss.replay(curiss.CURISSPlanner(ph.energies, ph.shape, sampling_ratio=0.3, seed=3),
                        ph.cube)
    fig = viz.plot_sampling(acq.order, ph.shape, ph.energies, history=acq.history)
    img = image_data(axes_by_label(fig)["sampling"])
    np.testing.assert_array_equal(np.isfinite(img), acq.mask[:, :, 0])
    kinds = {d["iteration"]: d["kind"] for d in acq.history}
    images = acq.mask[:, :, 0].all(axis=1)
    # CURISS: the imaged energies come from the "image" decision
    assert all(kinds[int(v)] == "image" for v in img[images].ravel())


@pytest.mark.parametrize("bad, exc", [
    (np.array([[0, 99]]), ValueError), (np.zeros((3, 3), int), ValueError),
    (np.array([[0.5, 1.0]]), TypeError)])
def test_sampling_refuses_bad_order(bad, exc):
    with pytest.raises(exc):
        viz.plot_sampling(bad, (4, 4), energies(6))


# ----------------------------------------------------------------------------- plot_energies
@pytest.mark.parametrize("seed", SEEDS)
def test_energies_figure_draws_the_given_data(seed):
    rng = np.random.default_rng(seed)
    n_e = 30
    e = energies(n_e)
    spectrum = rng.random(n_e)
    imaged = rng.choice(n_e, size=5, replace=False)
    fig = viz.plot_energies(e, spectrum, imaged)
    ax = axes_by_label(fig)
    assert set(ax) == {"spectrum"}
    lines = {ln.get_label(): ln for ln in ax["spectrum"].get_lines()
             if not ln.get_label().startswith("_")}
    np.testing.assert_array_equal(lines["mean spectrum"].get_ydata(), spectrum)
    marks = [ln for k, ln in lines.items() if k.startswith("imaged")][0]
    np.testing.assert_array_equal(marks.get_xdata(), np.sort(e[imaged]))
    w = rng.random(n_e)
    fig = viz.plot_energies(e, spectrum, imaged, energy_weights=w)
    ax = axes_by_label(fig)
    assert set(ax) == {"spectrum", "weights"}
    np.testing.assert_array_equal(ax["weights"].get_lines()[0].get_ydata(), w)
    with pytest.raises(ValueError, match="imaged_energy_indices"):
        viz.plot_energies(e, spectrum, [n_e])
    with pytest.raises(ValueError, match="mean_spectrum"):
        viz.plot_energies(e, spectrum[:-1], imaged)


# ----------------------------------------------------------------------------- plot_eigen
@pytest.mark.parametrize("k", [1, 3])
def test_eigen_figure(k):
    rng = np.random.default_rng(k)
    u = np.linalg.qr(rng.standard_normal((25, k)))[0]
    imgs = rng.standard_normal((k, 6, 7))
    fig = viz.plot_eigen(u, imgs, energies=energies(25))
    ax = axes_by_label(fig)
    assert len(fig.axes) == 3 * k and n_colorbars(fig) == k
    for i in range(k):
        np.testing.assert_array_equal(image_data(ax[f"eigenimage {i}"]), imgs[i])
        np.testing.assert_array_equal(ax[f"eigenspectrum {i}"].get_lines()[0].get_ydata(), u[:, i])
    with pytest.raises(ValueError, match="eigenimages"):
        viz.plot_eigen(u, imgs[:, None])


# ----------------------------------------------------------------------------- plot_clusters
@pytest.mark.parametrize("seed", SEEDS)
def test_clusters_map_and_matched_references(seed):
    rng = np.random.default_rng(seed)
    n_e, n_c = 40, 3
    e = energies(n_e)
    x = np.linspace(0, 1, n_e)
    refs = np.column_stack([np.exp(-((x - c) / 0.05) ** 2) + 0.3 * x for c in (0.2, 0.5, 0.8)])
    refs = np.column_stack([refs, np.sin(7 * x) ** 2])  # one extra reference nobody matches
    perm = rng.permutation(n_c)
    scales = rng.uniform(0.2, 3.0, n_c)
    spectra = refs[:, perm] * scales + 1e-3 * rng.standard_normal((n_e, n_c))
    labels = rng.integers(0, n_c, size=(9, 11))
    labels[0, :n_c] = np.arange(n_c)
    names = ["A", "B", "C", "D"]
    fig = viz.plot_clusters(labels, spectra, e, references=refs, reference_names=names)
    ax = axes_by_label(fig)
    assert set(ax) == {"clusters", "spectra"} and n_colorbars(fig) == 0
    np.testing.assert_array_equal(image_data(ax["clusters"]), labels)
    lines = {ln.get_gid(): ln for ln in ax["spectra"].get_lines()}
    for c in range(n_c):
        np.testing.assert_array_equal(lines[f"cluster {c}"].get_ydata(), spectra[:, c])
        ref_line = lines[f"reference {c}"]
        np.testing.assert_allclose(ref_line.get_ydata(), scales[c] * refs[:, perm[c]], rtol=1e-2,
                                   atol=1e-2)
        assert ref_line.get_label().startswith(names[perm[c]])
    # fewer references than clusters: each reference still finds its cluster
    m = viz.match_references(spectra, refs[:, perm[:2]])
    assert [(c, j) for c, j, _, _ in m] == sorted((c, c) for c in range(2))
    with pytest.raises(ValueError, match="one name per reference"):
        viz.plot_clusters(labels, spectra, e, references=refs, reference_names=names[:2])
    with pytest.raises(ValueError, match="labels must be in"):
        viz.plot_clusters(labels + n_c, spectra, e)
    many = viz.plot_clusters(np.arange(12).reshape(3, 4), rng.random((n_e, 12)), e)
    colors = [ln.get_color() for ln in axes_by_label(many)["spectra"].get_lines()]
    assert len({tuple(np.round(matplotlib.colors.to_rgba(c), 6)) for c in colors}) == 12


# ----------------------------------------------------------------------------- plot_error_map
@pytest.mark.parametrize("seed", SEEDS)
def test_error_map(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random((15, 6, 8))
    truth[:, 0, 0] = 0.0
    completed = truth + 0.05 * rng.standard_normal(truth.shape)
    fig = viz.plot_error_map(completed, truth)
    ax = axes_by_label(fig)
    assert set(ax) == {"error map", "histogram"} and n_colorbars(fig) == 1
    img = image_data(ax["error map"])
    diff = completed - truth
    rms = np.sqrt(np.mean(np.sum(truth**2, axis=0)))
    np.testing.assert_allclose(img, np.sqrt(np.sum(diff**2, axis=0)) / rms)
    # rms mode: the map's root-mean-square is the global relative error
    assert np.sqrt(np.mean(img**2)) == pytest.approx(np.linalg.norm(diff) / np.linalg.norm(truth))
    per_pixel = viz.pixel_relative_error(completed, truth, normalize="pixel")
    assert np.isnan(per_pixel[0, 0])
    np.testing.assert_allclose(per_pixel[1:], np.linalg.norm(diff[:, 1:], axis=0)
                               / np.linalg.norm(truth[:, 1:], axis=0))
    with pytest.raises(ValueError, match="shape"):
        viz.plot_error_map(completed, truth[:, :-1])


# ----------------------------------------------------------------------------- figures_for_run
def fake_run(seed, *, analysis=True):
    """A RunData-like namespace of a small random acquisition (RunData's history format)."""
    rng = np.random.default_rng(seed)
    n_e, n_y, n_x = 16, 8, 6
    truth = rng.random((n_e, n_y, n_x))
    imaged = rng.choice(n_e, 3, replace=False)
    rows = rng.choice(n_y, 2, replace=False)
    req0 = np.zeros((n_e, n_y), bool)
    req0[imaged] = True
    req1 = np.zeros((n_e, n_y), bool)
    req1[:, rows] = True
    req1[imaged] = False
    w = rng.random(n_e)
    history = [
        {"iteration": 0, "kind": "image", "request": req0, "energy_weights": w / w.sum()},
        {"iteration": 1, "kind": "rows", "request": req1, "energy_weights": np.full(n_e, np.nan)},
        {"iteration": 2, "kind": "stop", "request": np.zeros((n_e, n_y), bool),
         "energy_weights": np.full(n_e, np.nan)},
    ]
    order = np.concatenate([np.argwhere(req0), np.argwhere(req1)])
    mask = np.zeros((n_e, n_y, n_x), bool)
    mask[order[:, 0], order[:, 1]] = True
    od = np.where(mask, truth, np.nan)
    completed = truth + 0.01 * rng.standard_normal(truth.shape)
    ana = None
    if analysis:
        res = curiss.spectral_analysis(completed, n_components=2, n_clusters=3, seed=seed)
        ana = {"completed": completed, "mask": mask, "labels": res.labels,
               "cluster_spectra": res.cluster_spectra, "eigenspectra": res.eigenspectra}
    data = types.SimpleNamespace(energies=energies(n_e), shape=(n_y, n_x), order=order,
                                 history=history, mask=mask, od=od,
                                 completed=completed if analysis else None, analysis=ana)
    return data, truth


@pytest.mark.parametrize("seed", [0])
def test_figures_for_run_writes_every_figure(tmp_path, seed):
    data, truth = fake_run(seed)
    notes = []
    paths = viz.figures_for_run(data, tmp_path / "figs", truth=truth, references=truth[:, 0, :3],
                                prefix="run-", notes=notes, dpi=40)
    assert [p.name for p in paths] == [f"run-{n}.png" for n in viz.FIGURE_NAMES]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert notes == []


def test_figures_for_run_colours_a_resumed_runs_reused_rows_as_one_earlier_step(tmp_path):
    """A resumed run holds the rows of the run it resumes (``reused``, first in ``order``) but
    not the decisions that asked for them: its sampling figure fell back to acquisition order
    with a note that blamed the data ("history and order do not belong together")."""
    data, _ = fake_run(0)
    n_first = int(np.asarray(data.history[0]["request"]).sum())
    resumed = types.SimpleNamespace(**{**vars(data), "history": data.history[1:],
                                       "reused": n_first})  # decision 0 was the earlier run's
    notes = []
    viz.figures_for_run(resumed, tmp_path, notes=notes, dpi=40)
    assert not any("do not belong together" in n for n in notes), notes
    assert any(f"the {n_first} rows reused from the run(s) this one resumes show as step 0" in n
               for n in notes), notes


def test_figures_for_run_skips_what_is_missing(tmp_path):
    data, _ = fake_run(0, analysis=False)
    notes = []
    paths = viz.figures_for_run(data, tmp_path, notes=notes, dpi=40)
    assert [p.name for p in paths] == ["sampling.png", "energies.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["energies.png", "sampling.png"]
    assert any("eigen" in n and "no analysis stream" in n for n in notes)
    assert any("clusters" in n and "no analysis stream" in n for n in notes)
    assert any("error" in n and "no truth" in n for n in notes)
    # an empty run (no rows yet) still gives a clear answer, not an exception
    empty = types.SimpleNamespace(energies=data.energies, shape=data.shape,
                                  order=np.zeros((0, 2), int), history=[], mask=None,
                                  od=np.full(data.od.shape, np.nan), completed=None, analysis=None)
    notes = []
    paths = viz.figures_for_run(empty, tmp_path / "empty", notes=notes, dpi=40)
    assert paths == []  # no sampling figure, and no energies.png of an all-NaN spectrum
    assert any("sampling" in n for n in notes)
    assert any("energies" in n and "no measured OD" in n for n in notes), notes
    with pytest.raises(ValueError, match="truth"):
        viz.figures_for_run(data, tmp_path, truth=np.zeros((2, 2, 2)))
    # a history that does not fit the rows: still drawn (by acquisition order), with a note
    broken = types.SimpleNamespace(**{**vars(data), "history": data.history[:1]})
    notes = []
    paths = viz.figures_for_run(broken, tmp_path / "broken", notes=notes, dpi=40)
    assert paths[0].name == "sampling.png"
    assert any("does not fit" in n for n in notes)


# ----------------------------------------------------------------------------- live callback
def fake_stream(n_e, n_y, n_x, n_rows, rng, *, with_planner=True):
    """Documents of one curiss run: start, descriptors, planner + primary events, stop."""
    start = {"uid": str(uuid.uuid4()), "time": time.time(), "energies": energies(n_e).tolist(),
             "shape": [n_y, n_x], "method": "fake", "line_key": "det_line", "i0_key": "det_i0"}
    prim = {"uid": str(uuid.uuid4()), "run_start": start["uid"], "name": "primary"}
    plan = {"uid": str(uuid.uuid4()), "run_start": start["uid"], "name": "planner"}
    docs = [("start", start), ("descriptor", prim), ("descriptor", plan)]
    order = random_order(rng, n_e, n_y, n_rows)
    for k, (e, y) in enumerate(order):
        if with_planner and k % 100 == 0:
            docs.append(("event", {"descriptor": plan["uid"], "seq_num": k // 100 + 1,
                                   "data": {"iteration": k // 100, "kind": "rows"}}))
        docs.append(("event", {"descriptor": prim["uid"], "seq_num": k + 1,
                               "data": {"energy_index": int(e), "row_index": int(y),
                                        "det_line": rng.uniform(0.2, 1.0, n_x) * 1e4,
                                        "det_i0": 1e4}}))
    stop = ("stop", {"uid": str(uuid.uuid4()), "run_start": start["uid"], "exit_status": "success"})
    return docs, stop, order


def feed(cb, docs, pause=0.0):
    """Send docs to cb, pausing between events like an acquisition; returns the time in cb.

    The time is this thread's CPU time (what the callback costs; wall time would also count
    the moments another process holds the core, which on a loaded CI machine is noise).
    """
    spent = 0.0
    for name, doc in docs:
        t0 = time.thread_time()
        cb(name, doc)
        spent += time.thread_time() - t0
        if pause and name == "event":
            t_end = time.perf_counter() + pause
            while time.perf_counter() < t_end:
                pass
    return spent


def test_live_callback_cost_is_small(tmp_path):
    """Per-event bookkeeping of 1000 rows at 1 ms each costs < 5 % of the stream.

    (Frames are kept out of this measure with a long min_interval; their share of the time is
    bounded by max_busy, see test_live_callback_slow_frames_lower_the_frame_rate.)
    """
    rng = np.random.default_rng(0)
    docs, stop, order = fake_stream(60, 40, 64, 1000, rng)
    # the least of three streams: another process on the same core inflates even CPU time
    # (measured 23-32 ms alone; 55 and 71 ms in two full-suite runs beside other jobs)
    runs = []
    for _ in range(3):
        cb = viz.LiveCompletionPlot(min_interval=600.0, save_to=tmp_path / "live.png")
        t0 = time.perf_counter()
        runs.append((feed(cb, docs, pause=1e-3), time.perf_counter() - t0, cb))
    spent, elapsed, cb = min(runs, key=lambda r: r[0])
    assert cb.n_events == 1000 and cb.n_redraws == 0
    assert spent < 0.05 * 1000 * 1e-3, f"callback took {spent:.3f} s of a {elapsed:.2f} s stream"
    assert not (tmp_path / "live.png").exists()
    cb(*stop)  # the final frame
    assert cb.n_redraws == 1
    assert (tmp_path / "live.png").read_bytes()[:4] == b"\x89PNG"


def test_live_callback_rate_is_bounded():
    rng = np.random.default_rng(1)
    docs, stop, order = fake_stream(40, 30, 16, 1000, rng)
    cb = viz.LiveCompletionPlot(min_interval=0.1)
    t0 = time.perf_counter()
    feed(cb, docs, pause=1e-3)
    elapsed = time.perf_counter() - t0
    assert 1 <= cb.n_redraws <= elapsed / 0.1 + 1
    n = cb.n_redraws
    cb(*stop)
    assert cb.n_redraws <= n + 1
    # the steps it drew are the decision of each row (a planner event every 100 rows)
    expected = np.full((40, 30), np.nan)
    expected[order[:, 0], order[:, 1]] = np.arange(len(order)) // 100
    np.testing.assert_array_equal(cb.steps, expected)
    img = image_data(axes_by_label(cb.figure)["sampling"])
    np.testing.assert_array_equal(img, expected)


def test_live_callback_slow_frames_lower_the_frame_rate():
    """A frame slower than min_interval (a big save_to) must not eat the acquisition's time."""
    rng = np.random.default_rng(4)
    docs, stop, order = fake_stream(40, 30, 16, 600, rng)
    cb = viz.LiveCompletionPlot(min_interval=1e-3, max_busy=0.1)
    frame = 0.03

    def slow_render():
        t_end = time.perf_counter() + frame
        while time.perf_counter() < t_end:
            pass

    cb._draw = slow_render
    t0 = time.perf_counter()
    spent = feed(cb, docs, pause=1e-3)
    elapsed = time.perf_counter() - t0
    assert cb.n_redraws >= 1
    assert spent <= 0.1 * elapsed + 2 * frame, f"{spent:.3f} s drawing in {elapsed:.3f} s"


def test_live_callback_ignores_other_runs_and_streams():
    rng = np.random.default_rng(2)
    docs, stop, order = fake_stream(10, 6, 5, 30, rng, with_planner=False)
    cb = viz.LiveCompletionPlot(min_interval=1e-3)
    start_uid = docs[0][1]["uid"]
    other = {"uid": str(uuid.uuid4()), "time": time.time(), "plan_name": "count"}  # not curiss
    foreign = {"uid": str(uuid.uuid4()), "run_start": other["uid"], "name": "primary"}
    baseline = {"uid": str(uuid.uuid4()), "run_start": start_uid, "name": "baseline"}
    noise = [("start", other), ("descriptor", foreign), ("descriptor", baseline),
             ("event", {"descriptor": foreign["uid"], "data": {"energy_index": 0, "row_index": 0}}),
             ("event", {"descriptor": baseline["uid"],
                        "data": {"energy_index": 1, "row_index": 1}}),
             ("event", {"descriptor": "unknown", "data": {}}),
             ("resource", {"uid": "r"}), ("nonsense", {}),
             ("stop", {"uid": "s", "run_start": other["uid"]})]
    mixed = docs[:3] + noise + docs[3:]
    mixed.insert(5, ("event", {"descriptor": docs[1][1]["uid"], "data": {"row_index": "x"}}))
    feed(cb, mixed)
    expected = np.full((10, 6), np.nan)
    expected[order[:, 0], order[:, 1]] = np.arange(len(order))
    np.testing.assert_array_equal(cb.steps, expected)
    assert cb.n_events == len(order)
    # event pages are unpacked like events
    cb2 = viz.LiveCompletionPlot(min_interval=100.0)
    prim_uid = docs[1][1]["uid"]
    evs = [d for n, d in docs if n == "event" and d["descriptor"] == prim_uid]
    page = {"descriptor": prim_uid, "seq_num": [d["seq_num"] for d in evs],
            "data": {k: [d["data"][k] for d in evs] for k in evs[0]["data"]}}
    feed(cb2, docs[:3] + [("event_page", page)])
    np.testing.assert_array_equal(cb2.steps, expected)


@pytest.mark.parametrize("bad, exc", [({"min_interval": 0}, ValueError),
                                      ({"min_interval": "x"}, TypeError),
                                      ({"completion": "always"}, ValueError),
                                      ({"max_busy": 0}, ValueError),
                                      ({"figure": object()}, TypeError)])
def test_live_callback_refuses_bad_arguments(bad, exc):
    with pytest.raises(exc):
        viz.LiveCompletionPlot(**bad)


# bluesky's per-call metadata overrides the plan's start-document keys of the same name: the
# live view used to read those, not the plan's own copy (start["curiss"])
@pytest.mark.parametrize("per_call", [{}, {"method": "STXM stack", "shape": [1, 1],
                                           "energies": [700.0, 701.0]}], ids=["plain", "per_call_md"])
def test_live_callback_under_a_run_engine(tmp_path, per_call):
    bluesky = pytest.importorskip("bluesky")
    from curiss.plans import subsampled_scan
    from sim_devices import PhantomSample, make_stxm

    sample = PhantomSample(16, (8, 6), 2, seed=1)
    stxm = make_stxm(sample, noise=False, seed=1)
    planner = curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.3, seed=1)
    cb = viz.LiveCompletionPlot(planner, min_interval=0.5, save_to=tmp_path / "frame.png",
                                dpi=40)
    RE = bluesky.RunEngine({})
    RE(subsampled_scan(planner, stxm.detector, stxm.mono, stxm.stage,
                       y_positions=stxm.y_positions, n_clusters=2), cb, **per_call)
    assert cb.n_events == len(planner.order) and cb.n_redraws >= 1
    history = [d.as_dict() for d in planner.history]
    np.testing.assert_array_equal(
        cb.steps, viz.sampling_steps(planner.order, planner.shape, sample.energies.size,
                                     history=history))
    # the last frame shows the completed cube of the analysis event at the latest energy
    e = int(planner.order[-1, 0])
    img = image_data(axes_by_label(cb.figure)["image"])
    np.testing.assert_allclose(img, planner.completed()[e])
    assert (tmp_path / "frame.png").stat().st_size > 0


class _FakePlanner:
    """Just what the live view uses: energies, completed() and latest_completion."""

    def __init__(self, cube):
        self.energies = energies(cube.shape[0])
        self.cube = cube
        self.calls = 0

    @property
    def latest_completion(self):
        return self.cube

    def completed(self):
        self.calls += 1
        return self.cube


@pytest.mark.parametrize("mode", ["cached", "compute", "never"])
def test_live_callback_draws_a_copy_of_the_planner_completion(mode):
    rng = np.random.default_rng(3)
    docs, stop, order = fake_stream(10, 6, 5, 20, rng, with_planner=False)
    cube = rng.random((10, 6, 5))
    planner = _FakePlanner(cube)
    cb = viz.LiveCompletionPlot(planner, min_interval=100.0, completion=mode)
    feed(cb, docs)
    assert cb.n_redraws == 0  # nothing drawn before min_interval
    cb.redraw()
    e = int(order[-1, 0])
    img = image_data(axes_by_label(cb.figure)["image"])
    if mode == "never":  # the measured rows at that energy, blank elsewhere
        measured = np.zeros(6, bool)
        measured[order[order[:, 0] == e, 1]] = True
        assert np.array_equal(np.isfinite(img).all(axis=1), measured)
        assert planner.calls == 0
    else:
        np.testing.assert_array_equal(img, cube[e])
        assert planner.calls == (1 if mode == "compute" else 0)
        drawn = cube[e].copy()
        cube[e] += 1.0  # the planner updates its cube in place: the frame must not change
        np.testing.assert_array_equal(image_data(axes_by_label(cb.figure)["image"]), drawn)


def test_live_callback_follows_each_new_run_from_scratch():
    """A second run on the same callback used to keep the first run's energy axis, image extent,
    event count and planner (review: 700 eV labels on a 525 eV run, an 8 x 20 image squeezed
    into 8 x 6)."""
    rng = np.random.default_rng(4)
    docs1, stop1, _ = fake_stream(10, 8, 6, 30, rng, with_planner=False)
    docs2, stop2, order2 = fake_stream(7, 8, 20, 12, rng, with_planner=False)
    docs2[0][1]["energies"] = np.linspace(525.0, 545.0, 7).tolist()
    planner = _FakePlanner(rng.random((10, 8, 6)))  # the first run's planner
    planner.shape = (8, 6)
    cb = viz.LiveCompletionPlot(planner, min_interval=100.0)
    feed(cb, docs1 + [stop1])
    assert cb.n_events == 30
    feed(cb, docs2)
    cb.redraw()
    assert cb.n_events == 12
    ax_s, ax_i = axes_by_label(cb.figure)["sampling"], axes_by_label(cb.figure)["image"]
    assert image_data(ax_s).shape == (7, 8)
    labels = [ax_s.yaxis.get_major_formatter()(v, i) for i, v in enumerate(range(7))]
    assert any(t.startswith("5") for t in labels if t) and not any(t.startswith("7") for t in labels)
    img = image_data(ax_i)
    assert img.shape == (8, 20) and ax_i.get_images()[0].get_extent() == [-0.5, 19.5, 7.5, -0.5]
    # the planner is the first run's (other energies): the second run's measured rows are drawn
    e = int(order2[-1, 0])
    assert np.array_equal(np.isfinite(img).all(axis=1),
                          np.isin(np.arange(8), order2[order2[:, 0] == e, 1]))
    assert planner.calls == 0


def test_live_callback_compute_mode_draws_measured_rows_until_the_planner_can_complete(caplog):
    """completion="compute" on a planner that cannot complete yet (CURISS before its rows at every
    energy) used to log an ERROR and draw nothing on every frame."""
    rng = np.random.default_rng(5)
    docs, stop, order = fake_stream(10, 6, 5, 20, rng, with_planner=False)
    planner = _FakePlanner(rng.random((10, 6, 5)))

    def not_yet():
        planner.calls += 1
        raise RuntimeError("cannot complete: energies [0] have no measured row yet")

    planner.completed = not_yet
    cb = viz.LiveCompletionPlot(planner, min_interval=100.0, completion="compute")
    with caplog.at_level("DEBUG", logger="curiss.viz"):
        feed(cb, docs)
        cb.redraw()
    assert cb.n_redraws == 1 and planner.calls == 1
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    img = image_data(axes_by_label(cb.figure)["image"])
    e = int(order[-1, 0])
    assert np.array_equal(np.isfinite(img).all(axis=1),
                          np.isin(np.arange(6), order[order[:, 0] == e, 1]))


def test_live_callback_says_when_the_cached_completion_predates_the_latest_rows():
    """A real planner's cached completion was always labelled current. ACURISS completes at each
    decision: rows of the next request arrive after that completion."""
    from curiss.datasets import make_phantom

    ph = make_phantom(n_energies=30, shape=(16, 12), n_materials=2, seed=0, noise=0.0)
    planner = curiss.ACURISSPlanner(ph.energies, (16, 12), sampling_ratio=0.5, initial_ratio=0.15,
                                    seed=0)
    start = {"uid": str(uuid.uuid4()), "energies": ph.energies.tolist(), "shape": [16, 12],
             "line_key": "det_line", "i0_key": "det_i0"}
    prim = {"uid": str(uuid.uuid4()), "run_start": start["uid"], "name": "primary"}
    cb = viz.LiveCompletionPlot(planner, min_interval=100.0)
    feed(cb, [("start", start), ("descriptor", prim)])
    titles = []
    k = 0
    for _ in range(3):
        req = planner.suggest()
        assert req is not None
        for e, y in req.pairs:
            planner.ingest(e, y, ph.cube[e, y])
            k += 1
            feed(cb, [("event", {"descriptor": prim["uid"], "seq_num": k,
                                 "data": {"energy_index": int(e), "row_index": int(y),
                                          "det_line": 1e4 * np.exp(-ph.cube[e, y]),
                                          "det_i0": 1e4}})])
        cb.redraw()
        titles.append(axes_by_label(cb.figure)["image"].get_title())
    # the initial step's rows arrive before any completion; a refinement's after its decision's
    assert titles[0].startswith("measured rows"), titles
    assert titles[-1].startswith("latest completion (before the latest rows)\n"), titles
    planner.completed()
    cb.redraw()
    assert axes_by_label(cb.figure)["image"].get_title().startswith("latest completion\n")


def _empty_run():
    """A RunData-like run with nothing measured yet (4 energies, 3 x 2 pixels)."""
    return types.SimpleNamespace(energies=energies(4), shape=(3, 2), order=np.zeros((0, 2), int),
                                 history=[], mask=None, od=np.full((4, 3, 2), np.nan),
                                 completed=None, analysis=None)


@pytest.mark.parametrize("prefix", ["../x-", "sub/x-", ".."])
def test_figures_for_run_keeps_its_files_in_outdir(tmp_path, prefix):
    """A prefix with a path separator used to write the figures outside outdir."""
    data = _empty_run()
    with pytest.raises(ValueError, match="prefix must be a file-name prefix"):
        viz.figures_for_run(data, tmp_path / "out", prefix=prefix)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dpi", [True, "100", 0, -5, float("nan")])
def test_figures_for_run_refuses_a_bad_dpi_before_writing(tmp_path, dpi):
    """``dpi=True`` used to fail inside matplotlib after outdir was made; a string likewise."""
    data = _empty_run()
    with pytest.raises(ValueError, match="dpi must be a positive number"):
        viz.figures_for_run(data, tmp_path / "out", dpi=dpi)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="dpi must be a positive number"):
        viz.LiveCompletionPlot(dpi=dpi)


def test_match_references_names_the_cluster_spectra_when_they_are_not_finite():
    refs = np.random.default_rng(0).random((10, 2))
    spectra = refs.copy()
    spectra[3, 1] = np.inf
    with pytest.raises(ValueError, match="cluster_spectra contain NaN/Inf"):
        viz.match_references(spectra, refs)
