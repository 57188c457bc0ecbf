"""Research: does a better-conditioned CUR core, or another energy choice, close the CURISS gap at 0.05?

CURISS at ratio 0.05 on 71214078 misses the quality goals' medians (docs/quality.md). With one
ARP row and about five images the core (images x row pixels) is poorly conditioned: its singular
values after the first are 0.06-0.10 of the largest. This script measures, on the *same*
acquisition per seed (paired), other ways to complete from the measured C (all energies x the row
pixels) and R (the images):

- ``base``: the shipped CUR completion (truncated SVD of the core);
- ``tikhonov``: the core inverted with Tikhonov filtering, lambda = sigma * sqrt(max(core
  shape)), sigma the noise from second differences of the images;
- ``dictionary``: C augmented with the dictionary's spectra (scaled to C's median column norm);
- ``tikhonov+dictionary``; and each of these followed by a rank-3 truncation (``+T3``);
- ``subspace r``: the top-r left singular vectors Q of C, D = Q (Q[images])^+ R (r = 3, 4);
- ``noise-weighted``: each image's rows of the core and of R divided by that image's noise
  (the planner's robust second-difference estimate), a weighted least-squares core (the Poisson noise of OD grows
  with the absorption, so post-edge images are noisier). With fewer images than row pixels the
  core has full row rank and the images are interpolated exactly, so this cannot change the
  completion (it is the control);
- ``pixel-weighted``: the row pixels (columns of C and of the core) weighted by 1 / their
  Poisson OD noise, std ∝ sqrt(mean over energies of exp(OD)).

and two other choices of the imaged energies (new acquisitions, same seeds):

- ``energies: greedy``: the first energies by pivoted QR on the dictionary basis (deterministic
  D-optimal), instead of volume sampling;
- ``energies: best of 16``: the largest-volume of 16 volume-sampling draws.

and one other choice of the spatial row (new acquisitions, same seeds):

- ``rows: best of 8 by held-out images``: 8 ARP draws of the row set; each is scored by how
  well it predicts every image from the others (leave-one-image-out: the coefficients of the
  other images fitted on the candidate's row pixels, the prediction made over the whole field,
  summed squared error over the images' power). That is the CUR completion's own map from the
  imaged energies to one more, checked where it can be: a row whose pixels fit a map that does
  not hold elsewhere (on 71214078 the top rows, which ARP favours) scores badly. The draw with
  the smallest error is measured;
- ``rows: ARP without the first and last raster lines``: ARP on the images' row basis restricted
  to the other rows (re-orthonormalised), the rule ACURISS's pivoted refinement rows follow.

Each line is followed by the tail counts over the seeds (signal error > 0.30, ARI < 0.80).
Run from the repository root (about 2 minutes per stack; ``--variants rows``: the shipped
acquisition and the row choices only, about 1 minute per 10 seeds per stack)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality_core.py --stacks 71214078,71214098 --seeds 10
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality_core.py --variants rows --stacks 71214078,71214098,phantom --seeds 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.linalg as sla
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as Q  # noqa: E402  (the benchmarks folder)

from curiss.analysis import raw_error, signal_error, spectra_error, spectral_analysis  # noqa: E402
from curiss.linalg import arp, row_pixels, weighted_sample  # noqa: E402
from curiss.planners import CURISSPlanner  # noqa: E402
from curiss.planners._strategies import _row_noise_variance  # noqa: E402
from curiss.replay import replay  # noqa: E402

COMPLETIONS = ("base", "base+T3", "tikhonov", "tikhonov+T3", "dictionary", "dictionary+T3",
               "tikhonov+dictionary", "tikhonov+dictionary+T3", "subspace 3", "subspace 4",
               "noise-weighted", "pixel-weighted")
ENERGY_MODES = ("greedy", "best of 16")
ROW_MODE = "rows: best of 8 by held-out images"
EDGE_MODE = "rows: ARP without the first and last raster lines"


def _noise_sigma(R, shape):
    imgs = R.reshape(R.shape[0], *shape)
    d2 = imgs[:, :, 2:] - 2 * imgs[:, :, 1:-1] + imgs[:, :, :-2]
    return float(np.sqrt(np.mean(d2 ** 2) / 6))


def _complete(name, C, R, images, dictionary, shape, base):
    if name.endswith("+T3"):
        X = _complete(name[:-3], C, R, images, dictionary, shape, base)
        u, s, vt = np.linalg.svd(X, full_matrices=False)
        return (u[:, :3] * s[:3]) @ vt[:3]
    if name == "base":
        return base
    if name == "noise-weighted":  # each image's rows of U and R scaled by 1 / its noise std
        sig = np.sqrt([np.mean(_row_noise_variance(img)) for img in R.reshape(R.shape[0], *shape)])
        w = 1.0 / np.maximum(sig, 1e-12)  # the planner's robust estimate, pooled per image
        return C @ np.linalg.lstsq(w[:, None] * C[images], w[:, None] * R, rcond=1e-10)[0]
    if name == "pixel-weighted":  # row pixels weighted by 1 / their Poisson OD noise
        w = 1.0 / np.sqrt(np.mean(np.exp(np.clip(C, -5, 10)), axis=0))  # var(OD) ~ exp(OD) / I0
        return (C * w) @ np.linalg.lstsq(C[images] * w, R, rcond=1e-10)[0]
    if name.startswith("subspace"):
        q = np.linalg.svd(C, full_matrices=False)[0][:, :int(name.split()[1])]
        return q @ np.linalg.lstsq(q[images], R, rcond=None)[0]
    if "dictionary" in name:
        scale = np.median(np.linalg.norm(C, axis=0))
        C = np.hstack([C, dictionary / np.linalg.norm(dictionary, axis=0) * scale])
    U = C[images]
    if name.startswith("tikhonov"):
        lam = _noise_sigma(R, shape) * np.sqrt(max(U.shape))
        u, s, vt = np.linalg.svd(U, full_matrices=False)
        return (C @ vt.T) @ (((s / (s ** 2 + lam ** 2))[:, None] * u.T) @ R)
    return C @ np.linalg.lstsq(U, R, rcond=1e-10)[0]


class _EnergyChoice(CURISSPlanner):
    """CURISS whose first (dictionary-rank) energies are chosen greedily or best-of-m."""

    energy_mode = "greedy"

    def _choose_energies(self, n):
        imaged = self.imaged_energies
        w = self._energy_weights(imaged)
        U, sv, _ = np.linalg.svd(self.dictionary, full_matrices=False)
        r = int(np.count_nonzero(sv > 1e-8 * sv[0]))
        U = U[:, :r]
        k = min(r, n)
        if self.energy_mode == "greedy":
            chosen = [int(i) for i in sla.qr(U.T, pivoting=True)[2][:k]]
        else:
            draws = [arp(U, k, rng=self._rng) for _ in range(16)]
            chosen = [int(i) for i in max(draws, key=lambda d: np.linalg.det(U[d] @ U[d].T))]
        if len(chosen) < n:
            rest = weighted_sample(w, n - len(chosen), exclude=np.asarray(chosen, int), rng=self._rng)
            chosen += [int(i) for i in rest]
        return np.asarray(chosen, dtype=int), w


def held_out_image_error(R, pixels):
    """Leave-one-image-out error of predicting each image (rows of ``R``, k x n_pix) from the
    others with coefficients fitted on ``pixels`` only, over the images' total power."""
    total = 0.0
    for j in range(R.shape[0]):
        others = np.delete(R, j, axis=0)
        w, *_ = np.linalg.lstsq(others[:, pixels].T, R[j, pixels], rcond=None)
        total += float(np.sum((w @ others - R[j]) ** 2))
    return total / float(np.sum(R**2))


class _RowChoice(CURISSPlanner):
    """CURISS whose spatial rows are the best of 8 ARP draws by held-out image prediction."""

    def _pick_rows(self, V, k, preselected=()):
        R = self._images().reshape(self.imaged_energies.size, -1)
        if R.shape[0] < 2:
            return super()._pick_rows(V, k, preselected)
        draws = [arp(V, k, preselected=preselected, rng=self._rng) for _ in range(8)]
        errors = [held_out_image_error(R, row_pixels(d, self.shape[1])) for d in draws]
        return draws[int(np.argmin(errors))]


class _NoEdgeRows(CURISSPlanner):
    """CURISS whose spatial rows are drawn by ARP among the rows other than the raster's first
    and last lines (the images' row basis restricted to them and re-orthonormalised)."""

    def _pick_rows(self, V, k, preselected=()):
        n_y = self.shape[0]
        keep = np.setdiff1d(np.arange(n_y), [0, n_y - 1])
        if len(preselected) or keep.size < V.shape[1]:
            return super()._pick_rows(V, k, preselected)
        Q, _ = np.linalg.qr(V[keep])
        return keep[arp(Q, k, rng=self._rng)]


def _tail(rows):
    s = np.array([r["signal"] for r in rows])
    a = np.array([r["ari"] for r in rows])
    return f"{'':34s} signal > 0.30: {(s > 0.3).sum()} of {len(rows)}; ARI < 0.80: {(a < 0.8).sum()}"


def _measures(comp, ref, cube, full, ratio):
    ana = spectral_analysis(comp, n_components=3, n_clusters=4, seed=0)
    return {"ratio": ratio, "signal": signal_error(comp, ref, k=3), "raw": raw_error(comp, cube),
            "ari": adjusted_rand_score(full.labels.ravel(), ana.labels.ravel()),
            "spectra": spectra_error(full.cluster_spectra, ana.cluster_spectra)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", default="71214078,71214098")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--ratio", type=float, default=0.05)
    ap.add_argument("--variants", choices=("all", "rows"), default="all",
                    help="all (default): every completion and choice; rows: the shipped "
                         "acquisition and the row choices only")
    args = ap.parse_args(argv)
    completions = COMPLETIONS if args.variants == "all" else ("base",)
    energy_modes = ENERGY_MODES if args.variants == "all" else ()
    for name, energies, cube, dictionary, truth in Q.stacks(args.stacks.split(",")):
        if dictionary is None:
            print(f"# {name}: no dictionary, skipped")
            continue
        ref = cube if truth is None else truth
        full = spectral_analysis(ref, n_components=3, n_clusters=4, seed=0)
        shape = cube.shape[1:]
        rows = {k: [] for k in completions + tuple(f"energies: {m}" for m in energy_modes) + (ROW_MODE, EDGE_MODE)}
        for seed in range(args.seeds):
            p = CURISSPlanner(energies, shape, sampling_ratio=args.ratio, dictionary=dictionary, seed=seed)
            acq = replay(p, cube)
            D = p._od.reshape(energies.size, -1)  # measured OD (the rows of C and R are all measured)
            images = p.imaged_energies
            cols = row_pixels(p._chosen_rows(), shape[1])
            C, R = D[:, cols], D[images]
            sv = np.linalg.svd(C[images], compute_uv=False)
            print(f"{name} seed {seed}: {images.size} images, rows {p._chosen_rows().tolist()}, core "
                  f"singular values / largest {np.round(sv / sv[0], 3).tolist()}", flush=True)
            base = acq.completed.reshape(energies.size, -1)
            for k in completions:
                comp = _complete(k, C, R, images, dictionary, shape, base).reshape(cube.shape)
                rows[k].append(_measures(comp, ref, cube, full, acq.sampling_ratio))
            q = _RowChoice(energies, shape, sampling_ratio=args.ratio, dictionary=dictionary, seed=seed)
            a = replay(q, cube)
            rows[ROW_MODE].append(_measures(a.completed, ref, cube, full, a.sampling_ratio))
            q = _NoEdgeRows(energies, shape, sampling_ratio=args.ratio, dictionary=dictionary, seed=seed)
            a = replay(q, cube)
            rows[EDGE_MODE].append(_measures(a.completed, ref, cube, full, a.sampling_ratio))
            for m in energy_modes:
                q = _EnergyChoice(energies, shape, sampling_ratio=args.ratio, dictionary=dictionary, seed=seed)
                q.energy_mode = m
                a = replay(q, cube)
                rows[f"energies: {m}"].append(_measures(a.completed, ref, cube, full, a.sampling_ratio))
        print(f"\n## {name}: CURISS at {args.ratio}, {args.seeds} seeds, median / worst", flush=True)
        for k, r in rows.items():
            print(Q.summary_line(k, r), flush=True)
            print(_tail(r), flush=True)


if __name__ == "__main__":
    main()
