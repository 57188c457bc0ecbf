"""A local journal of every document, so that a killed process loses no measured row.

The catalog writer (``TiledWriter``) buffers events and writes them in batches: a process killed
mid-run (SIGKILL, power cut, out of memory) would lose the rows still in its buffer. The journal
writes every document, as it is emitted, to a local append-only file before the writer sees it
(one ``write`` + ``flush`` per document: the data reach the operating system at once, so they
survive the death of the process). When the run's stop document has been written to the catalog
the journal file is deleted. A journal file left behind is a run the catalog may hold only in
part; :func:`recover` rewrites it from the journal.

File format: a sequence of msgpack records ``[name, doc]``; numpy arrays are msgpack extension
type 1 holding an ``.npy`` serialisation (read back with ``allow_pickle=False``). While a run is
being written, the writing process holds an exclusive ``flock`` on its journal file; a recoverer
skips files that are locked (the run is alive, possibly in another process).
"""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
import warnings
from pathlib import Path

import msgpack
import numpy as np

try:  # POSIX advisory locks; without them (Windows) a live run's journal is told by its age
    import fcntl
except ImportError:  # pragma: no cover - not on this platform
    fcntl = None

__all__ = ["JournaledWriter", "recover", "read_journal", "default_journal_dir"]

logger = logging.getLogger("curiss.store")

_EXT_NDARRAY = 1
_SUFFIX = ".journal"
_INCOMPLETE = ".incomplete"  # appended to a journal whose writing failed during its run
_KEPT = ".kept"  # appended by recover() to a journal it could not merge with the catalog's copy


def default_journal_dir() -> Path:
    """Per-user journal folder for catalogs that are not a local directory (Tiled servers).

    ``$CURISS_JOURNAL`` if set, else ``$XDG_DATA_HOME/curiss/journal`` (default
    ``~/.local/share/curiss/journal``).
    """
    env = os.environ.get("CURISS_JOURNAL", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path("~/.local/share").expanduser()
    return base / "curiss" / "journal"


def _default(obj):
    if isinstance(obj, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(obj), allow_pickle=False)
        return msgpack.ExtType(_EXT_NDARRAY, buf.getvalue())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"cannot journal a value of type {type(obj).__name__}")


def _ext_hook(code, data):
    if code == _EXT_NDARRAY:
        return np.load(io.BytesIO(data), allow_pickle=False)
    return msgpack.ExtType(code, data)


def read_journal(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """The documents of a journal file, in order.

    A record cut short by the death of the writing process (the last one) is ignored.

    Parameters
    ----------
    path : str or os.PathLike
        A ``*.journal`` file.

    Returns
    -------
    list of (str, dict)
        ``(name, doc)`` pairs as the RunEngine emitted them (arrays as numpy arrays).
    """
    out: list[tuple[str, dict]] = []
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, ext_hook=_ext_hook, raw=False, strict_map_key=False)
        try:
            for rec in unpacker:
                if isinstance(rec, list) and len(rec) == 2 and isinstance(rec[0], str):
                    out.append((rec[0], rec[1]))
        except Exception as exc:  # a truncated last record, or a damaged one (any decoding error)
            logger.warning("journal %s ends with an incomplete or damaged record (%s: %s); the %d "
                           "documents before it are kept", path, type(exc).__name__, exc, len(out))
    return out


class JournaledWriter:
    """``RE.subscribe`` callback: journal each document locally, then hand it to ``writer``.

    Parameters
    ----------
    writer : callable
        The catalog writer, ``writer(name, doc)`` (a ``TiledWriter``).
    directory : str or os.PathLike
        Folder of the journal files (created if needed; must be writable).

    Notes
    -----
    If the writer raises (a catalog server that went away, a full disk), the run goes on: the
    error is logged and warned once, the writer gets no more documents of that run, and the
    journal is kept for :func:`recover`. A measurement is never aborted because the catalog
    is unavailable while the journal holds it. Once the journal has failed too (a full disk
    under both), the callback raises :class:`RuntimeError` and the RunEngine aborts the run:
    nothing would keep what it went on measuring. What reached either copy stays there.
    """

    def __init__(self, writer, directory: str | os.PathLike):
        self.writer = writer
        self.directory = Path(directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{uuid.uuid4().hex}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"the journal folder {str(self.directory)!r} is not writable ({exc}); "
                             "give writer_for(..., journal=FOLDER) a writable folder, or "
                             "journal=False to run without one") from exc
        self._file = None
        self._path: Path | None = None
        self._writer_failed: BaseException | None = None
        self._lost = False  # both copies failed for this run (raised once)

    @property
    def path(self) -> Path | None:
        """The journal file of the run being written (None between runs)."""
        return self._path

    def _open(self, uid: str) -> None:
        self._close(delete=False)
        path = self.directory / f"{uid}{_SUFFIX}"
        self._file = open(path, "ab")
        self._path = path  # only once it exists: the messages say this file holds the run
        if fcntl is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _mark_incomplete(self) -> None:
        """Rename the journal of this run to ``UID.journal.incomplete``: it holds the run only up
        to its failure, so :func:`recover` must not take it for the whole run."""
        if self._path is None:
            return
        try:
            self._path = self._path.rename(self._path.with_name(self._path.name + _INCOMPLETE))
        except OSError:  # pragma: no cover - recover() also compares it with the catalog's copy
            logger.exception("cannot mark the journal %s incomplete", self._path)

    def _close(self, *, delete: bool) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
        if delete and self._path is not None:
            self._path.unlink(missing_ok=True)
        self._file = None
        self._path = None

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self._writer_failed = None
            self._lost = False
            try:
                self._open(doc["uid"])
            except OSError as exc:
                logger.exception("cannot open the journal for run %s", doc.get("uid"))
                warnings.warn(f"cannot open the curiss journal in {self.directory} ({exc}); "
                              "this run is written to the catalog only", RuntimeWarning,
                              stacklevel=2)
                self._file = None
        if self._file is not None:
            try:
                self._file.write(msgpack.packb([name, doc], default=_default, use_bin_type=True))
                self._file.flush()
            except (OSError, TypeError) as exc:  # a full disk must not stop the measurement
                logger.exception("the journal %s failed on a %r document", self._path, name)
                if self._writer_failed is None:
                    warnings.warn(f"the curiss journal {self._path} failed ({type(exc).__name__}: "
                                  f"{exc}); the run goes on, written to the catalog only",
                                  RuntimeWarning, stacklevel=2)
                self._file.close()
                self._file = None
                self._mark_incomplete()
        if self._writer_failed is None:
            try:
                self.writer(name, doc)
            except Exception as exc:  # keep measuring while the journal holds everything
                self._writer_failed = exc
                logger.exception("the catalog writer failed on a %r document", name)
                if self._file is not None:
                    warnings.warn(
                        f"the catalog writer failed ({type(exc).__name__}: {exc}); the run goes "
                        f"on and every document is kept in the journal {self._path}; run "
                        "curiss.store.recover(catalog) when the catalog is back", RuntimeWarning,
                        stacklevel=2)
                elif name == "stop":  # nothing is raised at the stop: say what is lost
                    journal = (f"the journal {self._path} holds the run up to its own failure"
                               if self._path else "no journal could be opened")
                    warnings.warn(
                        f"the catalog writer failed on the run's stop document "
                        f"({type(exc).__name__}: {exc}) after the journal had failed: the end of "
                        f"the run (its stop document, and events the writer had not flushed "
                        f"yet) is in neither copy; {journal}", RuntimeWarning, stacklevel=2)
        if name == "stop":
            self._close(delete=self._writer_failed is None)
        elif self._file is None and self._writer_failed is not None and not self._lost:
            self._lost = True  # raised once: the abort's own documents must get through
            journal = (f"the journal {self._path} holds the run up to its failure" if self._path
                       else "no journal could be opened")
            raise RuntimeError(
                f"neither the catalog writer ({type(self._writer_failed).__name__}: "
                f"{self._writer_failed}) nor the journal can store this run any more: stopping it, "
                f"so that no beam is spent on data nothing keeps; {journal}, the catalog up to "
                "the writer's failure (curiss.store.recover(catalog) merges them once the "
                "catalog takes writes again)")

    def __repr__(self) -> str:
        return f"JournaledWriter({self.writer!r}, directory={str(self.directory)!r})"


def _claim(path: Path):
    """Open ``path`` and hold an exclusive lock on it; None if another process holds it (a live
    run, or another recover) or the file is gone."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    if fcntl is None:  # pragma: no cover
        if time.time() - path.stat().st_mtime < 60:
            f.close()
            return None
        return f
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # another recover may have finished and removed this file between our open and our lock
        if os.fstat(f.fileno()).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
    except OSError:
        f.close()
        return None
    return f


def _counts(docs: list[tuple[str, dict]]) -> dict[str, int]:
    """Events per stream name in a document sequence."""
    streams = {d["uid"]: d.get("name", "primary") for n, d in docs if n == "descriptor"}
    num: dict[str, int] = {}
    for n, d in docs:
        if n == "event":
            s = streams.get(d["descriptor"], "primary")
            num[s] = num.get(s, 0) + 1
        elif n == "event_page":
            s = streams.get(d["descriptor"], "primary")
            num[s] = num.get(s, 0) + len(d["seq_num"])
    return num


def _catalog_counts(run) -> dict[str, int]:
    """Complete events per stream of a run in the catalog."""
    from ._load import _read_stream, _stream_nodes

    out = {}
    for name, node in _stream_nodes(run).items():
        cols, times = _read_stream(node)  # (cut to the events complete in every column)
        out[name] = len(times) if times is not None else len(next(iter(cols.values()), ()))
    return out


def _stop_for(docs: list[tuple[str, dict]], reason: str) -> dict:
    start = docs[0][1]
    num = _counts(docs)
    last = max((d.get("time", start["time"]) for _, d in docs), default=start["time"])
    return {"uid": str(uuid.uuid4()), "time": float(last), "run_start": start["uid"],
            "exit_status": "abort", "reason": reason, "num_events": num}


def recover(catalog, journal: str | os.PathLike | None = None, *, batch_size: int = 100) -> list[str]:
    """Write into ``catalog`` every run whose journal was left behind by a dead process.

    For each journal file not held by a live process (nor by another ``recover``, which holds
    the file's lock while it works): the run's partial copy in the catalog (if any) is replaced
    by the journal's full copy, written through the same writer as a normal run; a run that had
    no stop document gets one with ``exit_status="abort"`` and a ``reason`` saying it was
    recovered. The journal file is deleted once written.

    A journal whose writing failed during its run (a full disk) was renamed
    ``UID.journal.incomplete`` by the writer. Whenever the catalog's copy holds more events of a
    stream than the journal, that copy is never replaced: it is closed with a stop document, and
    the journal is deleted if the catalog holds all of it, else kept with ``.kept`` appended to
    its name, with a warning. A journal that cannot be read or written is left in place with a
    warning, and the other journals are still recovered.

    Parameters
    ----------
    catalog : tiled client or str or os.PathLike
        The catalog (anything :func:`curiss.store.open_catalog` accepts).
    journal : str or os.PathLike, optional
        The journal folder; default: the one :func:`curiss.store.writer_for` uses for this
        catalog (``DIR/journal`` for a directory catalog, else :func:`default_journal_dir`).
    batch_size : int
        Events per write while recovering.

    Returns
    -------
    list of str
        The uids of the runs recovered (empty when there was nothing to do).

    Raises
    ------
    ValueError
        ``journal`` is a file (a ``.journal`` file itself), not its folder.
    """
    from ._catalog import journal_dir_for, open_catalog

    if isinstance(catalog, (str, os.PathLike)):
        catalog = open_catalog(catalog)
    folder = Path(journal) if journal is not None else journal_dir_for(catalog)
    if journal is not None and folder.exists() and not folder.is_dir():
        # "nothing to recover" here could make a user delete the journal that holds the run
        raise ValueError(f"journal must be the journal folder; {folder} is a file (give its "
                         f"folder, {folder.parent})")
    if not folder.is_dir():
        return []
    done = []
    paths = list(folder.glob(f"*{_SUFFIX}")) + list(folder.glob(f"*{_SUFFIX}{_INCOMPLETE}"))
    for path in sorted(paths, key=lambda p: p.stat().st_mtime):
        f = _claim(path)
        if f is None:
            logger.info("journal %s belongs to a run in progress (or another recover); left alone",
                        path)
            continue
        try:
            uid = _recover_one(catalog, path, batch_size)
        except Exception as exc:  # one bad file must not stop the others (nor a profile's start)
            logger.exception("could not recover the journal %s", path)
            warnings.warn(f"could not recover the journal {path} ({type(exc).__name__}: {exc}); "
                          "it is left in place", RuntimeWarning, stacklevel=2)
            continue
        finally:
            f.close()
        if uid is not None:
            done.append(uid)
    return done


def _recover_one(catalog, path: Path, batch_size: int) -> str | None:
    """Recover one journal file (locked by the caller); the run's uid, or None if nothing to do."""
    from bluesky_tiled_plugins import TiledWriter

    incomplete = path.name.endswith(_INCOMPLETE)
    docs = read_journal(path)
    if not docs or docs[0][0] != "start":
        logger.warning("journal %s has no start document; left alone", path)
        return None
    uid = docs[0][1]["uid"]
    reason = ("recovered from the curiss journal: the process writing this run stopped before "
              "the run's end (killed, crashed, or the catalog was unavailable)")
    if incomplete:
        reason += "; the journal itself had failed during the run, so it may lack the last rows"
    existing = None
    try:
        existing = catalog[uid]
    except KeyError:
        pass
    if existing is not None:
        if existing.metadata.get("stop"):
            # the writer wrote the stop document: the catalog's copy is complete (the process
            # died before deleting the journal, or the journal itself failed)
            path.unlink()
            return None
        have, mine = _catalog_counts(existing), _counts(docs)
        if any(n > mine.get(name, 0) for name, n in have.items()):
            # the catalog's copy holds events the journal lacks (the journal failed first):
            # never replace it; give it a stop document
            stop = dict(docs[-1][1]) if docs[-1][0] == "stop" else _stop_for(docs, reason)
            stop["num_events"] = {k: max(have.get(k, 0), mine.get(k, 0))
                                  for k in set(have) | set(mine)}
            existing.update_metadata(metadata={"stop": stop}, drop_revision=True)
            if all(have.get(name, 0) >= n for name, n in mine.items()):
                path.unlink()  # every event of the journal is in the catalog's copy
            else:
                kept = path.rename(path.with_name(path.name + _KEPT))
                warnings.warn(
                    f"run {uid}: the catalog and the journal each hold events the other lacks "
                    f"(events per stream: catalog {have}, journal {mine}); the catalog's copy was "
                    f"kept and closed, and the journal is kept as {kept} (read_journal reads it)",
                    RuntimeWarning, stacklevel=3)
            logger.warning("closed run %s in the catalog (its copy has more events than the "
                           "journal %s)", uid, path)
            return uid
        catalog.delete_contents(uid, recursive=True, external_only=False)
    if docs[-1][0] != "stop":
        docs.append(("stop", _stop_for(docs, reason)))
    writer = TiledWriter(catalog, batch_size=batch_size, max_array_size=0)
    for name, doc in docs:
        writer(name, doc)
    path.unlink()
    logger.warning("recovered run %s from its journal (%d documents)", uid, len(docs))
    return uid
