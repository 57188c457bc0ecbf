"""The acquisition strategies: full raster, random rows, RISS, CURISS and ACURISS.

References
----------
Meier, Lazzarino, Shustin, Al-Daas, Quinn, arXiv 2602.03744 (RISS, CURISS, ACURISS).
Cortinovis & Kressner 2024 (adaptive randomized pivoting). Townsend et al. 2022 (random rows +
LoopedASD baseline).
"""

from __future__ import annotations

import numbers
from collections import Counter

import numpy as np

from ..analysis import completion_variation, spectral_analysis, spectral_variation
from ..cost import acquisition_cost
from ..linalg import (RatioTooSmallError, arp, balanced_budget, budget, cur_complete,
                      images_first_budget, looped_asd, pivoted_rows, residual_row_norms, row_basis,
                      row_pixels, weighted_sample)
from ..linalg._checks import as_bool, as_float, as_int, as_rtol
from ._base import Decision, Planner, cur_notes, grid_pairs, guard_asd_completion, validate_ratio

#: defaults of the energy selection and the budget split (see docs/quality.md for the measurements)
ENERGY_SAMPLING = "volume"
BUDGET_RULE = "balanced"
#: budget rule of earlier versions (and still RISS's default); runs recorded without a
#: ``budget_rule`` were planned with it
PREVIOUS_BUDGET_RULE = "images"
BUDGET_RULES = ("balanced", "images", "authors")
_TOL_VARIATION = 1e-2  # default tol_completion / tol_spectral of the variation stop rule
#: how ACURISS chooses a refinement image (see ACURISSPlanner)
ENERGY_REFINEMENTS = ("residual", "dictionary")
#: how ACURISS chooses a refinement row scan (see ACURISSPlanner)
ROW_REFINEMENTS = ("pivoted", "arp")

__all__ = ["RasterPlanner", "RandomRowsPlanner", "RISSPlanner", "CURISSPlanner", "ACURISSPlanner"]


class RasterPlanner(Planner):
    """Conventional full raster: every spatial row at every energy (the reference acquisition).

    ``sampling_ratio`` is accepted for a uniform constructor and must be 1 (the default). A
    failed row (:meth:`~curiss.planners.Planner.mark_failed`) is asked for again in the next
    request; when it fails :attr:`MAX_RETRIES_OF_A_FAILED_ROW` + 1 times the raster goes on
    without it and ends with a stop reason that names its energies (no completion: the raster
    is incomplete).
    """

    method = "raster"

    def __init__(self, energies, shape, *, sampling_ratio: float = 1.0, dictionary=None, seed=None,
                 cost_model=None):
        super().__init__(energies, shape, sampling_ratio=sampling_ratio, dictionary=dictionary,
                         seed=seed, cost_model=cost_model)
        if self.sampling_ratio != 1.0:
            raise ValueError(f"RasterPlanner measures everything: sampling_ratio must be 1; got {sampling_ratio}")

    #: times a failed row is asked for again before the raster goes on without it
    MAX_RETRIES_OF_A_FAILED_ROW = 1

    def _decide(self):
        if self._row_measured.all():
            return None
        n_e = self.energies.size
        fails = Counter((e, r) for e, r, _ in self.failed)
        todo = [(int(e), int(r)) for e, r in np.argwhere(~self._row_measured)
                if fails[(int(e), int(r))] <= self.MAX_RETRIES_OF_A_FAILED_ROW]
        if not todo:  # every row left failed again when asked for again: it was asked for for ever
            lost = np.argwhere(~self._row_measured)
            energies = sorted({int(e) for e, _ in lost})
            self.stop_reason = (
                f"{len(lost)} row(s) could not be measured, also when asked for again (energies "
                f"{energies[:10]}{' ...' if len(energies) > 10 else ''}; see the planner's failed "
                f"rows): the raster is incomplete")
            return None
        return Decision(0, "image", np.asarray(todo, dtype=int).reshape(-1, 2), rank=n_e)

    def _complete(self):
        if not self._row_measured.all():
            raise RuntimeError("the raster is not finished: some rows are not measured"
                               + (f" ({self.stop_reason})" if self.stop_reason else " yet"))
        return self._od.copy()


class _ASDCompletion:
    """Mixin: completion by LoopedASD on the measured mask (RISS and random rows)."""

    def _init_asd(self, max_rank, asd_tol):
        # checked here, not at the completion: a plan refuses them before anything moves
        self.max_rank = None if max_rank is None else as_int(max_rank, "max_rank", minimum=1)
        self.asd_tol = as_float(asd_tol, "asd_tol", minimum=0.0)
        self._completion_seed = int(self._rng.integers(2**31))
        self.asd_result_ = None

    def _after_stop(self):
        # the completion's notes (LoopedASD convergence, fallback) belong in the stop record,
        # which the plan records before it asks for the completion: compute it now (cached)
        try:
            self.completed()
        except RuntimeError:  # nothing to complete from: the plan's completed() says why
            return
        self.history[-1].extra.update(self.numerics_)

    def _no_completion_reason(self) -> str | None:
        """Why LoopedASD cannot complete what was measured (energies without any row, or
        spatial rows measured at no energy), or None."""
        bare = np.flatnonzero(~self._row_measured.any(axis=1))
        if bare.size:
            ev = ", ".join(f"{self.energies[e]:g}" for e in bare[:5])
            return (f"failed rows left no LoopedASD completion: energies {bare[:5].tolist()} "
                    f"({ev} eV) could not be measured at any of the rows tried there (see the "
                    f"planner's failed rows)")
        unseen = np.flatnonzero(~self._row_measured.any(axis=0))
        if unseen.size:
            return (f"failed rows left no LoopedASD completion: spatial rows "
                    f"{unseen[:5].tolist()} were measured at no energy (their pixels have no "
                    f"data; see the planner's failed rows)")
        return None

    def _complete(self):
        n_e = self.energies.size
        if not self._row_measured.any(axis=1).all():
            missing = np.flatnonzero(~self._row_measured.any(axis=1))
            raise RuntimeError(f"cannot complete: energies {missing[:5].tolist()} have no measured row yet")
        if not self._row_measured.any(axis=0).all():  # LoopedASD needs every pixel column
            if self.done:  # failed rows: a spatial row measured at no energy
                raise RuntimeError(f"cannot complete: {self._no_completion_reason()}")
            unseen = np.flatnonzero(~self._row_measured.any(axis=0))
            raise RuntimeError(f"cannot complete: spatial rows {unseen[:5].tolist()} have no "
                               f"measured row yet")
        D = self._od.reshape(n_e, -1)
        mask = np.repeat(self._row_measured, self.shape[1], axis=1)
        res = looped_asd(np.where(mask, D, 0.0), mask, max_rank=self.max_rank, tol=self.asd_tol,
                         rng=self._completion_seed)
        self.asd_result_ = res
        # NaN/Inf or a diverged run -> per-energy mean fill; notes go to the planner stream
        filled, notes = guard_asd_completion(D, mask, res)
        self._note_completion(notes)
        out = np.where(mask, D, filled)
        return out.reshape(self._od.shape)


class RandomRowsPlanner(_ASDCompletion, Planner):
    """Baseline of Townsend et al. 2022: uniformly random spatial rows at every energy + LoopedASD.

    The row budget ``floor(sampling_ratio · n_E · n_y)`` (never more than the ratio) is spread
    as evenly as possible over the energies (every energy gets at least one row). Rows are drawn
    at random with balanced coverage: each energy takes the spatial rows measured least often so
    far (random tie-break), so every spatial row is measured at some energy once the budget
    allows it — without this a pixel column can stay unobserved and no completion can recover it.

    Parameters
    ----------
    energies, shape, sampling_ratio, dictionary, seed, cost_model
        See :class:`curiss.planners.Planner` (``dictionary`` is not used).
    max_rank, asd_tol
        Of the LoopedASD completion (:func:`curiss.linalg.looped_asd`).
    row_budget : {"floor", "round"}
        How ``sampling_ratio · n_E · n_y`` is made whole: rounded down (default), or to nearest,
        which could measure one row more than the ratio (the rule of runs recorded before
        ``row_budget`` existed, which :func:`curiss.store.recompute` rebuilds with it).
    retry_failed : bool
        Measure failed rows again (default True), as RISS does: the rows of the latest round
        that failed, up to :attr:`MAX_REPLACEMENTS` times; then an energy left without any row
        gets a new one (the spatial row measured least often, never one that failed there),
        unless two rows or more failed there (the energy cannot be reached: the stop reason
        names it). False: failed rows are lost, as in runs recorded before this keyword, which
        :func:`curiss.store.recompute` rebuilds with it; one unreachable row then left its
        energy, and the whole completion, without data.
    """

    method = "random_rows"

    #: runs recorded before the budget was rounded down rounded it to nearest; before
    #: ``retry_failed`` failed rows were not measured again
    earlier_defaults = {"row_budget": "round", "retry_failed": False}

    #: times the failed rows of a round are measured again, and rounds of new rows for energies
    #: left without any
    MAX_REPLACEMENTS = 3

    def __init__(self, energies, shape, *, sampling_ratio: float, dictionary=None, seed=None,
                 cost_model=None, max_rank: int | None = None, asd_tol: float = 1e-6,
                 row_budget: str = "floor", retry_failed: bool = True):
        super().__init__(energies, shape, sampling_ratio=sampling_ratio, dictionary=dictionary,
                         seed=seed, cost_model=cost_model)
        if not isinstance(row_budget, str) or row_budget not in ("floor", "round"):
            raise ValueError(f"row_budget must be 'floor' or 'round'; got {row_budget!r}")
        self.row_budget = row_budget
        self.retry_failed = as_bool(retry_failed, "retry_failed")
        n_e, n_y = self.energies.size, self.shape[0]
        total = self._total_rows()
        if total < max(n_e, n_y):
            minimum = max(n_e, n_y) / (n_e * n_y)
            raise RatioTooSmallError(f"ratio too small: minimum is {minimum:.4g} (one row per energy and every "
                             f"spatial row once) for n_energies={n_e}, shape={self.shape}; "
                             f"got {self.sampling_ratio}")
        self._init_asd(max_rank, asd_tol)

    def _total_rows(self) -> int:
        n = self.sampling_ratio * self.energies.size * self.shape[0]
        return int(round(n)) if self.row_budget == "round" else int(np.floor(n + 1e-9))

    def _decide(self):
        if self.history:
            dec = self._make_up() if self.retry_failed else None
            if dec is None:
                self.stop_reason = self._no_completion_reason()  # None: "plan complete"
            return dec
        n_e, n_y = self.energies.size, self.shape[0]
        total = self._total_rows()
        per = np.full(n_e, total // n_e)
        per[self._rng.choice(n_e, total % n_e, replace=False)] += 1
        coverage = np.zeros(n_y)
        e_idx, r_idx = [], []
        for e in self._rng.permutation(n_e):
            rows = np.argsort(coverage + self._rng.random(n_y))[: per[e]]
            coverage[rows] += 1
            e_idx.extend([e] * len(rows))
            r_idx.extend(rows.tolist())
        pairs = np.column_stack([e_idx, r_idx]).astype(int)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        self._asked, self._live_from, self._retries, self._rounds = pairs, 0, 0, 0
        return Decision(0, "rows", pairs, row_weights=np.full(n_y, 1.0 / n_y))

    def _make_up(self) -> Decision | None:
        """Rows lost to failures (see ``retry_failed``); None when there is nothing to do."""
        asked = self._asked
        live = asked[self._live_from:]
        retry = live[~self._row_measured[live[:, 0], live[:, 1]]]
        if retry.size and self._retries < self.MAX_REPLACEMENTS:
            self._retries += 1
            return Decision(0, "rows", retry[np.lexsort((retry[:, 1], retry[:, 0]))])
        bare = np.flatnonzero(~self._row_measured.any(axis=1))
        if not bare.size or self._rounds >= self.MAX_REPLACEMENTS:
            return None
        self._rounds += 1
        self._retries = 0
        n_y = self.shape[0]
        coverage = self._row_measured.sum(axis=0).astype(float)
        new = []
        for e in bare:
            tried = np.unique(asked[asked[:, 0] == e, 1])
            # two rows or more failed at e: it cannot be reached, a new row would fail too
            if tried.size == 1 and tried.size < n_y:
                score = coverage + self._rng.random(n_y)
                score[tried] = np.inf
                new.append((int(e), int(np.argmin(score))))
        if not new:
            return None
        pairs = np.array(new, dtype=int)
        self._live_from = len(asked)
        self._asked = np.concatenate([asked, pairs])
        return Decision(0, "rows", pairs)


def _basis_without(V: np.ndarray, rows) -> np.ndarray:
    """An orthonormal basis of ``V`` (n, c) with its ``rows`` set to zero, shape (n, c' <= c):
    ARP on it never picks one of ``rows`` (their residual is zero)."""
    b = V.copy()
    b[np.asarray(rows, dtype=int)] = 0.0
    u, sv, _ = np.linalg.svd(b, full_matrices=False)
    return u[:, :int(np.count_nonzero(sv > 1e-8 * max(sv.max(initial=0.0), 1e-300)))]


class _CURISSBase(Planner):
    """Shared first steps of (A)CURISS and RISS: leverage-sampled images, then ARP rows."""

    #: runs written before the "balanced" default used "images" (RISS still does)
    earlier_defaults = {"budget_rule": PREVIOUS_BUDGET_RULE}

    def _init_cur(self, *, core_rank, core_rtol, noise_level, write_back):
        # checked here, not at the completion: a plan refuses them before anything moves
        self.core_rank = None if core_rank is None else as_int(core_rank, "core_rank", minimum=1)
        self.core_rtol = as_rtol(core_rtol, "core_rtol")
        self.noise_level = None if noise_level is None else as_float(noise_level, "noise_level",
                                                                       minimum=0.0)
        self.write_back = as_bool(write_back, "write_back")
        self.cur_result_ = None

    def _init_selection(self, energy_sampling, budget_rule):
        if energy_sampling not in ("volume", "leverage"):
            raise ValueError(f"energy_sampling must be 'volume' or 'leverage'; got {energy_sampling!r}")
        if budget_rule not in BUDGET_RULES:
            raise ValueError(f"budget_rule must be one of {BUDGET_RULES}; got {budget_rule!r}")
        self.energy_sampling = energy_sampling
        self.budget_rule = budget_rule

    def _budget(self, ratio: float) -> tuple[int, int]:
        """(images, rows) for ``ratio`` under ``self.budget_rule``."""
        s_e, s_r = budget(self.energies.size, self.shape, ratio)  # also validates the minimum
        if self.budget_rule == "authors":
            return s_e, s_r
        if self.budget_rule == "balanced":
            return balanced_budget(self.energies.size, self.shape, ratio)
        return images_first_budget(self.energies.size, self.shape, ratio)

    def _choose_energies(self, n: int, avoid=()) -> tuple[np.ndarray, np.ndarray]:
        """``n`` new energies to image and the weights they were drawn with; never one of
        ``avoid`` (energies that failed) while other energies remain."""
        imaged = self.imaged_energies
        avoid = np.setdiff1d(np.asarray(avoid, dtype=int), imaged)
        if self.energies.size - imaged.size - avoid.size < n:
            avoid = avoid[:0]  # too few others left: a failed energy may be tried again
        w = self._energy_weights(imaged)
        if self.energy_sampling == "leverage":
            return weighted_sample(w, n, exclude=np.union1d(imaged, avoid), rng=self._rng), w
        chosen: list[int] = []
        if self.dictionary is not None:
            # volume sampling of energies: ARP on the dictionary's basis, conditional on what is
            # imaged, for as many energies as the dictionary has dimensions; leverage after that
            U, sv, _ = np.linalg.svd(self.dictionary, full_matrices=False)
            r = int(np.count_nonzero(sv > 1e-8 * sv[0]))
            basis = U[:, :r]
            if avoid.size:  # the dictionary without the avoided energies: ARP never picks them
                basis = _basis_without(basis, avoid)
                r = basis.shape[1]
            pre = list(imaged[:r])
            k = min(r, len(pre) + n)
            if k > len(pre):
                picked = arp(basis, k, preselected=pre, rng=self._rng)[len(pre):]
                chosen = [int(i) for i in picked if i not in avoid]  # (a zero residual's draw)
        else:
            # no dictionary: one uniform draw per contiguous stratum of the energies not imaged
            free = np.setdiff1d(self._energies_not_imaged(), avoid)
            chosen = [int(self._rng.choice(part)) for part in np.array_split(free, n)]
        if len(chosen) < n:
            rest = weighted_sample(w, n - len(chosen),
                                   exclude=np.concatenate([imaged, avoid, chosen]).astype(int),
                                   rng=self._rng)
            chosen += [int(i) for i in rest]
        return np.asarray(chosen, dtype=int), w

    def _decide_images(self, n_images: int) -> Decision:
        return self._image_decision(*self._choose_energies(n_images))

    def _image_decision(self, chosen: np.ndarray, w: np.ndarray) -> Decision:
        """Full images at energies ``chosen`` (the rows not yet measured there)."""
        todo = [(e, r) for e in chosen for r in range(self.shape[0]) if not self._row_measured[e, r]]
        e_idx, r_idx = zip(*todo)
        pairs = np.column_stack([e_idx, r_idx]).astype(int)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        return Decision(0, "image", pairs, energy_weights=w)

    def _energies_not_imaged(self) -> np.ndarray:
        """Energy indices without a full image, sorted."""
        return np.setdiff1d(np.arange(self.energies.size), self.imaged_energies)

    def _images(self) -> np.ndarray:
        return self._od[self.imaged_energies]

    def _chosen_rows(self) -> np.ndarray:
        """Spatial rows measured at every energy (the CUR columns), sorted."""
        return np.flatnonzero(self._row_measured.all(axis=0))

    def _pick_rows(self, V: np.ndarray, k: int, preselected=()) -> np.ndarray:
        """Spatial rows to measure at every energy, from the images' row basis ``V`` (n_y, c):
        ``k`` rows in all, ``preselected`` first (as :func:`curiss.linalg.arp` returns them).
        ARP; CURISS's rows, ACURISS's initial rows and (with ``row_refinement="arp"``) its row
        scans are drawn here (research variants override it). RISS draws fresh rows per energy
        in its own ``_decide_rows``."""
        return arp(V, k, preselected=preselected, rng=self._rng)

    def _cur(self):
        n_e, n_x = self.energies.size, self.shape[1]
        rows_i = self.imaged_energies
        rows_j = self._chosen_rows()
        why = self._cannot_complete()
        if why is not None:
            raise RuntimeError(f"cannot complete yet: {why}")
        D = self._od.reshape(n_e, -1)
        cols = row_pixels(rows_j, n_x)
        # factored: the dense completion is formed only when someone reads res.matrix
        res = cur_complete(D[:, cols], D[rows_i, :], rows_i, cols, rank=self.core_rank,
                           rtol=self.core_rtol, noise_level=self.noise_level,
                           write_back=self.write_back, dense=False)
        self.cur_result_ = res
        return res


class CURISSPlanner(_CURISSBase):
    """CURISS: energy images (``energy_sampling``), the same ARP rows at every other energy, CUR.

    Parameters
    ----------
    energies, shape, sampling_ratio, dictionary, seed, cost_model
        See :class:`curiss.planners.Planner`.
    core_rank : int, optional
        Truncation rank of the CUR core (default: by ``core_rtol`` or ``noise_level``).
    core_rtol : float
        Relative singular-value tolerance of the core's truncated SVD, in [0, 1) (default 1e-6).
    noise_level : float, optional
        Entrywise noise std of the OD; enables the noise-aware rank rule.
    write_back : bool
        Keep measured entries in the completion instead of their CUR approximation (default
        False).
    row_sampling : {"arp", "uniform"}
        How the spatial rows are chosen: adaptive randomized pivoting on the images' row basis
        (the method, default), or uniformly at random (the naive baseline of the comparisons).
    energy_sampling : {"volume", "leverage"}
        ``"leverage"`` (the authors'): energies drawn without replacement with the dictionary's
        leverage scores (uniform without a dictionary). ``"volume"``: the first energies by ARP on
        the dictionary's basis (volume sampling: no near-duplicate energies), leverage after
        that; without a dictionary one uniform draw per contiguous stratum of energies.
    budget_rule : {"balanced", "images", "authors"}
        Split of the ratio between images and rows: :func:`curiss.linalg.balanced_budget`
        (default), :func:`curiss.linalg.images_first_budget` (always one row; the default of
        earlier versions) or the authors' rule (:func:`curiss.linalg.budget`).

    Notes
    -----
    Failed rows (:meth:`~curiss.planners.Planner.mark_failed`) are made up for before the
    completion: an image's missing rows are measured again at its energy, or another energy is
    imaged if none of its rows could be (only within ``sampling_ratio``); a spatial row that
    failed at some energies is measured there again, and if no row is measured at every energy
    not imaged after three such steps, other rows are chosen (CUR cannot complete without one;
    the stop reason says if this went over the budget). ACURISS asks for a refinement image or
    row scan that failed once more, then avoids that energy or row while others are left. An
    energy at which two or more selected rows all failed cannot be completed: the acquisition
    stops and its stop reason names the energy.
    """

    method = "curiss"

    def __init__(self, energies, shape, *, sampling_ratio: float, dictionary=None, seed=None,
                 cost_model=None, core_rank: int | None = None, core_rtol: float = 1e-6,
                 noise_level: float | None = None, write_back: bool = False,
                 row_sampling: str = "arp", energy_sampling: str = ENERGY_SAMPLING,
                 budget_rule: str = BUDGET_RULE):
        super().__init__(energies, shape, sampling_ratio=sampling_ratio, dictionary=dictionary,
                         seed=seed, cost_model=cost_model)
        self._init_selection(energy_sampling, budget_rule)
        self.n_images, self.n_rows = self._budget(self.sampling_ratio)
        self._init_cur(core_rank=core_rank, core_rtol=core_rtol, noise_level=noise_level,
                       write_back=write_back)
        if row_sampling not in ("arp", "uniform"):
            raise ValueError(f"row_sampling must be 'arp' or 'uniform'; got {row_sampling!r}")
        self.row_sampling = row_sampling

    def _decide_rows(self, n_rows: int) -> Decision:
        if self.row_sampling == "uniform":
            n_y = self.shape[0]
            rows = self._rng.choice(n_y, n_rows, replace=False)
            weights = np.full(n_y, 1.0 / n_y)
        else:
            V = row_basis(self._images(), n_rows)
            rows = self._pick_rows(V, n_rows)
            weights = (V**2).sum(1) / n_rows
        return Decision(0, "rows", grid_pairs(self._energies_not_imaged(), rows), row_weights=weights)

    #: how many times a failed image or row is replaced or retried before going on without it
    MAX_REPLACEMENTS = 3

    def _decide_fixed_budget(self):
        """Images, then rows; what failed measurements lost is measured again or replaced first.

        - An image with failed rows is completed at its own energy when some of its rows were
          measured there (the fault was the row's; once); when none was (the monochromator never
          got there), or that failed too, another energy is drawn, but only if a whole image
          still fits in ``sampling_ratio`` with the row step that follows (or if no energy is
          imaged at all: without one nothing can be completed).
        - A spatial row that failed at some energies is measured again there. (RISS, whose
          LoopedASD completion uses whatever rows there are, measures its failed rows again and
          gives an energy left without any row a new one: :meth:`_riss_make_up`.)
        - After :attr:`MAX_REPLACEMENTS` such steps, if no spatial row is measured at every
          energy not imaged (CUR needs one), as many rows as failed are chosen by the same rule
          without the failed ones (at most :attr:`MAX_REPLACEMENTS` times; not when an energy
          failed at every selected row, where a new row would fail too). As it may take the run
          over its budget, the stop reason then says so.
        """
        if not self.history:
            self._replacements = 0
            self._rows_selected = None
            self._rows_replaced = np.zeros(0, dtype=int)
            self._over_budget = ""
            return self._decide_images(self.n_images)
        n_y = self.shape[0]
        if self._rows_selected is None:
            missing = self.n_images - self.imaged_energies.size
            if missing > 0 and self._replacements < self.MAX_REPLACEMENTS:
                dec = self._replace_images(missing)
                if dec is not None:
                    self._replacements += 1
                    return dec
            if self.imaged_energies.size == 0:
                over = ""
                if self.measured_ratio > self.sampling_ratio + 1e-12:
                    over = (f"; the attempts took the measured ratio to {self.measured_ratio:.4g}, "
                            f"over sampling_ratio {self.sampling_ratio:g}")
                raise RuntimeError(f"no energy could be imaged after {self._replacements} replacements "
                                   f"(failed rows: {self.failed[:5]}); check the detector and the "
                                   f"beam{over}")
            self._replacements = 0
            dec = self._decide_rows(self.n_rows)
            self._rows_selected = np.unique(dec.pairs[:, 1])
            self._rows_asked = dec.pairs.copy()
            return dec
        if self.method == "riss":
            return self._riss_make_up()
        live = np.setdiff1d(self._rows_selected, self._rows_replaced)
        retry = grid_pairs(self._energies_not_imaged(), live)
        retry = retry[~self._row_measured[retry[:, 0], retry[:, 1]]]
        if retry.size and self._replacements < self.MAX_REPLACEMENTS:
            self._replacements += 1
            return Decision(0, "rows", retry)  # failed rows at their energies, again
        if (self._chosen_rows().size == 0 and self._rows_selected.size < n_y
                and self._rows_replaced.size < self.MAX_REPLACEMENTS
                and not self._unreached_energies().size):
            # no row is measured at every energy not imaged, so CUR has no column: one more row
            # (not when an energy was reached at none of the rows: a new row would fail there too)
            failed = self._failed_selected_rows()
            new = self._replacement_rows(len(failed), avoid=self._rows_selected)
            self._rows_replaced = np.union1d(self._rows_replaced, failed).astype(int)
            self._rows_selected = np.union1d(self._rows_selected, new)
            self._replacements = 0
            dec = Decision(0, "rows", grid_pairs(self._energies_not_imaged(), new))
            self._over_budget = self._over_sampling_ratio(
                len(dec.pairs), f"row(s) {new.tolist()} replaced the failed row(s) {failed}"
            ) or self._over_budget
            return dec
        return None

    def _replacement_rows(self, k: int, avoid: np.ndarray) -> np.ndarray:
        """``k`` spatial rows chosen as the row step chose its rows (ARP on the images' row
        basis), but never one of ``avoid``: their rows of the basis are set to zero before the
        draw (so the new rows do not merely complement the failed ones, which CUR cannot use)."""
        n_y = self.shape[0]
        allowed = np.setdiff1d(np.arange(n_y), avoid)
        k = min(k, allowed.size)
        basis = _basis_without(row_basis(self._images(), k), avoid)
        picked = self._pick_rows(basis, basis.shape[1]) if basis.shape[1] else np.zeros(0, int)
        new = [int(r) for r in picked if r in set(allowed.tolist())][:k]
        if len(new) < k:  # the images span too few directions outside the failed rows
            rest = np.setdiff1d(allowed, new)
            new += [int(r) for r in self._rng.choice(rest, k - len(new), replace=False)]
        return np.array(sorted(new), dtype=int)

    def _riss_make_up(self) -> Decision | None:
        """RISS's rows lost to failures: measured again (at most :attr:`MAX_REPLACEMENTS`
        times); then an energy left without any row (LoopedASD cannot complete it) gets a new
        row, drawn as its rows were, never one that failed there, unless two rows or more failed
        there (the energy cannot be reached: the run stops and says so). Only the pairs of the
        latest round are measured again: those of earlier rounds were given up on."""
        asked = self._rows_asked
        live = asked[getattr(self, "_riss_live_from", 0):]
        retry = live[~self._row_measured[live[:, 0], live[:, 1]]]
        if retry.size and self._replacements < self.MAX_REPLACEMENTS:
            self._replacements += 1
            # one monochromator move per energy: sorted by energy, then row
            return Decision(0, "rows", retry[np.lexsort((retry[:, 1], retry[:, 0]))])
        bare = [int(e) for e in self._energies_not_imaged() if not self._row_measured[e].any()]
        rounds = getattr(self, "_riss_rounds", 0)
        if not bare or rounds >= self.MAX_REPLACEMENTS:
            return None
        self._riss_rounds = rounds + 1
        self._replacements = 0
        new = []
        for e in bare:
            tried = np.unique(asked[asked[:, 0] == e, 1])
            # two rows or more failed at e: the energy is unreachable (as in
            # _unreached_energies), a new row would fail too; with one, the row may be at fault
            if tried.size == 1 and tried.size < self.shape[0]:
                new.append((e, int(self._replacement_rows(1, avoid=tried)[0])))
        if not new:
            return None
        pairs = np.array(new, dtype=int)
        self._riss_live_from = len(asked)
        self._rows_asked = np.concatenate([asked, pairs])
        self._over_budget = self._over_sampling_ratio(
            len(pairs), f"rows replaced failed ones at energies {pairs[:5, 0].tolist()}"
        ) or self._over_budget
        return Decision(0, "rows", pairs)

    def _asks(self, kinds: tuple[str, ...], axis: int) -> dict[int, int]:
        """How many steps of ``kinds`` asked for each energy (``axis`` 0) or spatial row (1)."""
        asks: dict[int, int] = {}
        for d in self.history:
            if d.kind in kinds:
                for i in np.unique(d.pairs[:, axis]).tolist():
                    asks[i] = asks.get(i, 0) + 1
        return asks

    def _over_sampling_ratio(self, n_new: int, what: str) -> str:
        """The stop-reason note for a step of ``n_new`` rows (``what`` it does) that takes the
        measured ratio over ``sampling_ratio``; "" when it does not."""
        after = (self._row_measured.sum() + n_new) / self._row_measured.size
        if after <= self.sampling_ratio + 1e-12:
            return ""
        return (f"; {what} and took the measured ratio to {after:.4g}, over sampling_ratio "
                f"{self.sampling_ratio:g}")

    def _failed_selected_rows(self) -> list[int]:
        """Selected spatial rows not measured at every energy not imaged."""
        not_imaged = self._energies_not_imaged()
        done = self._row_measured[np.ix_(not_imaged, self._rows_selected)].all(axis=0)
        return self._rows_selected[~done].tolist()

    def _unreached_energies(self) -> np.ndarray:
        """Energies not imaged at which none of two or more selected spatial rows could be
        measured (with one, a fault of that row and of the energy look alike), sorted."""
        rows = getattr(self, "_rows_selected", None)
        if rows is None or rows.size < 2:
            return np.zeros(0, dtype=int)
        not_imaged = self._energies_not_imaged()
        return not_imaged[~self._row_measured[np.ix_(not_imaged, rows)].any(axis=1)]

    def _cannot_complete(self) -> str | None:
        """Why no CUR completion can be formed from what is measured, or None if one can."""
        if self.imaged_energies.size and self._chosen_rows().size:
            return None
        why = "CUR needs at least one image and one spatial row measured at every energy"
        dead = self._unreached_energies()
        if dead.size:
            ev = ", ".join(f"{self.energies[e]:g}" for e in dead[:5])
            why += (f"; energies {dead[:5].tolist()} ({ev} eV) could not be measured at any of "
                    f"the selected rows {self._rows_selected.tolist()} (see the planner's failed "
                    f"rows)")
        return why

    def _replace_images(self, missing: int) -> Decision | None:
        """A step that makes up for ``missing`` images lost to failed rows, or None if none fits."""
        n_e, n_y = self.energies.size, self.shape[0]
        imaged = set(self.imaged_energies.tolist())
        asks = self._asks(("image",), 0)  # image steps that asked for each energy
        asked = set(asks)
        # energies reached (some rows measured) but not imaged: measure their missing rows, once
        partial = sorted(e for e in asked - imaged
                         if self._row_measured[e].any() and asks[e] == 1)[:missing]
        chosen = list(partial)
        n_new = missing - len(chosen)
        if n_new > 0:
            cells = int(np.floor(self.sampling_ratio * n_e * n_y + 1e-9))
            todo = int(self._row_measured.sum()) + sum(
                n_y - int(self._row_measured[e].sum()) for e in chosen)
            n_imaged = len(imaged) + len(chosen)
            fits = 0
            while fits < n_new and (todo + n_y * (fits + 1)
                                    + self.n_rows * (n_e - n_imaged - fits - 1) <= cells):
                fits += 1
            if fits == 0 and not imaged and not chosen:  # no completion at all without an image
                fits = 1
                self._over_budget = (f"; an image replaced the failed one(s) over sampling_ratio "
                                     f"{self.sampling_ratio:g}")
            if fits:
                # energies that were asked for and never reached are not drawn again
                new, _ = self._choose_energies(fits, avoid=sorted(asked - imaged))
                chosen += [int(e) for e in new]
        if not chosen:
            return None
        return self._image_decision(np.array(chosen, dtype=int), self._energy_weights(imaged))

    def _decide(self):
        dec = self._decide_fixed_budget()
        if dec is not None:
            return dec
        why = self._cannot_complete()
        if why is not None:  # failed rows that no replacement made up for
            self.stop_reason = f"failed rows left no CUR completion: {why}" + self._over_budget
            return None
        self._cur()
        self.stop_reason = "budget reached" + self._over_budget
        return None

    def _stop_record(self):
        rec = super()._stop_record()
        if getattr(self, "cur_result_", None) is not None:
            rec.rank, rec.condition = self.cur_result_.rank, self.cur_result_.condition
            rec.extra.update(cur_notes(self.cur_result_))  # core truncation fallback, if any
        return rec

    def _complete(self):
        return self._cur().matrix.reshape(self._od.shape)


class RISSPlanner(_ASDCompletion, CURISSPlanner):
    """RISS: energy images (``energy_sampling``), an independent ARP draw of rows per remaining
    energy, LoopedASD.

    Parameters
    ----------
    energies, shape, sampling_ratio, dictionary, seed, cost_model
        See :class:`curiss.planners.Planner`.
    max_rank, asd_tol
        Of the LoopedASD completion (:func:`curiss.linalg.looped_asd`).
    energy_sampling : {"volume", "leverage"}
        As in :class:`CURISSPlanner`.
    budget_rule : {"images", "balanced", "authors"}
        As in :class:`CURISSPlanner`, but the default here is ``"images"`` (the balanced split
        was measured for the CUR completion only).

    Notes
    -----
    The CUR keywords of :class:`CURISSPlanner` (``core_rank``, ``core_rtol``, ``noise_level``,
    ``write_back``, ``row_sampling``) do not apply (``TypeError``). Failed rows are measured
    again; an energy left without any row gets a new one (LoopedASD completes from whatever
    rows there are), unless two rows or more failed there: the energy cannot be reached, the
    acquisition stops and its stop reason names the energy.
    """

    method = "riss"

    def __init__(self, energies, shape, *, sampling_ratio: float, dictionary=None, seed=None,
                 cost_model=None, max_rank: int | None = None, asd_tol: float = 1e-6,
                 energy_sampling: str = ENERGY_SAMPLING, budget_rule: str = PREVIOUS_BUDGET_RULE):
        CURISSPlanner.__init__(self, energies, shape, sampling_ratio=sampling_ratio,
                               dictionary=dictionary, seed=seed, cost_model=cost_model,
                               energy_sampling=energy_sampling, budget_rule=budget_rule)
        self._init_asd(max_rank, asd_tol)

    def _decide_rows(self, n_rows: int) -> Decision:
        images = self._images()
        V = row_basis(images, n_rows)
        e_idx, r_idx = [], []
        for e in self._energies_not_imaged():
            rows = arp(V, n_rows, rng=self._rng)
            e_idx.extend([e] * n_rows)
            r_idx.extend(rows.tolist())
        pairs = np.column_stack([e_idx, r_idx]).astype(int)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        return Decision(0, "rows", pairs, row_weights=(V**2).sum(1) / n_rows)

    def _decide(self):
        dec = self._decide_fixed_budget()
        if dec is None:  # failed rows that no new row made up for, or the budget spent
            self.stop_reason = (self._no_completion_reason() or "budget reached") + self._over_budget
        return dec

    def _stop_record(self):
        return Planner._stop_record(self)

    _complete = _ASDCompletion._complete


def _row_noise_variance(rows: np.ndarray) -> np.ndarray:
    """Robust white-noise variance of each spatial row, from its second differences along x.

    For white noise of std s, ``x[i-1] - 2 x[i] + x[i+1]`` has std ``sqrt(6) s``; the median of
    its absolute value (scaled by 1.4826, the MAD of a normal law about 0) ignores the few large
    differences at the edges of particles, so a smooth or piecewise-smooth signal does not count
    as noise.

    Parameters
    ----------
    rows : ndarray, shape (k, n_x)
        Measured OD rows; ``n_x >= 3``.

    Returns
    -------
    ndarray, shape (k,)
        Noise variance of each row (OD²).
    """
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2 or rows.shape[1] < 3:
        raise ValueError(f"rows must have shape (k, n_x) with n_x >= 3; got {rows.shape}")
    d2 = rows[:, :-2] - 2.0 * rows[:, 1:-1] + rows[:, 2:]
    s = 1.4826 * np.median(np.abs(d2), axis=1) / np.sqrt(6.0)
    return s**2


_MP_MEDIAN_CACHE: dict[float, float] = {}


def _mp_median(beta: float) -> float:
    """Median of the Marchenko–Pastur law of aspect ratio ``beta`` in (0, 1] (variance 1)."""
    key = round(float(beta), 6)
    if key not in _MP_MEDIAN_CACHE:
        from scipy import integrate, optimize

        lo, hi = (1 - np.sqrt(key)) ** 2, (1 + np.sqrt(key)) ** 2

        def density(x):
            return np.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * np.pi * key * x)

        def below(t):
            return integrate.quad(density, lo, t, limit=200)[0] - 0.5

        _MP_MEDIAN_CACHE[key] = float(optimize.brentq(below, lo + 1e-12 * hi, hi, xtol=1e-10))
    return _MP_MEDIAN_CACHE[key]


def _matrix_noise_variance(X: np.ndarray) -> float:
    """White-noise variance of a low-rank-plus-noise matrix from its median singular value.

    Gavish & Donoho (2014): for an m × n matrix (m ≤ n) of i.i.d. noise of variance σ² plus a
    signal of low rank, the median singular value is close to ``σ sqrt(n μ_β)``, μ_β the
    median of the Marchenko–Pastur law with β = m/n; the few large singular values of the
    signal do not move the median. Unlike differences along x it does not mistake sharp
    spatial texture (particle edges on a narrow field) for noise.

    Parameters
    ----------
    X : ndarray, shape (m, n)
        E.g. the measured spatial rows at every energy: (n_E, n_rows · n_x), OD.

    Returns
    -------
    float
        σ² (OD²).
    """
    X = np.asarray(X, dtype=float)
    if X.shape[0] > X.shape[1]:
        X = X.T
    m, n = X.shape
    sv = np.linalg.svd(X, compute_uv=False)
    return float(np.median(sv) ** 2 / (n * _mp_median(m / n)))


#: ``row_coverage``: the largest coverage gap (:func:`_coverage_gap`) at which the prediction rule
#: may stop. Measured (docs/quality.md, "Row coverage"; benchmarks/row_coverage.py): at the rule's
#: stops at most 2.2 on the ALS stacks and 6.6 on the phantoms (every prediction-rule
#: configuration, seeds 0-9); 5 held more runs of the demo's stack for the same tail, 20 let
#: two runs with errors above 0.1 through.
COVERAGE_GAP_MAX = 10.0


def _coverage_gap(images: np.ndarray, pixels: np.ndarray, noise_variance: float) -> float:
    """How much more of some combination of the images the whole field holds than the rows show.

    The largest generalised eigenvalue λ of ``(G, G_S + ε I)``: ``G = R Rᵀ / n_pix`` the mean
    outer product of the images over every pixel, ``G_S`` the same over the pixels of the
    spatial rows measured at every energy, ``ε`` the white-noise variance (so that a direction
    the rows hold only as noise counts as noise, also with more images than row pixels). A
    material that the images show and the rows miss gives ``λ ≈ (its mean power + ε) / 2ε``;
    rows that sample the field fairly give λ ≈ 1 or below. Scale-free (dimensionless).

    Parameters
    ----------
    images : ndarray, shape (k, n_pix)
        The imaged energies' OD, one image per row (k ≥ 1).
    pixels : ndarray of int, shape (m,)
        Flat pixel indices of the spatial rows measured at every energy (m ≥ 1).
    noise_variance : float
        White-noise variance (OD²); 0 on noise-free data, then a floor of 1e-12 of the mean
        diagonal of ``G`` takes its place.
    """
    return _coverage_eig(images, pixels, noise_variance)[0]


def _coverage_eig(images, pixels, noise_variance) -> tuple[float, np.ndarray]:
    """:func:`_coverage_gap` and its eigenvector u, shape (k,): the combination of the images
    (``u @ images``, one value per pixel) that the rows miss most."""
    from scipy.linalg import eigh

    R = np.asarray(images, dtype=float)
    RS = R[:, pixels]
    G = R @ R.T / R.shape[1]
    GS = RS @ RS.T / RS.shape[1]
    eps = max(float(noise_variance), 1e-12 * float(np.trace(G)) / len(G), np.finfo(float).tiny)
    lam, vec = eigh(G, GS + eps * np.eye(len(G)))
    return float(lam[-1]), vec[:, -1]


def _as_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (integral floats accepted, bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, numbers.Real)):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r} ({type(value).__name__})")
    if not (np.isfinite(value) and float(value).is_integer()):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


#: stop rules of ACURISS (see :class:`ACURISSPlanner`)
STOP_RULES = ("prediction", "variation")


class ACURISSPlanner(CURISSPlanner):
    """Adaptive CURISS: start at ``initial_ratio``, refine until the completion predicts new data.

    Each refinement adds either the next energy image or a spatial row scan (one new row at every
    energy not imaged, chosen on the current images' row basis keeping the rows already chosen:
    by default the row that basis leaves least explained, see ``row_refinement``), then
    recomputes the CUR completion (kept factored) and the cluster spectra. The next image is, by
    default (``energy_refinement="residual"``), the energy whose measured spatial rows (the CUR
    columns C, measured at every energy) and dictionary spectra the images explain least: the
    largest squared residual of its row of [C, dictionary] after projection onto the span of the
    imaged energies' rows, less the residual that noise alone leaves there (from that energy's
    own noise: the OD noise of a counting detector grows with the absorption). It is the energy
    the current completion gets most wrong where that can be checked; when no energy's residual
    stands out of the noise (by 4 standard deviations of the noise's own residual) the image is
    drawn from the dictionary instead;
    ``energy_refinement="dictionary"`` draws it from the dictionary (volume/leverage sampling,
    imaged energies excluded), as earlier versions did.

    **Stop rules.** ``stop_rule="prediction"`` (default) is noise-aware: after each refinement the
    completion computed *before* the newest rows were measured is compared with those rows. With
    ``M`` the newest measured rows and ``P`` their prediction (from the previous CUR factors,
    restricted to those energies and pixels: the dense completion is never formed),

    * ``prediction_mse = mean((M - P)²)`` (OD²),
    * ``noise_variance`` (OD²): the white-noise variance, the smaller of two estimates (each
      errs upwards in its own way, and too high a noise would stop too early): second
      differences along x of the rows measured at the energies of ``M`` (robust: median
      absolute value; counts sharp texture on a narrow field as noise), and the median singular
      value of the spatial rows measured at every energy (an n_E × (rows · n_x) matrix) against
      the Marchenko–Pastur law (Gavish & Donoho 2014; texture-proof),
    * ``prediction_error = sqrt(max(prediction_mse - noise_variance, 0) / mean(D̂²))``, the error of
      the previous completion above the noise, relative to the current completion's RMS.

    The acquisition stops when ``prediction_error <= tol_prediction`` for ``n_consecutive``
    refinements in a row, at least ``min_images`` energies are imaged, at least ``min_rows``
    spatial rows are measured at every energy and (``row_coverage``) those rows do not miss a
    component that the images show. The three numbers are in
    every refinement's decision record (``Decision.extra``: the ``planner`` stream) and in
    :attr:`prediction_`. **Row coverage.** New rows are predicted well when they hold only what
    the earlier rows held: on a small field, two rows that both miss a material pass the
    prediction test, and the completion has no way to represent that material at the energies
    not imaged. With ``row_coverage`` the rule also needs ``coverage_gap <= 10``: the largest
    ratio, over combinations of the imaged energies, of their mean square over the whole field
    to their mean square over the measured rows plus the noise variance (a generalised
    eigenvalue; ≈ 1 or below when the rows sample the field fairly). When the prediction test
    passes but the gap is larger, the next refinement is a row scan, at the row where the
    combination of the images that the rows miss most (the eigenvector) is strongest. Measured
    (docs/quality.md, "Row coverage"): on the ALS stacks and the phantoms it held no run (every
    prediction-rule configuration of benchmarks/quality.py, seeds 0-9; gaps at the rule's stops
    at most 2.2 and 6.6), so their decisions are unchanged; on the stack of
    ``curiss demo --energies 24 --size 16`` with a cap of 0.4 the 10 runs of 120 it held
    measured one row scan more and ended with completion errors of 0.023-0.033 instead of
    0.045-0.203. It does not see a material whose spectrum the others nearly span. The gap
    is recorded as ``coverage_gap`` in each refinement's ``Decision.extra`` (the ``planner``
    stream) and in :attr:`coverage_gap_`.
    ``stop_rule="variation"`` is the rule of earlier versions: stop when the
    relative completion variation ≤ ``tol_completion`` or the cluster-spectra variation ≤
    ``tol_spectral``. Either way the acquisition also stops at ``max_iterations``, ``max_time`` or
    when no refinement fits under the ``sampling_ratio`` cap. ``stop_reason`` names the test that
    fired, with its numbers. A run that reaches the cap before the prediction rule passed says so
    (``"sampling_ratio budget 0.05 reached before the stop rule passed (prediction error 0.316,
    needs <= tol_prediction 0.3 in 1 consecutive refinement(s))"``): by the rule's own measure
    it was not finished.

    Parameters
    ----------
    energies, shape, dictionary, seed, cost_model
        See :class:`curiss.planners.Planner`.
    sampling_ratio : float
        Budget cap: refinement never makes the sampling ratio exceed it (default 0.10).
    initial_ratio : float
        Ratio of the initial CURISS step (≤ ``sampling_ratio``; default 0.02).
    max_iterations : int
        Refinement steps at most.
    stop_rule : {"prediction", "variation"}
        The adaptive stop test (see above). ``"variation"`` with the default ``images_per_row``
        reproduces earlier versions' default planner exactly.
    tol_prediction : float, optional
        ``stop_rule="prediction"``: threshold (≥ 0, dimensionless) on ``prediction_error``.
        Default 0.35 with ``row_refinement="pivoted"`` and ``mode="alternate"`` (a row chosen
        because the images explain it least is the hardest row to predict), 0.30 otherwise
        (``"arp"``, or ``mode="energies"``, which measures no row scans).
    n_consecutive : int, optional
        ``stop_rule="prediction"``: refinements in a row that must pass (≥ 1). Default 1 with
        ``energy_refinement="residual"``: each refinement image is then the energy the
        completion explains least (and each row scan the row ARP picks), so one passing
        prediction is already the hardest test at hand; 2 with ``"dictionary"``, whose images
        are random draws.
    min_images : int
        ``stop_rule="prediction"``: energies imaged at least before the rule may stop
        (1 ≤ ``min_images`` ≤ n_E).
    min_rows : int, optional
        ``stop_rule="prediction"``: spatial rows measured at every energy (the CUR columns)
        before the rule may stop (1 ≤ ``min_rows`` ≤ n_y). Default 2 with ``mode="alternate"``:
        the stop then always comes after a row chosen by ARP from the refinement images has been
        measured and predicted (a run that starts with several images and one row could
        otherwise stop on image predictions alone); 1 with ``mode="energies"``, which adds no
        rows (a larger value is refused there).
    tol_completion : float
        ``stop_rule="variation"``: stop when ‖D̂_i − D̂_{i−1}‖_F / ‖D̂_i‖_F ≤ this (default 0.01;
        the variation is recorded under either rule). With ``stop_rule="prediction"`` a value
        other than the default is refused: it would have no effect.
    tol_spectral : float
        ``stop_rule="variation"``: stop when the relative change of the Hungarian-matched cluster
        spectra ≤ this (default 0.01; recorded under either rule; with
        ``stop_rule="prediction"`` only the default is accepted).
    n_components, n_clusters : int
        Settings of the spectral analysis (SVD components, k-means clusters).
    mode : {"alternate", "energies"}
        ``"alternate"``: energy images and row scans (see ``images_per_row``); ``"energies"``:
        images only, with the authors' spectral variation (post-edge normalisation, background
        cluster dropped).
    images_per_row : int, optional
        ``mode="alternate"``: refinement images per row scan — refinements ``0 .. k-1`` prefer an
        image, refinement ``k`` a row scan, and so on (a refinement takes the other kind when
        the preferred one does not fit under the cap). ``1`` is the strict image / row-scan
        alternation of earlier versions. Default: 3 with ``stop_rule="prediction"`` (later spatial
        rows are chosen by ARP from several images rather than from the few images of the initial
        step), 1 with ``"variation"``; None (and must be None) with ``mode="energies"``.
    max_time : float, optional
        Time budget (cost model, s): a refinement is chosen only if the acquisition time after
        it stays within ``max_time`` (an image when a row scan would not fit, and the reverse);
        when none fits the acquisition stops. The initial CURISS step is always measured.
    energy_refinement : {"residual", "dictionary"}, optional
        How a refinement chooses its image (see above). Default: ``"residual"`` with
        ``stop_rule="prediction"``, ``"dictionary"`` (the choice of earlier versions and of the
        authors) with ``"variation"``. ``"residual"`` is deterministic given the measured rows
        (a greedy choice; its scores, clipped at 0 and normalised, are the decision's
        ``energy_weights``; near-ties within 1e-8 of the mean squared row go to the lowest
        energy index), except that when no residual stands out of the noise (or, on noise-free
        data, of rounding) it draws from the dictionary. The initial step always uses
        ``energy_sampling``.
    row_refinement : {"pivoted", "arp"}, optional
        How a refinement row scan chooses its row from the images' row basis V (the top-k left
        singular vectors of the images' spatial-row unfolding, k = rows chosen + 1), the rows
        already chosen kept. ``"pivoted"`` (default with ``stop_rule="prediction"``): the row of
        largest norm once the chosen rows are projected out (column-pivoted QR,
        :func:`curiss.linalg.pivoted_rows`; deterministic given the images), but not the
        raster's first or last line while another row is left: a greedy choice takes the row
        least like the others, whatever made it so (on the ALS stack 71214078 the one run in
        60 whose greedy row was the first line ended with cluster-spectra error 0.29, 0.06
        without it; docs/quality.md). ``"arp"`` (default with ``"variation"``; every row scan
        of earlier versions): drawn by ARP (conditional volume sampling). The initial step's
        rows are drawn by ARP either way. The request's ``row_weights`` are those residual
        norms squared, normalised: ARP's distribution for the draw, or the pivoted choice's
        scores (0 at the first and last lines when they were left out).
    row_coverage : bool, optional
        Hold back the prediction rule's stop while ``coverage_gap`` > 10 (see "Row coverage"
        above; the next refinement is then a row scan at the row where what the rows miss is
        strongest). Default: True with
        ``stop_rule="prediction"`` and ``mode="alternate"``; False otherwise, and True is refused
        there (``mode="energies"`` adds no rows, and the variation rule is the earlier
        versions' and the authors'). A run that reaches the cap while it holds says so in
        ``stop_reason`` ("... before the stop rule passed (row coverage gap 40.6 > 10: ...)").
    core_rank, core_rtol, noise_level, write_back, energy_sampling, budget_rule
        As in :class:`CURISSPlanner`: the CUR completion of every step, and the energies and
        the split of the initial CURISS step.
    kmeans_warm_start : bool
        Start each step's k-means once from the previous step's cluster centres instead of
        ``n_init`` random restarts: about 2-4x faster steps (benchmarks/planner.py), still
        deterministic for a seed, but the labels lean towards the previous partition, so the
        spectral variation (and the decisions that depend on it) can differ from the default.

    Attributes
    ----------
    coverage_gap_ : float
        The last completion's coverage gap (dimensionless; see "Row coverage"); NaN before the
        first completion or without ``row_coverage``.
    prediction_ : dict
        The last refinement's ``prediction_error``, ``prediction_mse`` (OD²) and
        ``noise_variance`` (OD²); NaN before the second completion. Without an estimate
        (rows narrower than 3 pixels and fewer than 8 pixels measured at every energy) the noise
        is taken as 0 (the rule is then stricter). Both estimates err upwards (second
        differences: by 1.1-1.3x in std on the 64 x 64 phantom at noise 0.02, 1.6x on a
        16-pixel-wide field with sharp particles), hence the smaller one.

    Notes
    -----
    Defaults (1 pass with residual images, 3 images, 2 rows, ``images_per_row=3``) were chosen
    on the ALS stacks and the phantom (seeds 0-9), pivoted refinement rows with
    ``tol_prediction=0.35`` on the ALS stacks (seeds 0-59, checked on 60-119);
    docs/quality.md has the measured tables against the variation rule, the authors'
    images-only mode, ``min_rows=1``, dictionary-drawn refinement images, ARP refinement rows
    and the previous defaults, also on hold-out seeds and from ``initial_ratio=0.04``.
    """

    method = "acuriss"
    #: before ``min_rows`` existed the rule stopped whatever the number of rows; before
    #: ``energy_refinement`` refinement images were drawn from the dictionary, with
    #: ``tol_prediction`` 0.30 (0.35 with residual images until ``n_consecutive`` was recorded:
    #: such runs record ``tol_prediction``); before ``n_consecutive`` was recorded the rule
    #: needed 2 passes in a row; before ``row_refinement`` every row scan was drawn by ARP;
    #: before ``row_coverage`` the rule stopped whatever the rows missed
    earlier_defaults = {**CURISSPlanner.earlier_defaults, "min_rows": 1,
                        "energy_refinement": "dictionary", "tol_prediction": 0.30,
                        "n_consecutive": 2, "row_refinement": "arp", "row_coverage": False}

    def __init__(self, energies, shape, *, sampling_ratio: float = 0.10, dictionary=None, seed=None,
                 cost_model=None, initial_ratio: float = 0.02, max_iterations: int = 50,
                 stop_rule: str = "prediction", tol_prediction: float | None = None,
                 n_consecutive: int | None = None, min_images: int = 3, min_rows: int | None = None,
                 tol_completion: float = _TOL_VARIATION, tol_spectral: float = _TOL_VARIATION,
                 n_components: int = 3,
                 n_clusters: int = 4, mode: str = "alternate", images_per_row: int | None = None,
                 max_time: float | None = None,
                 core_rank: int | None = None, core_rtol: float = 1e-6,
                 noise_level: float | None = None, write_back: bool = False,
                 energy_sampling: str = ENERGY_SAMPLING, budget_rule: str = BUDGET_RULE,
                 energy_refinement: str | None = None, kmeans_warm_start: bool = False,
                 row_refinement: str | None = None, row_coverage: bool | None = None):
        Planner.__init__(self, energies, shape, sampling_ratio=sampling_ratio,
                         dictionary=dictionary, seed=seed, cost_model=cost_model)
        if row_refinement is None:
            row_refinement = "pivoted" if stop_rule == "prediction" else "arp"
        if not isinstance(row_refinement, str) or row_refinement not in ROW_REFINEMENTS:
            raise ValueError(f"row_refinement must be one of {ROW_REFINEMENTS}; got {row_refinement!r}")
        self.row_refinement = row_refinement
        if tol_prediction is None:  # a greedy row predicts worse than a drawn one (docs/quality.md);
            # mode="energies" measures no row scans, so its rule stays as it was measured
            tol_prediction = 0.35 if row_refinement == "pivoted" and mode == "alternate" else 0.30
        if energy_refinement is None:
            energy_refinement = "residual" if stop_rule == "prediction" else "dictionary"
        if not isinstance(energy_refinement, str) or energy_refinement not in ENERGY_REFINEMENTS:
            raise ValueError(f"energy_refinement must be one of {ENERGY_REFINEMENTS}; "
                             f"got {energy_refinement!r}")
        self.energy_refinement = energy_refinement
        self.kmeans_warm_start = as_bool(kmeans_warm_start, "kmeans_warm_start")
        self.initial_ratio = validate_ratio("initial_ratio", initial_ratio, high=self.sampling_ratio)
        self._init_selection(energy_sampling, budget_rule)
        try:
            self.n_images, self.n_rows = self._budget(self.initial_ratio)
        except RatioTooSmallError as exc:  # name the keyword: a user may have set only sampling_ratio
            raise RatioTooSmallError(f"initial_ratio={self.initial_ratio:g} is too small for this stack "
                                     f"({exc}); raise initial_ratio") from None
        self._init_cur(core_rank=core_rank, core_rtol=core_rtol, noise_level=noise_level,
                       write_back=write_back)
        if mode not in ("alternate", "energies"):
            raise ValueError(f"mode must be 'alternate' or 'energies'; got {mode!r}")
        self.mode = mode
        self.row_sampling = "arp"
        if not isinstance(stop_rule, str) or stop_rule not in STOP_RULES:
            raise ValueError(f"stop_rule must be one of {STOP_RULES}; got {stop_rule!r}")
        self.stop_rule = stop_rule
        self.max_iterations = _as_int("max_iterations", max_iterations, 0)
        for name, v in (("tol_completion", tol_completion), ("tol_spectral", tol_spectral),
                        ("tol_prediction", tol_prediction)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a finite number >= 0; got {v!r} ({type(v).__name__})")
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0; got {v!r}")
        if stop_rule == "prediction":  # a value other than the default would be ignored
            for name, v in (("tol_completion", tol_completion), ("tol_spectral", tol_spectral)):
                if float(v) != _TOL_VARIATION:
                    raise ValueError(
                        f"{name}={v!r} has no effect with stop_rule='prediction' (it is the "
                        f"variation rule's tolerance; the prediction rule stops on "
                        f"tol_prediction): give stop_rule='variation' to use it, or leave it out")
        self.tol_completion = float(tol_completion)
        self.tol_spectral = float(tol_spectral)
        self.tol_prediction = float(tol_prediction)
        if n_consecutive is None:  # a greedy (residual) image is the hardest test: one pass
            n_consecutive = 1 if energy_refinement == "residual" else 2
        self.n_consecutive = _as_int("n_consecutive", n_consecutive, 1)
        self.min_images = _as_int("min_images", min_images, 1)
        if self.min_images > self.energies.size:
            raise ValueError(f"min_images must be <= the number of energies ({self.energies.size}); "
                             f"got {min_images!r}")
        if mode == "energies" and images_per_row is None:
            self.images_per_row = None  # images only
        elif images_per_row is None:
            self.images_per_row = 3 if stop_rule == "prediction" else 1
        elif mode == "energies":
            raise ValueError(f"images_per_row applies to mode='alternate' (mode='energies' adds images "
                             f"only); got images_per_row={images_per_row!r}")
        else:
            self.images_per_row = _as_int("images_per_row", images_per_row, 1)
        if min_rows is None:
            self.min_rows = 2 if mode == "alternate" else 1
        else:
            self.min_rows = _as_int("min_rows", min_rows, 1)
            if self.min_rows > self.shape[0]:
                raise ValueError(f"min_rows must be <= the number of spatial rows ({self.shape[0]}); "
                                 f"got {min_rows!r}")
            if mode == "energies" and self.min_rows > max(self.n_rows, 1):
                raise ValueError(f"min_rows={min_rows!r} can never be reached with mode='energies' "
                                 f"(it adds images only; the initial step measures {self.n_rows} "
                                 f"row(s)): use mode='alternate' or min_rows <= {max(self.n_rows, 1)}")
        rule_with_rows = stop_rule == "prediction" and mode == "alternate"
        if row_coverage is None:
            row_coverage = rule_with_rows
        row_coverage = as_bool(row_coverage, "row_coverage")
        if row_coverage and not rule_with_rows:
            raise ValueError(
                f"row_coverage=True needs stop_rule='prediction' and mode='alternate' (it holds "
                f"back the prediction rule's stop and asks for a row scan; got "
                f"stop_rule={stop_rule!r}, mode={mode!r}): leave it out, or give "
                f"row_coverage=False")
        self.row_coverage = row_coverage
        n_pix = self.shape[0] * self.shape[1]
        self.n_components = _as_int("n_components", n_components, 1)
        self.n_clusters = _as_int("n_clusters", n_clusters, 1)
        if self.n_components > min(self.energies.size, n_pix):
            raise ValueError(f"n_components must be in [1, {min(self.energies.size, n_pix)}]; got {n_components}")
        if self.n_clusters > n_pix:
            raise ValueError(f"n_clusters must be in [1, {n_pix}]; got {n_clusters}")
        if self.n_clusters < 2 and mode == "energies" and stop_rule == "variation":
            raise ValueError(f"n_clusters must be >= 2 with mode='energies' and "
                             f"stop_rule='variation'; got {n_clusters!r}: that spectral variation "
                             f"(the authors') leaves out the background cluster, so with one "
                             f"cluster it could never be computed, nor tol_spectral stop the run")
        if max_time is not None:
            max_time = as_float(max_time, "max_time", minimum=0.0)
            if max_time <= 0:
                raise ValueError(f"max_time must be a positive number of seconds; got {max_time!r}")
        self.max_time = max_time
        self._analysis_seed = int(self._rng.integers(2**31))
        self._initial_done = False
        self._prev_completion = None
        self._prev_spectra = None
        self._refinements = 0
        self._prediction_errors: list[float] = []  # one per completion (NaN for the first)
        self.prediction_ = self._no_prediction()
        self.coverage_gap_ = float("nan")
        self._coverage_blocked = False
        # noise estimate of the rows measured at every energy, kept until that set of rows changes
        self._noise_key: tuple[int, ...] | None = None
        self._noise_value = float("nan")
        self.analysis_ = None

    # the authors' spectral variation normalises by the post-edge mean (last tenth of the grid)
    def _post_edge(self):
        n_e = self.energies.size
        return np.arange(n_e - max(1, n_e // 10), n_e)

    def _evaluate(self, dec_or_none):
        """Complete, analyse and compare with the previous iterate; returns the two variations.

        The completion stays factored (``CURResult`` with ``dense=False``): the analysis and the
        completion variation are computed from its factors (the same values as from the dense
        cube, to rounding), and the dense cube is formed only if someone asks for it
        (``completed()``, ``latest_completion``). With ``write_back`` the dense path is used.
        """
        res = self._cur()
        self._eval_extra = cur_notes(res)
        dc = ds = float("nan")
        try:
            ana = spectral_analysis(res, n_components=self.n_components, n_clusters=self.n_clusters,
                                    seed=self._analysis_seed, mask=self._row_measured,
                                    measured=self._od, image_shape=self.shape,
                                    warm_start=self.analysis_ if self.kmeans_warm_start else None)
            if self._prev_spectra is not None:
                if self.mode == "energies":
                    ds = spectral_variation(self._prev_spectra, ana.cluster_spectra,
                                            normalize_post_edge=self._post_edge(), drop_background=True)
                else:
                    ds = spectral_variation(self._prev_spectra, ana.cluster_spectra)
        except ValueError as exc:
            # guard: e.g. a constant image has fewer distinct pixels than n_clusters, or a zero
            # post-edge mean; the completion variation alone then decides (reported in the stream)
            ana = None
            self._eval_extra["analysis_fallback"] = (
                f"spectral analysis skipped ({exc}); spectral variation not computed")
        self.analysis_ = ana
        if self._prev_completion is not None:
            dc = completion_variation(self._prev_completion, res)
        self._prev_completion = res  # the previous iterate, factored (only it is kept)
        self._prev_spectra = None if ana is None else ana.cluster_spectra
        self._completion = res  # formed into the dense cube on demand
        self._completion_key = len(self._order)
        return res, dc, ds

    # ------------------------------------------------------------------ prediction statistics
    @staticmethod
    def _no_prediction() -> dict[str, float]:
        nan = float("nan")
        return {"prediction_error": nan, "prediction_mse": nan, "noise_variance": nan}

    def _predict_rows(self, prev, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The previous completion at spatial rows ``y`` of energies ``e``: shape (k, n_x).

        From the CUR factors restricted to those energies and pixels (O(k r n_x)); a dense
        previous completion (n_E, n_y, n_x) is indexed directly.
        """
        if isinstance(prev, np.ndarray):
            return prev.reshape(self._od.shape)[e, y]
        n_y, n_x = self.shape
        left = prev.left[e]  # (k, r)
        if left.shape[1] == 0:
            return np.zeros((e.size, n_x))
        # the new rows were not measured when prev was computed: left @ right is its value there
        # even with write_back (which overwrites measured entries only)
        right = prev.right.reshape(-1, n_y, n_x)[:, y, :]  # (r, k, n_x)
        return np.einsum("kr,rkx->kx", left, right)

    def _completion_power(self, res) -> float:
        """mean(D̂²) of a completion, from its factors (OD²)."""
        if isinstance(res, np.ndarray):
            return float(np.mean(np.square(res)))
        if res.write_back and res.matrix_formed:
            return float(np.mean(np.square(res.matrix)))
        if res.rank == 0 or res.left.shape[1] == 0:
            return 0.0
        L, R = res.left, res.right
        m, n = res.shape
        return float(np.sum((L.T @ L) * (R @ R.T)) / (m * n))

    def _noise_variances(self, e: np.ndarray, *, pooled_only: bool = False) -> np.ndarray:
        """Noise variance (OD²) for each entry of ``e``: the smaller of two estimates.

        - second differences along x of every row measured at that energy (pooled; needs
          n_x >= 3). Sharp spatial texture on a narrow field reads as noise (too high);
        - the median singular value of the spatial rows measured at every energy (the CUR
          columns, an n_E × (rows · n_x) matrix of at least 8 × 8), one value for the stack
          (:func:`_matrix_noise_variance`). Texture-proof, but a high signal rank or noise that
          varies with energy reads as more noise.

        Both err upwards, and too high a noise makes the rule stop too early; the smaller one
        can only make it stop later (the ``sampling_ratio`` cap still holds). ``pooled_only``:
        the second-difference estimate alone (per energy; needs n_x >= 3)."""
        out = np.full(e.size, np.inf)
        full = np.flatnonzero(self._row_measured.all(axis=0))
        if not pooled_only and full.size and min(self.energies.size, full.size * self.shape[1]) >= 8:
            key = tuple(full.tolist())
            if self._noise_key != key:  # the rows' values never change
                C = self._od[:, full, :].reshape(self.energies.size, -1)
                self._noise_key, self._noise_value = key, _matrix_noise_variance(C)
            out[:] = self._noise_value
        if self.shape[1] >= 3:
            pooled = {}
            for ee in np.unique(e):
                rows = self._od[ee, self._row_measured[ee]]
                pooled[int(ee)] = float(np.mean(_row_noise_variance(rows)))
            out = np.minimum(out, [pooled[int(ee)] for ee in e])
        return np.where(np.isfinite(out), out, 0.0)

    def _prediction_stats(self, prev, res) -> dict[str, float]:
        """Prediction error of ``prev`` (the completion before the newest decision's rows) on
        those rows, above the noise, relative to the RMS of ``res`` (the current completion)."""
        stats = self._no_prediction()
        if prev is None or not self.history:
            return stats
        pairs = self.history[-1].pairs
        if len(pairs):
            pairs = pairs[self._row_measured[pairs[:, 0], pairs[:, 1]]]  # failed rows left out
        if len(pairs) == 0:
            return stats
        e, y = pairs[:, 0], pairs[:, 1]
        M = self._od[e, y]
        P = self._predict_rows(prev, e, y)
        mse = float(np.mean(np.square(M - P)))
        noise = float(np.mean(self._noise_variances(e)))
        power = self._completion_power(res)
        model = max(mse - noise, 0.0)
        if power > 0:
            rel = float(np.sqrt(model / power))
        else:
            rel = 0.0 if model == 0 else float("inf")
        stats.update(prediction_error=rel, prediction_mse=mse, noise_variance=noise)
        return stats

    # ------------------------------------------------------------------ decisions
    def _decide(self):
        if not self._initial_done:  # the initial images and rows (failed ones made up for)
            dec = self._decide_fixed_budget()
            if dec is not None:
                return dec
            self._initial_done = True
        why = self._cannot_complete()
        if why is not None:  # failed rows that no replacement made up for
            self.stop_reason = f"failed rows left no CUR completion: {why}" + self._over_budget
            return None
        prev = self._prev_completion  # before _evaluate replaces it
        res, dc, ds = self._evaluate(None)
        self.prediction_ = self._prediction_stats(prev, res)
        self._prediction_errors.append(self.prediction_["prediction_error"])
        if self.row_coverage:
            self.coverage_gap_ = self._row_coverage()[0]
        self._last = (res.rank, res.condition, dc, ds)
        reason = self._stop_check(dc, ds)
        if reason is None:
            dec = self._refine()
            if dec is None:
                reason = self.stop_reason or "everything measured"
        if reason is not None:
            self.stop_reason = reason + self._over_budget
            return None
        dec.rank, dec.condition = res.rank, res.condition
        dec.extra.update(self._eval_extra)  # core truncation / analysis fallbacks, if any
        dec.extra.update(self.prediction_)
        if self.row_coverage:
            dec.extra["coverage_gap"] = self.coverage_gap_
        dec.completion_variation, dec.spectral_variation = dc, ds
        self._refinements += 1
        return dec

    def _row_coverage(self) -> tuple[float, np.ndarray | None, np.ndarray]:
        """:func:`_coverage_eig` of the images (k, n_pix) and the spatial rows measured at every
        energy: (gap, eigenvector or None, images); the gap is NaN without rows or images."""
        rows = self._chosen_rows()
        images = self._od[self.imaged_energies].reshape(self.imaged_energies.size, -1)
        if rows.size == 0 or self.imaged_energies.size == 0:
            return float("nan"), None, images
        noise = float(np.mean(self._noise_variances(self.imaged_energies)))
        gap, u = _coverage_eig(images, row_pixels(rows, self.shape[1]), noise)
        return gap, u, images

    def _coverage_passes(self) -> bool:
        return not (self.row_coverage and self.coverage_gap_ > COVERAGE_GAP_MAX)  # NaN: no rows yet

    def _prediction_stop(self) -> str | None:
        n = self.n_consecutive
        recent = self._prediction_errors[-n:]
        n_img = int(self.imaged_energies.size)
        n_rows = int(self._chosen_rows().size)
        self._coverage_blocked = False
        if self._predictions_pass(recent) and n_img >= self.min_images and n_rows >= self.min_rows:
            if not self._coverage_passes():  # the rows miss what the images show: a row scan next
                self._coverage_blocked = True
                return None
            rels = ", ".join(f"{r:.3g}" for r in recent)
            st = self.prediction_
            coverage = (f", row coverage gap {self.coverage_gap_:.3g} <= {COVERAGE_GAP_MAX:g}"
                        if self.row_coverage else "")
            return (f"prediction error {rels} <= tol_prediction {self.tol_prediction:g} in "
                    f"{n} consecutive refinement(s) ({n_img} images >= min_images {self.min_images}, "
                    f"{n_rows} rows >= min_rows {self.min_rows}{coverage}; "
                    f"last: prediction MSE {st['prediction_mse']:.3g}, noise variance "
                    f"{st['noise_variance']:.3g} OD^2)")
        return None

    def _stop_check(self, dc, ds):
        if self.stop_rule == "variation":
            if np.isfinite(dc) and dc <= self.tol_completion:
                return f"completion variation {dc:.3g} <= tol_completion {self.tol_completion:g}"
            if np.isfinite(ds) and ds <= self.tol_spectral:
                return f"spectral variation {ds:.3g} <= tol_spectral {self.tol_spectral:g}"
        else:
            reason = self._prediction_stop()
            if reason is not None:
                return reason
        if self._refinements >= self.max_iterations:
            return f"max_iterations {self.max_iterations} reached"
        if self.max_time is not None:
            t = acquisition_cost(self.order, self.shape[1], model=self.cost_model).time
            if t >= self.max_time:
                return f"max_time {self.max_time:g} s reached (acquisition time {t:.3g} s)"
        return None

    def _next_kinds(self):
        if self.mode == "energies":
            return ("image",)
        if self._coverage_blocked:  # the rule passed but the rows miss what the images show
            return ("row_scan", "image")
        k = self.images_per_row
        return ("image", "row_scan") if self._refinements % (k + 1) < k else ("row_scan", "image")

    def _time_after(self, kind: str) -> float:
        """Acquisition time (cost model, s) once a refinement of ``kind`` is measured.

        Which energy an image takes, or which row a row scan takes, does not change its time:
        an image is one energy visit over the rows not yet chosen, a row scan one visit per
        energy not yet imaged. The visit is charged a fresh energy change (as the plans move).
        """
        order = self.order
        last_e = int(order[-1, 0]) if len(order) else -1
        if kind == "image":
            free = np.setdiff1d(np.arange(self.energies.size), self.imaged_energies)
            e = int(free[free != last_e][0]) if np.any(free != last_e) else int(free[0])
            rows = np.setdiff1d(np.arange(self.shape[0]), self._chosen_rows())
            new = np.column_stack([np.full(rows.size, e), rows])
        else:
            r = int(np.setdiff1d(np.arange(self.shape[0]), self._chosen_rows())[0])
            energies = np.setdiff1d(np.arange(self.energies.size), self.imaged_energies)
            new = np.column_stack([energies, np.full(energies.size, r)])
        return acquisition_cost(np.concatenate([order.reshape(-1, 2), new]), self.shape[1],
                                model=self.cost_model).time

    def _refine(self) -> Decision | None:
        n_cells = self._row_measured.size
        measured = self._row_measured.sum()
        over_time = False
        for kind in self._next_kinds():
            if kind == "image":
                n_new = self.shape[0] - self._chosen_rows().size
                if self.imaged_energies.size >= self.energies.size or n_new <= 0:
                    continue
            else:
                n_new = self.energies.size - self.imaged_energies.size
                if self._chosen_rows().size >= self.shape[0] or n_new <= 0:
                    continue
            if (measured + n_new) / n_cells > self.sampling_ratio + 1e-12:
                continue
            if self.max_time is not None and self._time_after(kind) > self.max_time:
                over_time = True
                continue
            return self._decide_refinement_image() if kind == "image" else self._decide_row_scan()
        if self.imaged_energies.size < self.energies.size and self._chosen_rows().size < self.shape[0]:
            if over_time:
                t = acquisition_cost(self.order, self.shape[1], model=self.cost_model).time
                self.stop_reason = (f"max_time {self.max_time:g} s reached: no refinement fits "
                                    f"(acquisition time {t:.3g} s)") + self._rule_pending()
            else:
                self.stop_reason = (f"sampling_ratio budget {self.sampling_ratio:g} reached"
                                    + self._rule_pending())
        return None

    def _predictions_pass(self, recent: list[float]) -> bool:
        """The last ``n_consecutive`` prediction errors are all there, finite and within tolerance."""
        return len(recent) == self.n_consecutive and all(
            np.isfinite(r) and r <= self.tol_prediction for r in recent)

    def _rule_pending(self) -> str:
        """What the prediction rule still lacks, for a stop at the cap ('' with the variation rule)."""
        if self.stop_rule != "prediction":
            return ""
        n = self.n_consecutive
        recent = self._prediction_errors[-n:]
        missing = []
        if not self._predictions_pass(recent):
            rels = ", ".join(f"{r:.3g}" for r in recent) or "none yet"
            missing.append(f"prediction error {rels}, needs <= tol_prediction {self.tol_prediction:g} "
                           f"in {n} consecutive refinement(s)")
        n_img, n_rows = int(self.imaged_energies.size), int(self._chosen_rows().size)
        if n_img < self.min_images:
            missing.append(f"{n_img} images < min_images {self.min_images}")
        if n_rows < self.min_rows:
            missing.append(f"{n_rows} rows < min_rows {self.min_rows}")
        if not self._coverage_passes():
            missing.append(f"row coverage gap {self.coverage_gap_:.3g} > {COVERAGE_GAP_MAX:g}: the "
                           f"images show a component that the measured rows miss")
        return f" before the stop rule passed ({'; '.join(missing)})" if missing else ""

    def _given_up(self, kinds: tuple[str, ...], axis: int) -> np.ndarray:
        """Energies (``axis`` 0) or spatial rows (``axis`` 1) that steps of ``kinds`` asked for
        twice or more without completing them (failed rows): not chosen again while others are
        left, so that a persistent fault cannot take every refinement."""
        asks = self._asks(kinds, axis)
        done = set((self.imaged_energies if axis == 0 else self._chosen_rows()).tolist())
        return np.array(sorted(i for i, n in asks.items() if n >= 2 and i not in done), dtype=int)

    def _decide_refinement_image(self) -> Decision:
        avoid = self._given_up(("image",), 0)
        if self.energy_refinement == "dictionary" or self._chosen_rows().size == 0:
            return self._image_decision(*self._choose_energies(1, avoid=avoid))
        excess, scale, floor = self._residual_excess()
        if avoid.size and avoid.size < np.isfinite(excess).sum():
            excess[avoid] = -np.inf
        if not np.nanmax(excess - floor) > 1e-9 * scale:
            # the images explain every energy to within the noise's fluctuation (or, on
            # noise-free data, to rounding): nothing to choose by — an argmax of noise would
            # pick near-duplicates (an ill-conditioned core) and of rounding errors would not be
            # reproducible (resume, recompute). Draw from the dictionary.
            return self._image_decision(*self._choose_energies(1, avoid=avoid))
        # ties to ~1e-8 of the typical row energy go to the lowest index, whatever the rounding
        e = int(np.argmax(np.round(excess / scale, 8)))
        w = np.clip(excess, 0.0, None)  # the maximum is above the floor (>= 0): w.sum() > 0
        return self._image_decision(np.array([e]), w / w.sum())

    def _residual_columns(self) -> tuple[np.ndarray, int]:
        """G = [C, D̃], shape (n_E, m + n_dict), and m: the CUR columns C (the m = rows · n_x
        values, OD, of the spatial rows measured at every energy) and the dictionary's nonzero
        spectra as unit columns scaled so that together they weigh as much as C."""
        n_e = self.energies.size
        C = self._od[:, self._chosen_rows(), :].reshape(n_e, -1)
        m = C.shape[1]
        if self.dictionary is not None:
            norms = np.linalg.norm(self.dictionary, axis=0)
            D = self.dictionary[:, norms > 0] / norms[norms > 0]
            if D.shape[1]:
                weight = np.sqrt(np.median(np.einsum("ij,ij->j", C, C)) * m / D.shape[1])
                return np.hstack([C, D * weight]), m
        return C, m

    def _residual_excess(self) -> tuple[np.ndarray, float, np.ndarray]:
        """Per energy: what the imaged energies leave unexplained of its measured spatial rows.

        ``‖g_e − Q Qᵀ g_e‖² − (m − k) σ_e²`` with ``g_e`` the energy's row of G = [C, D̃]: C the CUR
        columns (the m = rows · n_x values of the spatial rows measured at every energy) and D̃
        the dictionary's spectra (unit columns scaled so that together they weigh as much as C:
        a few measured rows may miss a material that the dictionary knows); Q an orthonormal
        basis of the k imaged energies' rows of G, and σ_e² the noise variance at that energy
        from second differences along x (what white noise alone leaves in the residual of C);
        −inf at imaged energies. Returns the scores, shape (n_E,), OD²; the mean ‖g_e‖² (the
        scale of rounding); and the significance floor 4 σ_e² √(2 (m − k)) (4 standard
        deviations of σ_e² χ²_{m−k}), shape (n_E,).
        """
        n_e = self.energies.size
        G, m = self._residual_columns()
        imaged = self.imaged_energies
        Q, _ = np.linalg.qr(G[imaged].T)
        resid = G - (G @ Q) @ Q.T
        # per energy, from second differences along x: the OD noise of a Poisson detector grows
        # with the absorption, and a single value for the stack (the smaller estimate that the
        # stop rule uses) would count the extra noise of the absorbing energies as unexplained
        noise = self._noise_variances(np.arange(n_e), pooled_only=self.shape[1] >= 3)
        dof = m - min(imaged.size, m)
        excess = np.einsum("ij,ij->i", resid, resid) - dof * noise
        excess[imaged] = -np.inf
        # 4 standard deviations of the noise's own residual (σ² χ²_dof has std σ² √(2 dof))
        floor = 4.0 * noise * np.sqrt(2.0 * dof)
        return excess, float(np.einsum("ij,ij->", G, G) / n_e) or 1.0, floor

    def _decide_row_scan(self) -> Decision:
        chosen = self._chosen_rows()
        n_y = self.shape[0]
        avoid = self._given_up(("rows", "row_scan"), 1)  # rows that failed twice
        if chosen.size + avoid.size >= n_y:
            avoid = avoid[:0]
        if self._coverage_blocked:  # the rule passed but the rows miss what the images show
            return self._decide_coverage_row_scan(chosen, avoid)
        k = chosen.size + 1
        V = row_basis(self._images(), k)
        scores = residual_row_norms(V, chosen)  # ARP's distribution / the pivoted scores
        if self.row_refinement == "pivoted":
            # the raster's first and last lines only when no other row is left (see the docstring)
            edges = (0, n_y - 1)
            rows = pivoted_rows(V, k, preselected=chosen, exclude=np.union1d(edges, avoid))
            if rows[-1] not in edges:  # they were left out, so they scored nothing
                scores[list(edges)] = 0.0
        elif avoid.size:  # counted as chosen, so that ARP draws another row
            pre = np.union1d(chosen, avoid)
            rows = self._pick_rows(row_basis(self._images(), pre.size + 1), pre.size + 1,
                                   preselected=pre)
        else:
            rows = self._pick_rows(V, k, preselected=chosen)
        scores[avoid] = 0.0
        new = int(rows[-1])
        total = scores.sum()
        # (numerically zero residuals everywhere: both choices fell back to a uniform draw / the
        # lowest index, from no scores worth recording)
        weights = scores / total if total > 1e-24 * n_y else None
        return Decision(0, "row_scan", grid_pairs(self._energies_not_imaged(), [new]),
                        row_weights=weights)

    def _decide_coverage_row_scan(self, chosen: np.ndarray, avoid: np.ndarray) -> Decision:
        """The row scan a held stop asks for: the row where the combination of the images that
        the measured rows miss most (the coverage gap's eigenvector u) is strongest, by the sum
        of ``(u @ images)²`` over the row's pixels. Rows chosen or given up on score 0; the
        raster's first and last lines are left out while another row is left (as for pivoted
        rows). Deterministic given the images; the scores, normalised, are ``row_weights``."""
        n_y, n_x = self.shape
        _, u, images = self._row_coverage()  # the rows measured at every energy are ``chosen``
        scores = np.square(u @ images).reshape(n_y, n_x).sum(axis=1)
        scores[np.union1d(chosen, avoid).astype(int)] = 0.0
        free = np.setdiff1d(np.arange(n_y), np.union1d(chosen, avoid))
        inner = np.setdiff1d(free, [0, n_y - 1])
        candidates = inner if inner.size else free
        top = float(scores[candidates].max())
        # near-ties (within 1e-8 of the best) go to the lowest row, whatever the rounding
        new = int(candidates[np.argmax(np.round(scores[candidates] / top, 8))]) if top > 0 \
            else int(candidates[0])
        total = scores.sum()
        weights = scores / total if total > 0 else None
        return Decision(0, "row_scan", grid_pairs(self._energies_not_imaged(), [new]),
                        row_weights=weights)

    def _stop_record(self):
        rec = Planner._stop_record(self)
        if hasattr(self, "_last"):
            rec.rank, rec.condition, rec.completion_variation, rec.spectral_variation = self._last
            rec.extra.update(self._eval_extra)
            rec.extra.update(self.prediction_)
            if self.row_coverage:
                rec.extra["coverage_gap"] = self.coverage_gap_
        return rec

    def _complete(self):
        return self._cur().matrix.reshape(self._od.shape)

    def report(self):
        r = super().report()
        r["refinements"] = self._refinements
        r["mode"] = self.mode
        r["stop_rule"] = self.stop_rule
        r["images_per_row"] = self.images_per_row
        r["min_rows"] = self.min_rows
        r["row_coverage"] = self.row_coverage
        r.update(self.prediction_)
        if self.row_coverage:
            r["coverage_gap"] = self.coverage_gap_
        return r
