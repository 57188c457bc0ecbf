"""Speed of one ACURISS refinement step (what the planner computes between two scan steps).

A refinement step is one ``ACURISSPlanner.suggest()`` call after the initial CURISS: the CUR
completion, the spectral analysis (SVD + k-means + cluster spectra), the completion and spectral
variations and the next decision (stop check, then energy image or ARP row scan). The planner is
fed directly (``ingest``, no bluesky) from a cheap synthetic low-rank + noise float64 stack.

The machine is shared and loaded, so every number comes with a baseline measured in the same run
and the load average. Each step is timed at the same planner state (deep copies), in rotating
order, for:

- ``src (factored)``: ``ACURISSPlanner`` as shipped — the completion kept as the CUR factors
  ``L @ M`` (``L`` (n_E, r), ``M`` (r, n_pix)), the analysis and variations computed from them,
  one BLAS thread (``Planner.blas_threads = 1``);
- ``src + warm k-means``: the same with ``kmeans_warm_start=True`` (k-means starts from the
  previous step's centres, one run instead of 4);
- ``dense (old path)``: the step as it was before issue 7 (dense completion, dense analysis with
  the mixed measured/completed cube, dense completion variation), one BLAS thread — the baseline;
- optionally (``--default-blas``) the dense path with the default BLAS thread count.

The factored results are checked against the dense ones at every step (completion variation,
cluster spectra, labels' ARI, the decision). Further baselines:

- the modelled time of one spatial row scan (``curiss.cost.acquisition_cost`` of one row at every
  energy not imaged, default ``CostModel``) and of one image; and the measured time of one copy of
  the cube (memory bandwidth) as a machine-speed unit.

Run from the repository root::

    .venv/bin/python benchmarks/planner.py                          # both sizes, 6 steps (~2 min)
    .venv/bin/python benchmarks/planner.py --sizes 123x150x150 --steps 8

Goals (issue): median step ≤ 0.1 s on 123×150×150 and ≤ 2 s on 200×512×512.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import statistics
import time
from collections import defaultdict

import numpy as np
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import ThreadpoolController

import curiss.planners._strategies as strategies
from curiss.cost import CostModel, acquisition_cost
from curiss.linalg import minimum_ratio, row_basis
from curiss.planners import ACURISSPlanner

_CONTROLLER = ThreadpoolController()  # built once: building one scans every loaded library (~15-45 ms)


# ----------------------------------------------------------------------------- shared helpers
def synthetic_stack(n_energies: int, shape: tuple[int, int], *, n_materials: int = 3,
                    noise: float = 0.01, block: int = 16, rng=None):
    """A cheap low-rank + noise stack with cluster structure (float64).

    Each pixel belongs to one of ``n_materials + 1`` phases (a thin flat background and materials
    with edge-like spectra) laid out as random ``block × block`` tiles, times a smooth thickness;
    plus Gaussian noise. The noise-free cube has rank ``n_materials + 1``.

    Parameters
    ----------
    n_energies : int
        n_E.
    shape : (int, int)
        (n_y, n_x).
    n_materials : int
        Non-background phases.
    noise : float
        Standard deviation of the additive noise, OD.
    block : int
        Side of the phase tiles, pixels.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    energies : ndarray, shape (n_E,)
        eV, 700–730, strictly increasing.
    cube : ndarray, shape (n_E, n_y, n_x)
        Optical density, float64.
    spectra : ndarray, shape (n_E, n_materials + 1)
        Phase spectra (a natural dictionary).
    """
    rng = np.random.default_rng(rng)
    n_y, n_x = shape
    energies = np.linspace(700.0, 730.0, n_energies)
    t = np.linspace(0.0, 1.0, n_energies)
    spectra = [np.full(n_energies, 0.02)]
    for m in range(n_materials):
        edge = 0.25 + 0.05 * m
        peak = (0.5 + 0.8 * np.exp(-((t - edge) / 0.02) ** 2)
                + 0.4 * np.exp(-((t - 0.7 - 0.03 * m) / 0.03) ** 2))
        spectra.append(0.3 * (1 + m) * (0.2 + peak / (1 + np.exp(-(t - edge + 0.02) / 0.01))))
    spectra = np.column_stack(spectra)
    gy, gx = -(-n_y // block), -(-n_x // block)
    phase = rng.integers(0, n_materials + 1, size=(gy, gx))
    phase = np.kron(phase, np.ones((block, block), dtype=int))[:n_y, :n_x]
    yy, xx = np.meshgrid(np.linspace(0, 1, n_y), np.linspace(0, 1, n_x), indexing="ij")
    thickness = 0.6 + 0.4 * np.cos(3 * yy) * np.sin(2 * xx + 0.5)
    cube = spectra[:, phase] * thickness[None]
    cube += noise * rng.standard_normal(cube.shape)
    return energies, cube, spectra


def load_line() -> str:
    """Load averages (1, 5, 15 min), cores and versions, as one line."""
    la = os.getloadavg()
    return (f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores; "
            f"{platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}")


def median(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(statistics.median(values)) if values else float("nan")


def blas_threads(n: int | None):
    """Context: BLAS limited to ``n`` threads (None: leave the default)."""
    if n is None:
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=n, user_api="blas")


def parse_size(text: str) -> tuple[int, int, int]:
    try:
        n_e, n_y, n_x = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"size must look like 123x150x150 (n_E x n_y x n_x); got {text!r}") from None
    return n_e, n_y, n_x


# ----------------------------------------------------------------------------- instrumentation
class _Timers:
    """Accumulates wall time per category during one suggest() call."""

    def __init__(self):
        self.t = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, key):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.t[key] += time.perf_counter() - t0


TIMERS = _Timers()


class TimedACURISS(ACURISSPlanner):
    """ACURISSPlanner (the src, factored step) whose step parts are timed (CUR, decision)."""

    def _cur(self):
        with TIMERS("cur"):
            return super()._cur()

    def _stop_check(self, dc, ds):
        with TIMERS("decision"):
            return super()._stop_check(dc, ds)

    def _refine(self):
        with TIMERS("decision"):
            return super()._refine()

    @property
    def mask(self):  # the dense path builds it as the analysis' argument: part of the analysis
        with TIMERS("analysis"):
            return ACURISSPlanner.mask.fget(self)


class DenseACURISS(TimedACURISS):
    """The refinement step as it was before issue 7: the dense completion and the dense analysis.

    The completion ``res.matrix`` is formed, ``spectral_analysis`` gets the dense cube with the
    full (n_E, n_y, n_x) mask and the measured cube (mixed values), and the completion variation
    is a difference of dense cubes; the previous iterate is kept dense.
    """

    def _evaluate(self, dec_or_none):
        res = self._cur()
        with TIMERS("cur"):
            cube = res.matrix.reshape(self._od.shape)
        self._eval_extra = strategies.cur_notes(res)
        dc = ds = float("nan")
        try:
            ana = strategies.spectral_analysis(cube, n_components=self.n_components,
                                               n_clusters=self.n_clusters, seed=self._analysis_seed,
                                               mask=self.mask, measured=self._od)
            if self._prev_spectra is not None:
                if self.mode == "energies":
                    ds = strategies.spectral_variation(self._prev_spectra, ana.cluster_spectra,
                                                       normalize_post_edge=self._post_edge(),
                                                       drop_background=True)
                else:
                    ds = strategies.spectral_variation(self._prev_spectra, ana.cluster_spectra)
        except ValueError as exc:
            ana = None
            self._eval_extra["analysis_fallback"] = f"spectral analysis skipped ({exc})"
        self.analysis_ = ana
        prev = self._prev_completion
        if prev is not None:
            if not isinstance(prev, np.ndarray):  # a factored iterate from the src planner
                prev = prev.matrix.reshape(self._od.shape)
            dc = strategies.completion_variation(prev, cube)
        self._prev_completion = cube
        self._prev_spectra = None if ana is None else ana.cluster_spectra
        self._completion = cube
        self._completion_key = len(self._order)
        return res, dc, ds


def as_config(p, cls, *, warm=False, threads=1):
    """A deep copy of planner ``p`` as class ``cls`` (same state), with its BLAS setting."""
    clone = copy.deepcopy(p)
    clone.__class__ = cls
    clone.kmeans_warm_start = warm
    clone.blas_threads = threads
    return clone


def _wrap(fn, key):
    def wrapper(*args, **kwargs):
        with TIMERS(key):
            return fn(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def instrumented():
    """Time the module-level analysis and variation functions the planner calls."""
    saved = {name: getattr(strategies, name)
             for name in ("spectral_analysis", "completion_variation", "spectral_variation")}
    strategies.spectral_analysis = _wrap(saved["spectral_analysis"], "analysis")
    strategies.completion_variation = _wrap(saved["completion_variation"], "variation")
    strategies.spectral_variation = _wrap(saved["spectral_variation"], "variation")
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(strategies, name, fn)


def timed_suggest(planner):
    """(request, total seconds, {category: seconds}) of one suggest() call."""
    TIMERS.t.clear()
    t0 = time.perf_counter()
    req = planner.suggest()
    total = time.perf_counter() - t0
    parts = dict(TIMERS.t)
    parts["other"] = total - sum(parts.values())
    return req, total, parts


# ----------------------------------------------------------------------------- row basis
def row_basis_gram(images, k):
    """Prototype of ``curiss.linalg.row_basis`` through the (n_y, n_y) Gram matrix of F."""
    s, n_y, n_x = images.shape
    F = np.ascontiguousarray(images.transpose(1, 0, 2)).reshape(n_y, s * n_x)
    w, vecs = np.linalg.eigh(F @ F.T)
    return vecs[:, ::-1][:, :k]


def _subspace_gap(V1, V2):
    """sin of the largest principal angle between two orthonormal bases (n, k)."""
    s = np.linalg.svd(V1.T @ V2, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - s.min() ** 2)))


# ----------------------------------------------------------------------------- benchmark
INITIAL_RATIO = 0.02  # the planner's initial ratio, as in the quality benchmarks


def initial_ratio(n_e: int, n_y: int, n_x: int) -> float:
    """``INITIAL_RATIO``, raised to just above the stack's minimum ratio when it is below it (as
    benchmarks/quality.py does): ACURISS refuses an initial ratio it cannot spend (small stacks,
    below about 100 energies)."""
    return max(INITIAL_RATIO, 1.001 * minimum_ratio(n_e, (n_y, n_x)))


def row_scan_seconds(p, model: CostModel) -> tuple[float, float]:
    """Modelled time of one row scan (one row at every energy not imaged) and of one image."""
    n_e, (n_y, n_x) = p.energies.size, p.shape
    others = np.setdiff1d(np.arange(n_e), p.imaged_energies)
    scan = np.column_stack([others, np.zeros_like(others)])
    image = np.column_stack([np.zeros(n_y, int), np.arange(n_y)])
    return (acquisition_cost(scan, n_x, model=model).time, acquisition_cost(image, n_x, model=model).time)


def bench_size(n_e, n_y, n_x, *, steps, seed, configs):
    energies, cube, _ = synthetic_stack(n_e, (n_y, n_x), rng=seed)
    print(f"\n=== {n_e} x {n_y} x {n_x}  (cube {cube.nbytes / 2**20:.0f} MiB float64)  {load_line()}")
    # machine-speed unit measured now: one copy of the cube (a pass over n_E * n_pix floats)
    buf = np.empty_like(cube)
    copies = []
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(buf, cube)
        copies.append(time.perf_counter() - t0)
    t_copy = median(copies)
    del buf
    model = CostModel()
    # every stop test off (the variation rule with 0 tolerances; the prediction rule's numbers
    # are computed at every step whatever the rule) and the default refinement order: the
    # planner refines until max_iterations, so every step is timed
    p0 = initial_ratio(n_e, n_y, n_x)
    if p0 != INITIAL_RATIO:
        print(f"    initial_ratio raised from {INITIAL_RATIO:g} to {p0:.3g}, just above this stack's "
              f"minimum ratio (one image and one row at every other energy)")
    p = TimedACURISS(energies, (n_y, n_x), sampling_ratio=0.5, initial_ratio=p0,
                     max_iterations=steps - 1, tol_completion=0.0, tol_spectral=0.0,
                     stop_rule="variation", images_per_row=3, seed=seed)
    rows = []
    h = 0
    base = configs[0][0]
    with instrumented():
        while True:
            if h < 2:  # the initial CURISS (images, then ARP rows): not a refinement step
                req = p.suggest()
            else:
                scan_s, image_s = row_scan_seconds(p, model)
                clones = {name: as_config(p, cls, warm=warm, threads=threads)
                          for name, cls, warm, threads in configs[1:]}
                targets = {base: p, **clones}
                names = [c[0] for c in configs]
                shift = (h - 2) % len(names)  # rotate the order: no config always runs first
                res = {}
                for name in names[shift:] + names[:shift]:
                    target = targets[name]
                    with blas_threads(None if target.blas_threads is None else 1):
                        r, total, parts = timed_suggest(target)
                    formed = (target.cur_result_.matrix_formed
                              if target.cur_result_ is not None else False)
                    res[name] = (r, total, parts, target._last, target.analysis_, formed)
                req = res[base][0]
                same = all(
                    (req is None and v[0] is None)
                    or (req is not None and v[0] is not None and np.array_equal(req.pairs, v[0].pairs))
                    for name, v in res.items() if "warm" not in name)
                dense = res["dense (old path)"]
                ana, ana_d = res[base][4], dense[4]
                dc, dc_d = res[base][3][2], dense[3][2]
                check = {
                    "dc_err": abs(dc - dc_d) / max(abs(dc_d), 1e-300) if np.isfinite(dc_d) else 0.0,
                    "spectra_err": (np.linalg.norm(ana.cluster_spectra - ana_d.cluster_spectra)
                                    / np.linalg.norm(ana_d.cluster_spectra)) if ana is not None else np.nan,
                    "ari_same": adjusted_rand_score(ana_d.labels.ravel(), ana.labels.ravel())
                    if ana is not None else np.nan,
                    "ari_warm": adjusted_rand_score(ana_d.labels.ravel(),
                                                    res["src + warm k-means"][4].labels.ravel())
                    if ana is not None and "src + warm k-means" in res else np.nan,
                    "formed": res[base][5],
                }
                del clones, targets
                rec = p.history[-1]
                # the row-scan basis (ARP input): src's row_basis (Gram route, SVD fallback)
                # against the plain Gram + full eigh prototype
                k = p._chosen_rows().size + 1
                imgs = p._images()
                with blas_threads(1):
                    t0 = time.perf_counter()
                    V = row_basis(imgs, k)
                    t_rb = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    Vg = row_basis_gram(imgs, k)
                    t_rbg = time.perf_counter() - t0
                rows.append({"h": h, "kind": rec.kind, "rank": p._last[0], "scan_s": scan_s,
                             "image_s": image_s, "same_decision": same, "res": res, "check": check,
                             "row_basis": t_rb, "row_basis_gram": t_rbg,
                             "basis_gap": _subspace_gap(V[:, :min(k, 3)], Vg[:, :min(k, 3)])})
                print(f"  step {h - 1}: {rec.kind:8s} rank {p._last[0]}  "
                      + "  ".join(f"{n}={res[n][1]:.3f}s" for n in names)
                      + f"  same decision: {same}; dense completion formed in the src step: "
                      f"{check['formed']}", flush=True)
            h += 1
            if req is None:
                break
            for e, y in req.pairs:
                p.ingest(e, y, cube[e, y])
    return rows, t_copy


def report(size, rows, t_copy, configs, goal=None):
    """Print the medians of one size; ``goal`` (s) is the issue's goal for the step, None if the
    issue sets none for this size (the goal column then shows '-')."""
    n_e, n_y, n_x = size
    print(f"\n--- {n_e}x{n_y}x{n_x}: medians over {len(rows)} refinement steps; {load_line()}")
    print(f"    baseline (same run): one copy of the cube {t_copy * 1e3:.1f} ms; modelled row scan "
          f"{median(r['scan_s'] for r in rows):.1f} s, image {median(r['image_s'] for r in rows):.1f} s "
          f"(default CostModel)")
    cats = ("cur", "analysis", "variation", "decision", "other")
    print(f"    {'config':24s} {'step s':>8s} " + " ".join(f"{c:>9s}" for c in cats)
          + f" {'/row scan':>10s} {'/cube copy':>10s} {'/dense':>7s} {'goal':>6s}")
    dense = "dense (old path)"
    for name, *_ in configs:
        tot = median(r["res"][name][1] for r in rows)
        parts = [median(r["res"][name][2].get(c, 0.0) for r in rows) for c in cats]
        ratio_scan = median(r["res"][name][1] / r["scan_s"] for r in rows)
        ratio_dense = median(r["res"][name][1] / r["res"][dense][1] for r in rows)  # paired
        print(f"    {name:24s} {tot:8.3f} " + " ".join(f"{v:9.3f}" for v in parts)
              + f" {ratio_scan:10.2e} {tot / t_copy:10.1f} {ratio_dense:7.2f} "
              f"{'-' if goal is None else 'ok' if tot <= goal else 'MISS':>6s}")
    print(f"    same decisions in every config (warm k-means excluded): "
          f"{all(r['same_decision'] for r in rows)}; dense completion formed during a src step: "
          f"{any(r['check']['formed'] for r in rows)}")
    rs = [r for r in rows if r["kind"] == "row_scan"] or rows
    print(f"    row-scan basis: row_basis (src: Gram F F^T + partial eigh, SVD fallback) "
          f"{median(r['row_basis'] for r in rs):.3f} s vs prototype Gram + full eigh "
          f"{median(r['row_basis_gram'] for r in rs):.3f} s "
          f"(largest principal-angle sine of top-3 bases {max(r['basis_gap'] for r in rs):.1e})")
    for kind in ("image", "row_scan"):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            print(f"    steps deciding {kind!r} ({len(sel)}): " + "; ".join(
                f"{name} {median(r['res'][name][1] for r in sel):.3f} s (decision "
                f"{median(r['res'][name][2].get('decision', 0.0) for r in sel):.3f} s)"
                for name, *_ in configs))
    c = [r["check"] for r in rows]
    print(f"    factored vs dense: max rel. error of completion variation "
          f"{max(x['dc_err'] for x in c):.1e}, of cluster spectra {np.nanmax([x['spectra_err'] for x in c]):.1e}; "
          f"min ARI of labels {np.nanmin([x['ari_same'] for x in c]):.3f} (same k-means), "
          f"{np.nanmin([x['ari_warm'] for x in c]):.3f} (warm-started)")


def threadpool_overhead(repeats: int = 7) -> tuple[float, float]:
    """Median cost (s) of entering/leaving ``threadpool_limits(1, "openmp")`` as
    :func:`curiss.analysis.spectral_analysis` does on every call (a new controller each time), and
    of the same limit through one cached ``ThreadpoolController``."""
    from threadpoolctl import threadpool_limits

    fresh, cached = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with threadpool_limits(limits=1, user_api="openmp"):
            pass
        fresh.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with _CONTROLLER.limit(limits=1, user_api="openmp"):
            pass
        cached.append(time.perf_counter() - t0)
    return median(fresh), median(cached)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="123x150x150,200x512x512",
                    help="comma-separated n_E x n_y x n_x (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=6, help="refinement steps timed per size (>= 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--default-blas", action="store_true",
                    help="also time the dense path with the default BLAS thread count (slow)")
    args = ap.parse_args(argv)
    goals = {(123, 150, 150): 0.1, (200, 512, 512): 2.0}
    # (name, class, warm k-means, BLAS threads); the first is the planner itself
    configs = [("src (factored)", TimedACURISS, False, 1),
               ("src + warm k-means", TimedACURISS, True, 1),
               ("dense (old path)", DenseACURISS, False, 1)]
    if args.default_blas:
        configs.append(("dense, default BLAS", DenseACURISS, False, None))
    blas = [i for i in _CONTROLLER.info() if i["user_api"] == "blas"]
    print(f"curiss planner-step benchmark; {load_line()}")
    print("BLAS: " + ", ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)" for i in blas))
    fresh, cached = threadpool_overhead()
    print(f"threadpool_limits(1, 'openmp') per spectral_analysis call: {fresh * 1e3:.1f} ms fresh "
          f"vs {cached * 1e3:.2f} ms with a cached ThreadpoolController ({fresh / cached:.0f}x)")
    results = []
    for text in args.sizes.split(","):
        size = parse_size(text)
        rows, t_copy = bench_size(*size, steps=args.steps, seed=args.seed, configs=configs)
        results.append((size, rows, t_copy))
        report(size, rows, t_copy, configs, goals.get(size))
    print(f"\nfinished; {load_line()}")


if __name__ == "__main__":
    main()
