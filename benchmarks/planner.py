"""Speed of one ACURISS refinement step (what the planner computes between two scan steps).

A refinement step is one ``ACURISSPlanner.suggest()`` call after the initial CURISS: the CUR
completion, the spectral analysis (SVD + k-means + cluster spectra), the completion and spectral
variations and the next decision (stop check, then energy image or ARP row scan). The planner is
fed directly (``ingest``, no bluesky) from a cheap synthetic low-rank + noise float64 stack.

The machine is shared and loaded, so every number comes with a baseline measured in the same run
and the load average:

- each step is timed at the same planner state under two BLAS settings — the default thread count
  and one BLAS thread (``threadpoolctl``) — in alternating order (paired; the ratio is per step);
- a prototype of a *factored* step (the completion kept as ``L @ M`` with ``L`` (n_E, r) and
  ``M`` (r, n_pix), analysis, cluster spectra and variations computed from the factors) runs on the
  same states; its results are checked against the planner's (variation, spectra, labels);
- the modelled time of one spatial row scan (``curiss.cost.acquisition_cost`` of one row at every
  energy not imaged, default ``CostModel``) and of one image; and the measured time of one copy of
  the cube (memory bandwidth) as a machine-speed unit.

Run from the repository root::

    .venv/bin/python benchmarks/planner.py                          # both sizes, 6 steps (~3 min)
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
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import ThreadpoolController

import curiss.planners._strategies as strategies
from curiss.analysis import spectral_variation
from curiss.cost import CostModel, acquisition_cost
from curiss.linalg import row_basis
from curiss.linalg._cur import MAX_CONDITION
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
    """ACURISSPlanner whose step parts are timed (CUR, decision, the analysis' mask argument)."""

    # the planner limits BLAS itself (Planner.blas_threads = 1 by default); the benchmark sets
    # the threads from outside to compare both settings, so the planner must not override them
    blas_threads = None

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
    def mask(self):  # built as the analysis' argument inside _evaluate: part of the analysis cost
        with TIMERS("analysis"):
            return ACURISSPlanner.mask.fget(self)


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


# ----------------------------------------------------------------------------- factored prototype
class FactoredStep:
    """Prototype of a refinement step that never forms the dense completion.

    The CUR completion is kept as ``D_hat = L @ M`` (``L = C V_r S_r^-1`` (n_E, r),
    ``M = U_r^T R`` (r, n_pix)). Everything the step needs follows from the factors in
    O(n_pix r^2 + measured):

    - SVD of ``D_hat``: QR of L, then the r × r Gram of ``R_L M``;
    - k-means features ``S_k V_k^T`` (k, n_pix) as in :func:`curiss.spectral_analysis`;
    - cluster spectra of the mixed values (measured where measured, completion elsewhere):
      ``L (M onehot)`` plus a correction summed over the measured spatial rows only;
    - completion variation: ``||L1 M1 - L0 M0||_F`` from the (2r × 2r) Gram matrices.

    With ``warm_start`` the k-means starts from the previous step's centres (one run instead of
    ``n_init = 4`` k-means++ restarts); otherwise it uses the planner's own seed and settings so the
    labels can be compared with the planner's.
    """

    def __init__(self, warm_start: bool = False):
        self.warm_start = warm_start
        self.prev = None  # (L, M, spectra, centres)
        self.t = {}

    def _factors(self, p):
        n_e, (n_y, n_x) = p.energies.size, p.shape
        rows_i = p.imaged_energies
        rows_j = p._chosen_rows()
        cols = (rows_j[:, None] * n_x + np.arange(n_x)).ravel()
        D = p._od.reshape(n_e, -1)
        C, R = D[:, cols], D[rows_i]
        if not (np.all(np.isfinite(C)) and np.all(np.isfinite(R))):
            raise ValueError("C or R not finite")
        scale = 2.0 ** (np.frexp(max(np.abs(C).max(), np.abs(R).max()))[1] - 1)
        Cs, Rs = C / scale, R / scale
        G = Rs[:, cols]
        t0 = time.perf_counter()
        U, s, Vt = np.linalg.svd(G, full_matrices=False)
        self.t["core_svd"] = time.perf_counter() - t0
        r = int(np.count_nonzero(s > p.core_rtol * s[0]))
        if p.core_rank is not None:
            r = min(r, p.core_rank)
        if s[0] / s[r - 1] > MAX_CONDITION:
            r = int(np.count_nonzero(s[:r] * MAX_CONDITION >= s[0]))
        L = Cs @ (Vt[:r].T / s[:r]) * scale  # (n_e, r)
        M = U[:, :r].T @ Rs  # (r, n_pix)
        return L, M

    def run(self, p):
        """Evaluate planner ``p``'s current state. Returns a dict of results; times in ``self.t``."""
        n_e, (n_y, n_x) = p.energies.size, p.shape
        k, n_cl = p.n_components, p.n_clusters
        t = self.t
        t.clear()
        t0 = time.perf_counter()
        L, M = self._factors(p)
        t1 = time.perf_counter()
        t["cur"] = t1 - t0
        # ---- SVD of L @ M from the factors
        Q, RL = np.linalg.qr(L)
        B = RL @ M  # (r, n_pix)
        w, vecs = np.linalg.eigh(B @ B.T)
        ub = vecs[:, ::-1]
        f = ub.T @ B  # (r, n_pix) = S V^T
        sv = np.linalg.norm(f, axis=1)
        order = np.argsort(-sv, kind="stable")
        ub, f, sv = ub[:, order[:k]], f[order[:k]], sv[order[:k]]
        u = Q @ ub
        if u.shape[1] < k:  # completion of rank < k: the missing components are zero
            pad = k - u.shape[1]
            u = np.hstack([u, np.zeros((n_e, pad))])
            f = np.vstack([f, np.zeros((pad, f.shape[1]))])
        idx = np.argmax(np.abs(u), axis=0)
        signs = np.sign(u[idx, np.arange(k)])
        signs[signs == 0] = 1.0
        features = (f * signs[:, None]).T  # (n_pix, k)
        t2 = time.perf_counter()
        t["svd"] = t2 - t1
        # ---- k-means
        rng = np.random.default_rng(p._analysis_seed)
        state = int(rng.integers(0, 2**31 - 1))
        with _CONTROLLER.limit(limits=1, user_api="openmp"):
            if self.warm_start and self.prev is not None and self.prev[3].shape == (n_cl, k):
                km = KMeans(n_clusters=n_cl, init=self.prev[3], n_init=1, random_state=state)
            else:
                km = KMeans(n_clusters=n_cl, n_init=4, random_state=state)
            raw = km.fit_predict(features).astype(np.intp)
        t3 = time.perf_counter()
        t["kmeans"] = t3 - t2
        # ---- cluster spectra of the mixed values
        counts = np.bincount(raw, minlength=n_cl)
        MO = np.stack([np.bincount(raw, weights=M[j], minlength=n_cl) for j in range(M.shape[0])])
        sums = L @ MO  # (n_e, n_cl): completion summed per cluster
        pairs = np.argwhere(p._row_measured)  # measured (e, y)
        e_i, y_i = pairs[:, 0], pairs[:, 1]
        M3 = M.reshape(M.shape[0], n_y, n_x)
        comp_rows = np.einsum("mr,rmx->mx", L[e_i], M3[:, y_i, :])
        diff = p._od[e_i, y_i, :] - comp_rows  # (m, n_x)
        lab = raw.reshape(n_y, n_x)[y_i]  # (m, n_x)
        sums += np.bincount((e_i[:, None] * n_cl + lab).ravel(), weights=diff.ravel(),
                            minlength=n_e * n_cl).reshape(n_e, n_cl)
        spectra = sums / np.maximum(counts, 1)
        first = np.array([np.argmax(raw == c) for c in range(n_cl)])
        cl_order = np.lexsort((first, spectra.mean(axis=0)))
        spectra = spectra[:, cl_order]
        relabel = np.empty(n_cl, dtype=np.intp)
        relabel[cl_order] = np.arange(n_cl)
        labels = relabel[raw].reshape(n_y, n_x)
        centres = km.cluster_centers_
        t4 = time.perf_counter()
        t["spectra"] = t4 - t3
        # ---- variations
        dc = ds = float("nan")
        if self.prev is not None:
            L0, M0, s0, _ = self.prev
            A = np.hstack([L, -L0])
            Bm = np.vstack([M, M0])
            num2 = float(np.sum((A.T @ A) * (Bm @ Bm.T)))
            den2 = float(np.sum((L.T @ L) * (M @ M.T)))
            dc = np.sqrt(max(num2, 0.0) / den2)
            ds = spectral_variation(s0, spectra)
        t["variation"] = time.perf_counter() - t4
        t["total"] = time.perf_counter() - t0
        self.prev = (L, M, spectra, centres)
        return {"dc": dc, "ds": ds, "labels": labels, "spectra": spectra, "rank": L.shape[1]}


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
    p = TimedACURISS(energies, (n_y, n_x), sampling_ratio=0.5, initial_ratio=0.02,
                     max_iterations=steps - 1, tol_completion=0.0, tol_spectral=0.0, seed=seed)
    proto_same = FactoredStep(warm_start=False)
    proto_warm = FactoredStep(warm_start=True)
    rows = []
    h = 0
    with instrumented():
        while True:
            if h < 2:  # the initial CURISS (images, then ARP rows): not a refinement step
                req = p.suggest()
            else:
                scan_s, image_s = row_scan_seconds(p, model)
                clone = copy.deepcopy(p)
                order = configs if (h % 2 == 0) else configs[::-1]
                res = {}
                for name, threads in order:
                    target = p if name == configs[0][0] else clone
                    with blas_threads(threads):
                        r, total, parts = timed_suggest(target)
                    res[name] = (r, total, parts)
                req = res[configs[0][0]][0]
                other = res[configs[1][0]][0]
                same = (req is None and other is None) or (
                    req is not None and other is not None and np.array_equal(req.pairs, other.pairs))
                del clone
                # the prototypes on the same state (the decision does not change the measured data)
                with blas_threads(1):
                    out_same = proto_same.run(p)
                    t_same = dict(proto_same.t)
                    out_warm = proto_warm.run(p)
                    t_warm = dict(proto_warm.t)
                rec = p.history[-1]
                dc_planner = p._last[2]
                ds_planner = p._last[3]
                ana = p.analysis_
                check = {
                    "dc_err": abs(out_same["dc"] - dc_planner) / max(abs(dc_planner), 1e-300)
                    if np.isfinite(dc_planner) else 0.0,
                    "spectra_err": (np.linalg.norm(out_same["spectra"] - ana.cluster_spectra)
                                    / np.linalg.norm(ana.cluster_spectra)) if ana is not None else np.nan,
                    "ari_same": adjusted_rand_score(ana.labels.ravel(), out_same["labels"].ravel())
                    if ana is not None else np.nan,
                    "ari_warm": adjusted_rand_score(ana.labels.ravel(), out_warm["labels"].ravel())
                    if ana is not None else np.nan,
                }
                # the row-scan basis (ARP input) through the Gram matrix instead of a full SVD
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
                             "image_s": image_s, "same_decision": same, "res": res,
                             "proto": t_same, "proto_warm": t_warm, "check": check,
                             "row_basis": t_rb, "row_basis_gram": t_rbg,
                             "basis_gap": _subspace_gap(V[:, :min(k, 3)], Vg[:, :min(k, 3)])})
                print(f"  step {h - 1}: {rec.kind:8s} rank {p._last[0]}  "
                      + "  ".join(f"{n}={res[n][1]:.3f}s" for n, _ in configs)
                      + f"  factored={t_same['total']:.3f}s (warm k-means {t_warm['total']:.3f}s)"
                      + f"  same decision: {same}", flush=True)
            h += 1
            if req is None:
                break
            for e, y in req.pairs:
                p.ingest(e, y, cube[e, y])
    return rows, t_copy


def report(size, rows, t_copy, configs, goal):
    n_e, n_y, n_x = size
    print(f"\n--- {n_e}x{n_y}x{n_x}: medians over {len(rows)} refinement steps; {load_line()}")
    print(f"    baseline (same run): one copy of the cube {t_copy * 1e3:.1f} ms; modelled row scan "
          f"{median(r['scan_s'] for r in rows):.1f} s, image {median(r['image_s'] for r in rows):.1f} s "
          f"(default CostModel)")
    cats = ("cur", "analysis", "variation", "decision", "other")
    print(f"    {'config':22s} {'step s':>8s} " + " ".join(f"{c:>9s}" for c in cats)
          + f" {'/row scan':>10s} {'/cube copy':>10s} {'goal':>6s}")
    for name, _ in configs:
        tot = median(r["res"][name][1] for r in rows)
        parts = [median(r["res"][name][2].get(c, 0.0) for r in rows) for c in cats]
        ratio_scan = median(r["res"][name][1] / r["scan_s"] for r in rows)
        print(f"    {name:22s} {tot:8.3f} " + " ".join(f"{v:9.3f}" for v in parts)
              + f" {ratio_scan:10.2e} {tot / t_copy:10.1f} {'ok' if tot <= goal else 'MISS':>6s}")
    pcats = ("cur", "svd", "kmeans", "spectra", "variation")
    for label, key in (("factored (prototype)", "proto"), ("factored + warm k-means", "proto_warm")):
        tot = median(r[key]["total"] for r in rows)
        parts = " ".join(f"{c}={median(r[key][c] for r in rows):.3f}" for c in pcats)
        print(f"    {label:22s} {tot:8.3f}  ({parts}; decision not included) "
              f"{'ok' if tot <= goal else 'MISS'}")
    a, b = configs[0][0], configs[1][0]
    print(f"    paired ratio {a}/{b}: {median(r['res'][a][1] / r['res'][b][1] for r in rows):.2f}x; "
          f"{b}/factored: {median(r['res'][b][1] / r['proto']['total'] for r in rows):.2f}x; "
          f"same decisions under both BLAS settings: {all(r['same_decision'] for r in rows)}")
    print(f"    core SVD (the only part a rank-one CUR update replaces): "
          f"{median(r['proto']['core_svd'] for r in rows) * 1e3:.2f} ms")
    rs = [r for r in rows if r["kind"] == "row_scan"] or rows
    print(f"    row-scan basis: row_basis (full SVD of F) {median(r['row_basis'] for r in rs):.3f} s vs "
          f"Gram+eigh {median(r['row_basis_gram'] for r in rs):.3f} s "
          f"(largest principal-angle sine of top-3 bases {max(r['basis_gap'] for r in rs):.1e})")
    for kind in ("image", "row_scan"):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            print(f"    steps deciding {kind!r} ({len(sel)}): " + "; ".join(
                f"{name} total {median(r['res'][name][1] for r in sel):.3f} s, decision "
                f"{median(r['res'][name][2].get('decision', 0.0) for r in sel):.3f} s" for name, _ in configs))
    c = [r["check"] for r in rows]
    print(f"    factored vs planner: max rel. error of completion variation "
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
    args = ap.parse_args(argv)
    goals = {(123, 150, 150): 0.1, (200, 512, 512): 2.0}
    configs = [("default BLAS threads", None), ("1 BLAS thread", 1)]
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
        report(size, rows, t_copy, configs, goals.get(size, float("inf")))
    print(f"\nfinished; {load_line()}")


if __name__ == "__main__":
    main()
