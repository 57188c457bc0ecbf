"""Planner protocol and the bookkeeping every strategy shares.

A planner is a stateful strategy object driven in lockstep (like blop's optimizers or
bluesky-adaptive's agents): ``suggest()`` returns a :class:`Request` (a group of
``(energy_index, row_index)`` pairs to measure), the caller measures each pair and hands the row to
``ingest()``, and asks again until ``suggest()`` returns ``None``. Planners never import bluesky:
the same object runs under a RunEngine (``curiss.plans``) and offline (``curiss.replay``).
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cost import CostModel
from ..linalg._checks import is_real_dtype

KINDS = ("image", "rows", "row_scan")

_CONTROLLER = None


def _blas_limit(threads):
    """Context limiting BLAS to ``threads`` (no-op for None); the controller is built once."""
    global _CONTROLLER
    if threads is None:
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=int(threads), user_api="blas")


@dataclass(frozen=True)
class Request:
    """A group of spatial rows to measure, decided at once.

    Attributes
    ----------
    kind : {"image", "rows", "row_scan"}
        ``"image"``: full images (every row) at some energies; ``"rows"``: chosen spatial rows at the
        energies not imaged; ``"row_scan"``: one spatial row at every energy not imaged.
    pairs : ndarray of int, shape (n_pairs, 2)
        ``(energy_index, row_index)`` pairs, sorted by energy then row (one monochromator move per
        energy).
    iteration : int
        Index of the decision (0-based) in the planner's history.
    energy_weights, row_weights : ndarray or None
        The weights the decision chose its energies and rows by, shapes (n_E,) and (n_y,),
        summing to 1: the sampling distribution of a random choice (for several draws made one
        after another, e.g. by ARP, the leverage scores they start from), or the normalised
        scores of a greedy one (ACURISS's residual energy refinement and pivoted row scans;
        largest at the choice). An ACURISS row scan, one new row, records exactly the scores
        (pivoted) or the distribution (ARP) it was chosen by, given the rows chosen before.
        ``None`` when the decision weighed no candidates on that axis.
    """

    kind: str
    pairs: np.ndarray
    iteration: int
    energy_weights: np.ndarray | None = None
    row_weights: np.ndarray | None = None

    @property
    def energy_indices(self) -> np.ndarray:
        """Sorted distinct energy indices in the request, shape (k,)."""
        return np.unique(self.pairs[:, 0])

    @property
    def row_indices(self) -> np.ndarray:
        """Sorted distinct row indices in the request, shape (k,)."""
        return np.unique(self.pairs[:, 1])

    def as_mask(self, n_energies: int, n_rows: int) -> np.ndarray:
        """The request as a boolean (n_energies, n_rows) array."""
        m = np.zeros((n_energies, n_rows), dtype=bool)
        m[self.pairs[:, 0], self.pairs[:, 1]] = True
        return m

    def __len__(self) -> int:
        return len(self.pairs)


def _sorted_pairs(energy_idx, row_idx) -> np.ndarray:
    pairs = np.column_stack([np.asarray(energy_idx, int).ravel(), np.asarray(row_idx, int).ravel()])
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order]


def grid_pairs(energy_idx, row_idx) -> np.ndarray:
    """All pairs of the given energies × rows, sorted by energy then row; shape (n, 2)."""
    e, r = np.meshgrid(np.asarray(energy_idx, int), np.asarray(row_idx, int), indexing="ij")
    return _sorted_pairs(e, r)


def _real_numbers(values, name: str, what: str) -> np.ndarray:
    """``values`` as a float array; complex, bool, str or object arrays are refused (numpy would
    drop an imaginary part with only a warning, or read True as 1)."""
    a = np.asarray(values)
    if not is_real_dtype(a):
        raise TypeError(f"{name} must be real numbers ({what}); got an array of dtype {a.dtype}")
    return a.astype(float, copy=False)


def validate_energies(energies) -> np.ndarray:
    e = _real_numbers(energies, "energies", "photon energies in eV")
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"energies must be a 1-D array of at least 2 values (eV); got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        bad = np.flatnonzero(~np.isfinite(e))
        raise ValueError(f"energies must be finite; non-finite at indices {bad[:5].tolist()}")
    d = np.diff(e)
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0])
        raise ValueError(
            "energies must be strictly increasing (no duplicates); "
            f"energies[{i}]={e[i]!r} is followed by energies[{i + 1}]={e[i + 1]!r}"
        )
    return e


def validate_shape(shape) -> tuple[int, int]:
    try:
        if isinstance(shape, (str, bytes)) or any(
                isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Real) for s in shape):
            raise TypeError  # "45" or ("4", "5") read as (4, 5); (True, 5) as (1, 5)
        n_y, n_x = (int(s) for s in shape)
        ok = all(isinstance(s, numbers.Integral) or float(s).is_integer() for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (n_y, n_x), two positive integers; got {shape!r}") from None
    if not ok or n_y < 1 or n_x < 1:
        raise ValueError(f"shape must be (n_y, n_x), two positive integers; got {shape!r}")
    return n_y, n_x


def validate_seed(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(
            f"seed must be None, a non-negative int or a numpy.random.Generator; got {seed!r} "
            f"({type(seed).__name__})"
        )
    return int(seed)


def _pair(energy_index, row_index) -> tuple[int, int]:
    """``(energy_index, row_index)`` as ints; a float or bool index is refused, not truncated."""
    for name, v in (("energy_index", energy_index), ("row_index", row_index)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an integer index; got {v!r} ({type(v).__name__})")
    return int(energy_index), int(row_index)


def validate_ratio(name: str, value, *, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        # not float(value): "0.2" would be accepted and recorded as a string, True as 1.0
        raise TypeError(f"{name} must be a number in ({low}, {high}]; got {value!r}")
    v = float(value)
    if not np.isfinite(v) or not (low < v <= high):
        raise ValueError(f"{name} must be in ({low}, {high}]; got {value!r}")
    return v


def validate_dictionary(dictionary, n_energies: int) -> np.ndarray | None:
    if dictionary is None:
        return None
    d = _real_numbers(dictionary, "dictionary", "reference spectra, optical density")
    if d.ndim == 1:
        d = d[:, None]
    if d.ndim != 2 or d.shape[0] != n_energies:
        raise ValueError(
            f"dictionary must have shape (n_energies={n_energies}, n_refs) on the stack's energy grid; "
            f"got {np.shape(dictionary)} (interpolate with curiss.io.interpolate_dictionary first)"
        )
    if not np.all(np.isfinite(d)):
        raise ValueError("dictionary contains NaN or Inf values")
    if not np.any(d):
        raise ValueError("dictionary is all zeros: it carries no spectral information")
    return d


@dataclass
class Decision:
    """One entry of a planner's history (also the ``planner`` stream event).

    Attributes
    ----------
    iteration : int
        Position in ``Planner.history`` (0 for the first decision).
    kind : str
        ``"image"`` (every spatial row at some energies), ``"rows"`` (chosen rows at some
        energies), ``"row_scan"`` (ACURISS: one new row at every energy not imaged) or
        ``"stop"`` (the last entry: no rows, ``stop_reason`` says why).
    pairs : ndarray of int, shape (n_pairs, 2)
        The (energy_index, row_index) rows requested (not those measured already).
    energy_weights : ndarray, shape (n_E,), or None
        The distribution or scores the energies were chosen by (normalised to sum 1), when the decision
        chose energies.
    row_weights : ndarray, shape (n_y,), or None
        The distribution or scores the spatial rows were chosen by (normalised), when it chose rows.
    rank, condition : int, float
        Rank and condition number (s_1 / s_r) of the CUR core of the completion the decision
        was based on (ACURISS refinements and stop record, CURISS's stop record); -1 and NaN
        otherwise.
    completion_variation, spectral_variation : float
        ACURISS: relative change of the completion and of the matched cluster spectra since
        the previous completion; NaN otherwise.
    sampling_ratio : float
        Sampling ratio once the request is measured (the stop record: as measured).
    stop_reason : str
        Why the acquisition stopped (the stop record only; "" otherwise).
    extra : dict
        Strategy-specific numbers (e.g. ACURISS's ``prediction_error``, ``coverage_gap``,
        the CUR core's truncation notes), recorded in the ``planner`` stream with the rest.
    """

    iteration: int
    kind: str
    pairs: np.ndarray
    energy_weights: np.ndarray | None = None
    row_weights: np.ndarray | None = None
    rank: int = -1
    condition: float = float("nan")
    completion_variation: float = float("nan")
    spectral_variation: float = float("nan")
    sampling_ratio: float = float("nan")
    stop_reason: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in (
            "iteration", "kind", "pairs", "energy_weights", "row_weights", "rank", "condition",
            "completion_variation", "spectral_variation", "sampling_ratio", "stop_reason")}
        d.update(self.extra)
        return d


# ---------------------------------------------------------------- numerical safety (design §2, §4)
def cur_notes(result) -> dict[str, Any]:
    """Decision-record fields (``Decision.extra``) explaining a CUR completion's rank choice.

    Parameters
    ----------
    result : curiss.linalg.CURResult or None

    Returns
    -------
    dict
        ``{"rank_before_guard": int, "fallback": str}``: the rank the requested rule chose and,
        when the core was truncated further (ill-conditioned core, rank cap above what the data
        supports), the sentence saying so (``""`` otherwise). Empty for ``None``.
    """
    if result is None:
        return {}
    return {"rank_before_guard": int(result.rank_before_guard), "fallback": str(result.fallback)}


def guard_asd_completion(D: np.ndarray, mask: np.ndarray, result) -> tuple[np.ndarray, dict[str, Any]]:
    """Check a LoopedASD completion and fall back to a safe fill when it cannot be used.

    The completion ``result.matrix`` is rejected when it has NaN/Inf, or when its relative
    residual on the measured entries is not finite or exceeds 1 — worse than filling with zeros
    (a diverged run). The documented fallback is then the **per-energy mean fill**: every
    unmeasured entry of energy e gets the mean of the measured values at energy e. It is always
    finite (every energy has a measured row before a completion is attempted) and never worse
    than the zero fill on the measured entries (the mean is their best constant fit).

    Parameters
    ----------
    D : ndarray, shape (n_E, n_pix)
        Measured OD, any value (NaN allowed) where ``mask`` is False.
    mask : ndarray of bool, shape (n_E, n_pix)
        Measured entries; every row has at least one True.
    result : curiss.linalg.ASDResult

    Returns
    -------
    matrix : ndarray, shape (n_E, n_pix)
        ``result.matrix`` or the fallback fill (finite either way).
    notes : dict
        Decision-record fields: ``asd_rank``, ``asd_iterations``, ``asd_residual``,
        ``asd_converged``, ``asd_stop_reason`` (non-convergence is reported, not an error) and
        ``fallback`` (``""`` when the ASD result was used).
    """
    notes: dict[str, Any] = {
        "asd_rank": int(result.rank),
        "asd_iterations": int(result.n_iter),
        "asd_residual": float(result.residual),
        "asd_converged": bool(result.converged),
        "asd_stop_reason": str(result.stop_reason),
        "fallback": "",
    }
    with np.errstate(all="ignore"):
        matrix = result.matrix
    why = None
    if not np.all(np.isfinite(matrix)):
        why = "its completion has NaN/Inf"
    elif not np.isfinite(result.residual):
        why = f"its residual is {result.residual}"
    elif result.residual > 1.0:
        why = f"its relative residual {result.residual:.3g} is worse than the zero fill (1)"
    if why is None:
        return matrix, notes
    counts = mask.sum(axis=1)
    means = np.where(mask, D, 0.0).sum(axis=1) / np.maximum(counts, 1)
    filled = np.where(mask, D, means[:, None])
    notes["fallback"] = (f"LoopedASD result rejected ({why}; stop_reason {result.stop_reason!r}): "
                         "unmeasured entries filled with the per-energy mean of the measured values")
    return filled, notes


class Planner:
    """Base class of the strategies: measured-data bookkeeping and the lockstep protocol.

    Parameters
    ----------
    energies : array_like, shape (n_E,)
        Energy grid in eV, strictly increasing.
    shape : (int, int)
        Raster shape ``(n_y, n_x)``: spatial rows × pixels per row.
    sampling_ratio : float
        Fraction of the stack to measure, in (0, 1].
    dictionary : array_like, shape (n_E, n_refs), optional
        Reference spectra on ``energies``; ``None`` draws energies uniformly.
    seed : None, int or numpy.random.Generator
        Source of all randomness; the same seed gives the same decisions on the same data.
    cost_model : curiss.cost.CostModel or dict, optional
        Time/dose model used for the ``time`` entries of the report and the budget checks.

    Attributes
    ----------
    done : bool
        True once :meth:`suggest` has returned None (the acquisition is finished).
    stop_reason : str or None
        Why it finished (None before).
    history : list of Decision
        Every decision in order, the last one the stop record once ``done``.
    failed : list of (int, int, str)
        Rows given up on (:meth:`mark_failed`): energy index, spatial row index, reason.
    measured_ratio : float
        Fraction of the (energy, spatial row) pairs measured so far.
    mask, row_mask, measured, order, imaged_energies, pending
        The measured state (see each property).
    """

    method = "base"

    class _InitSignature:
        """``inspect.signature(PlannerClass)`` (help(), IDEs): the class's ``__init__``, not the
        ``(*args, **kwargs)`` of :meth:`__new__`."""

        def __get__(self, obj, cls):
            if obj is not None:
                raise AttributeError("__signature__")
            sig = inspect.signature(cls.__init__)
            return sig.replace(parameters=list(sig.parameters.values())[1:])

    __signature__ = _InitSignature()

    #: BLAS threads used by the planner's numerics (``None``: the library default). The matrices
    #: are small and the planner runs between scan steps: one thread was 10x faster for a
    #: 123 x 150 x 150 ACURISS step on a loaded 2-core machine (benchmarks/planner.py).
    blas_threads: int | None = 1

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj._init_args = (args, dict(kwargs))  # for get_params(): rebuild the same planner
        return obj

    #: keywords whose default changed between versions, with the value they had before:
    #: :meth:`get_params` always records them (with the value in effect), so a start document
    #: without one was written before the change and is replayed with the earlier value
    #: (:func:`curiss.store.recompute`).
    earlier_defaults: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        """Constructor keywords of this planner (besides ``energies`` and ``shape``).

        As given, plus the value in effect of each keyword of :attr:`earlier_defaults`.
        ``make_planner(p.method, p.energies, p.shape, **p.get_params())`` builds a fresh planner
        that makes the same decisions on the same data, when ``seed`` is an int. A
        ``numpy.random.Generator`` seed is returned as the same object, already advanced by
        this planner's draws, and ``None`` draws fresh entropy: neither reproduces the
        decisions (the bluesky plans therefore always record an int seed).
        """
        args, kwargs = self._init_args
        params = dict(kwargs)
        for name, value in zip(("energies", "shape"), args):
            params.setdefault(name, value)
        params.pop("energies", None)
        params.pop("shape", None)
        for name in self.earlier_defaults:
            if params.get(name) is None:
                params[name] = getattr(self, name)
        return params

    def __init__(self, energies, shape, *, sampling_ratio: float, dictionary=None, seed=None,
                 cost_model: CostModel | None = None):
        self.energies = validate_energies(energies)
        self.shape = validate_shape(shape)
        self.sampling_ratio = validate_ratio("sampling_ratio", sampling_ratio)
        self.dictionary = validate_dictionary(dictionary, self.energies.size)
        self.seed = validate_seed(seed)
        if isinstance(cost_model, dict):  # as recorded in a start document
            cost_model = CostModel(**cost_model)
        if cost_model is not None and not isinstance(cost_model, CostModel):
            raise TypeError(f"cost_model must be a curiss.cost.CostModel or a dict; got {cost_model!r}")
        self.cost_model = cost_model if cost_model is not None else CostModel()
        self._rng = np.random.default_rng(self.seed)
        n_e, (n_y, n_x) = self.energies.size, self.shape
        self._od = np.full((n_e, n_y, n_x), np.nan)
        self._row_measured = np.zeros((n_e, n_y), dtype=bool)
        self._pending: set[tuple[int, int]] = set()
        self._order: list[tuple[int, int]] = []
        self.failed: list[tuple[int, int, str]] = []  # (energy_index, row_index, reason)
        self.history: list[Decision] = []
        self.done = False
        self.stop_reason: str | None = None
        self._completion_value: Any = None  # dense cube or factored completion (see _completion)
        self._completion_key: int = -1
        self.numerics_: dict[str, Any] = {}  # notes of the last completion (see _note_completion)

    # ------------------------------------------------------------------ protocol
    def suggest(self) -> Request | None:
        """Decide the next group of rows to measure; ``None`` when the acquisition is finished.

        Raises
        ------
        RuntimeError
            If rows of the previous request have not been ingested yet.
        """
        if self._pending:
            missing = sorted(self._pending)[:5]
            raise RuntimeError(
                f"{len(self._pending)} requested rows not ingested yet (e.g. {missing}); "
                "ingest every row of a request before asking for the next one"
            )
        if self.done:
            return None
        with _blas_limit(self.blas_threads):
            decision = self._decide()
        if decision is not None:
            # after a failed row, a strategy's next group (e.g. every non-imaged energy at the
            # chosen rows) can include rows measured already: request only the new ones
            decision.pairs = decision.pairs[~self._row_measured[decision.pairs[:, 0], decision.pairs[:, 1]]]
        if decision is None:
            self.done = True
            if self.stop_reason is None:
                self.stop_reason = "plan complete"
            self.history.append(self._stop_record())
            self._after_stop()
            return None
        decision.iteration = len(self.history)
        if decision.pairs.size == 0:
            raise RuntimeError(f"{type(self).__name__} decided a {decision.kind!r} step whose rows are "
                               "all measured already (after failed rows); nothing new to measure")
        after = self._row_measured.sum() + len(decision.pairs)
        decision.sampling_ratio = after / self._row_measured.size
        self.history.append(decision)
        self._pending = {(int(e), int(r)) for e, r in decision.pairs}
        return Request(decision.kind, decision.pairs.copy(), decision.iteration,
                       decision.energy_weights, decision.row_weights)

    def ingest(self, energy_index: int, row_index: int, values) -> None:
        """Store one measured spatial row.

        Parameters
        ----------
        energy_index, row_index : int
            The pair, which must belong to the current request.
        values : array_like, shape (n_x,)
            Optical density of the row (dimensionless, −ln(I/I0)).
        """
        key = _pair(energy_index, row_index)
        if key not in self._pending:
            if self._row_measured[key] if self._in_range(key) else False:
                raise ValueError(f"row {key} (energy_index, row_index) was already measured")
            raise ValueError(f"row {key} (energy_index, row_index) was not requested by this planner")
        raw = np.asarray(values)
        if raw.dtype.kind not in "iuf":  # not float(): True/False would count as OD 1/0
            raise TypeError(f"row {key} must be real numbers (optical density); got dtype "
                            f"{raw.dtype}")
        v = raw.astype(float)
        if v.shape != (self.shape[1],):
            raise ValueError(f"row {key} must have shape ({self.shape[1]},) (n_x); got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"row {key} contains NaN or Inf; refusing to use it in the completion")
        self._od[key[0], key[1]] = v
        self._row_measured[key] = True
        self._pending.discard(key)
        self._order.append(key)

    def mark_failed(self, energy_index: int, row_index: int, reason: str = "") -> None:
        """Give up on a requested row (the measurement failed): it stays unmeasured.

        The row leaves the pending set, is listed in :attr:`failed`, and no completion ever uses
        it: an energy with a failed row is not an image, and a spatial row with a failed energy is
        not a CUR column, so the strategies work around it (ACURISS may request it again later).
        """
        key = _pair(energy_index, row_index)
        if key not in self._pending:
            raise ValueError(f"row {key} (energy_index, row_index) is not pending")
        self._pending.discard(key)
        self.failed.append((key[0], key[1], str(reason)))

    def completed(self) -> np.ndarray:
        """The completed cube (n_E, n_y, n_x), OD, from what has been measured so far.

        Read-only (cached until the next row is ingested): ``.copy()`` it to modify it.
        """
        key = len(self._order)
        if self._completion_value is None or self._completion_key != key:
            with _blas_limit(self.blas_threads):
                self._completion = self._complete()
            self._completion_key = key
        return self._completion

    @property
    def latest_completion(self) -> np.ndarray | None:
        """The last completion computed (n_E, n_y, n_x), or None; never computes a new one.

        For live displays: does not change the planner's decisions. A completion kept in
        factored form by the last step (ACURISS) is formed here, once (one product of its
        factors), and cached.
        """
        return self._completion

    # The last completion: a dense cube, or a factored one (an object whose ``matrix`` property
    # forms the dense (n_E, n_y*n_x) matrix on demand, e.g. a CURResult computed with
    # dense=False). ``_completion`` always reads as the dense cube (formed on first read).
    @property
    def _completion(self) -> np.ndarray | None:
        value = self._completion_value
        if value is None or isinstance(value, np.ndarray):
            return value
        with _blas_limit(self.blas_threads):
            cube = np.asarray(value.matrix).reshape(self._od.shape)
        cube.flags.writeable = False
        self._completion_value = cube
        return cube

    @_completion.setter
    def _completion(self, value) -> None:
        if isinstance(value, np.ndarray):
            # read-only: completed() and latest_completion hand out this cached cube (no copy)
            value.flags.writeable = False
        self._completion_value = value

    def report(self) -> dict[str, Any]:
        """Summary of the acquisition so far (JSON-friendly scalars and lists)."""
        last = self.history[-1] if self.history else None
        return {
            "method": self.method,
            "sampling_ratio": self.measured_ratio,
            "n_rows_measured": int(self._row_measured.sum()),
            "n_energies_imaged": int(self.imaged_energies.size),
            "imaged_energies": self.imaged_energies.tolist(),
            "n_decisions": len(self.history),
            "rank": int(last.rank) if last is not None else -1,
            "condition": float(last.condition) if last is not None else float("nan"),
            "done": self.done,
            "stop_reason": self.stop_reason,
        }

    # ------------------------------------------------------------------ state
    @property
    def mask(self) -> np.ndarray:
        """Measured entries, bool (n_E, n_y, n_x)."""
        return np.broadcast_to(self._row_measured[:, :, None], self._od.shape).copy()

    @property
    def row_mask(self) -> np.ndarray:
        """Measured spatial rows, bool (n_E, n_y)."""
        return self._row_measured.copy()

    @property
    def measured(self) -> np.ndarray:
        """Measured OD (n_E, n_y, n_x) with NaN where not measured (a copy)."""
        return self._od.copy()

    @property
    def order(self) -> np.ndarray:
        """Measured (energy_index, row_index) pairs in ingestion order, shape (n, 2)."""
        return np.asarray(self._order, dtype=int).reshape(-1, 2)

    @property
    def measured_ratio(self) -> float:
        return float(self._row_measured.mean())

    @property
    def imaged_energies(self) -> np.ndarray:
        """Energy indices whose full image is measured, sorted."""
        return np.flatnonzero(self._row_measured.all(axis=1))

    @property
    def pending(self) -> list[tuple[int, int]]:
        return sorted(self._pending)

    # ------------------------------------------------------------------ for subclasses
    def _decide(self) -> Decision | None:
        raise NotImplementedError

    def _complete(self) -> np.ndarray:
        raise NotImplementedError

    def _after_stop(self) -> None:
        """Called once the stop record is appended to :attr:`history` (default: nothing)."""

    def _note_completion(self, notes: dict[str, Any]) -> None:
        """Record a completion's numerical notes (rank, convergence, fallback).

        They are kept in :attr:`numerics_` and merged into the ``extra`` of the latest record of
        :attr:`history` — the decision whose data the completion used, i.e. the stop record once
        the acquisition is finished — so the planner stream explains every fallback.
        """
        self.numerics_ = dict(notes)
        if self.history:
            self.history[-1].extra.update(notes)

    def _in_range(self, key) -> bool:
        return 0 <= key[0] < self._row_measured.shape[0] and 0 <= key[1] < self._row_measured.shape[1]

    def _stop_record(self) -> Decision:
        return Decision(iteration=len(self.history), kind="stop", pairs=np.zeros((0, 2), int),
                        sampling_ratio=self.measured_ratio, stop_reason=self.stop_reason or "")

    def _energy_weights(self, exclude) -> np.ndarray:
        """Sampling weights of energies: dictionary leverage scores, or uniform; excluded → 0."""
        from ..linalg import leverage_scores

        if self.dictionary is None:
            w = np.ones(self.energies.size)
        else:
            w = leverage_scores(self.dictionary)
        w = w.copy()
        w[np.asarray(list(exclude), dtype=int)] = 0.0
        s = w.sum()
        return w / s if s > 0 else w

    def __repr__(self) -> str:
        n_y, n_x = self.shape
        return (f"{type(self).__name__}(n_energies={self.energies.size}, shape=({n_y}, {n_x}), "
                f"sampling_ratio={self.sampling_ratio}, seed={self.seed!r})")
