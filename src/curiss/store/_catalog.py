"""Open the run catalog (embedded Tiled SQLite or a Tiled profile) and make its writer callback."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Any

__all__ = ["open_catalog", "writer_for", "journal_dir_for", "DEFAULT_BATCH_SIZE", "ROOT_SPEC"]

#: Events per stream that the writer buffers before writing them (see :func:`writer_for`).
DEFAULT_BATCH_SIZE = 10

#: The spec the catalog root carries so that bluesky-tiled-plugins and databroker read it as
#: a catalog of Bluesky runs (``CatalogOfBlueskyRuns`` client, ``Broker(client)``).
ROOT_SPEC = {"name": "CatalogOfBlueskyRuns", "version": "3.0"}

_CACHE: dict[tuple[str, str], Any] = {}
_ORIGIN: dict[int, tuple[str, str]] = {}  # id(client) -> (kind, target) of the clients opened here
_LOCK = threading.Lock()

# Context.from_app wraps the app in starlette's TestClient, which warns that it uses httpx.
# Harmless for an in-process app; silenced here only, by its message.
_STARLETTE_MESSAGE = r".*httpx.*starlette\.testclient.*"


def _looks_like_path(s: str) -> bool:
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(c in s for c in seps) or s.startswith((".", "~"))


def _is_profile(name: str) -> bool:
    try:
        from tiled.profiles import load_profiles
    except ImportError:  # pragma: no cover - tiled is a dependency
        return False
    try:
        return name in load_profiles()
    except Exception:  # a broken profile file elsewhere must not hide the question
        return False


def _resolve(store) -> tuple[str, str]:
    """Classify ``store`` as ``("dir", absolute path)``, ``("profile", name)`` or ``("uri", uri)``."""
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
        if isinstance(store, bytes):
            store = os.fsdecode(store)
        return "dir", str(Path(store).expanduser().resolve())
    if not isinstance(store, str):
        raise TypeError(f"store must be a directory path (str or os.PathLike) or a Tiled profile "
                        f"name; got {type(store).__name__}")
    if not store.strip():
        raise ValueError("store must be a directory path or a Tiled profile name; got an empty string")
    if store.startswith(("http://", "https://")):
        return "uri", store
    path = Path(store).expanduser()
    if path.exists() or _looks_like_path(store):
        return "dir", str(path.resolve())
    if _is_profile(store):
        return "profile", store
    raise ValueError(
        f"{store!r} is neither an existing directory nor a Tiled profile name; to create a new "
        f"catalog directory give a path with a separator (e.g. './{store}'), or check "
        f"`tiled profile list` for the profile names"
    )


def default_data_dir() -> Path:
    """The per-user curiss data folder (catalog, demo figures).

    ``$CURISS_DATA_DIR`` if set, else ``$XDG_DATA_HOME/curiss`` (an absolute
    ``$XDG_DATA_HOME`` only: the XDG specification says a relative one must be ignored), else
    ``~/.local/share/curiss``, on every platform. ``curiss demo``, ``curiss show`` /
    ``export`` / ``recover`` and the shipped IPython / queueserver profile all use this rule
    (through :func:`default_store`), so a run written by one is found by the others.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    env = os.environ.get("CURISS_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "curiss"


def default_store() -> str:
    """The catalog used when none is given: ``$CURISS_STORE``, else ``default_data_dir()/catalog``.

    Returns
    -------
    str
        A directory, a Tiled profile name or a URI (whatever ``$CURISS_STORE`` holds), as
        :func:`open_catalog` accepts.
    """
    return os.environ.get("CURISS_STORE", "").strip() or str(default_data_dir() / "catalog")


def is_catalog_dir(path: str | os.PathLike) -> bool:
    """Whether the directory ``path`` holds an embedded catalog (a non-empty ``catalog.db``).

    :func:`open_catalog` initialises a new catalog in a directory that fails this check.

    Parameters
    ----------
    path : str or os.PathLike
        A local directory.

    Returns
    -------
    bool
    """
    db = Path(path) / "catalog.db"
    return db.is_file() and db.stat().st_size > 0


def _open_directory(directory: str):
    from tiled.catalog import from_uri
    from tiled.client import from_context
    from tiled.client.context import Context
    from tiled.server.app import build_app

    d = Path(directory)
    bad = sorted({c for c in "#?" if c in str(d.absolute())})
    if bad:  # Tiled makes file:// URIs of these paths, where # and ? end the path
        raise ValueError(f"store {str(d.absolute())!r} contains {' and '.join(bad)}, which the "
                         f"catalog's storage URIs cannot hold (every write would fail); choose "
                         f"a folder whose path has neither")
    if d.exists() and not d.is_dir():
        raise ValueError(f"store {directory!r} exists and is not a directory")
    d.mkdir(parents=True, exist_ok=True)
    (d / "data").mkdir(exist_ok=True)
    db = d / "catalog.db"
    # `init_if_not_exists` runs `tiled catalog init` in a subprocess (~3.5 s): only for a new db.
    new = not is_catalog_dir(d)
    adapter = from_uri(
        f"sqlite:///{db}",
        specs=[dict(ROOT_SPEC)],
        writable_storage=[str(d / "data"), f"sqlite:///{d / 'storage.sqlite'}"],
        init_if_not_exists=new,
    )
    app = build_app(adapter)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_STARLETTE_MESSAGE)
        context = Context.from_app(app)
    return from_context(context)


def _open_profile(name: str):
    from tiled.client import from_profile

    with warnings.catch_warnings():  # a profile with an in-line ("direct") app warns the same way
        warnings.filterwarnings("ignore", message=_STARLETTE_MESSAGE)
        with _refusals(f"Tiled profile {name!r}"):
            return from_profile(name)


def _open_uri(uri: str):
    import httpx
    from tiled.client import from_uri

    try:
        with _refusals(f"the Tiled server at {uri}"):
            return from_uri(uri)
    except httpx.TransportError as exc:  # refused, timed out, unknown host
        raise ValueError(f"cannot reach the Tiled server at {uri} ({type(exc).__name__}: "
                         f"{exc}); is it running, and is the address right?") from exc


@contextlib.contextmanager
def _refusals(what: str):
    """Turn a server's refusal to let us in into a ``ValueError`` that says what to set.

    Tiled raises a ``RuntimeError`` ("This server requires API key authentication ...") when no
    key is given and a ``ClientError`` (401/403) for a key it does not accept; both used to reach
    the command line as a traceback.
    """
    from tiled.client.utils import ClientError

    try:
        yield
    except RuntimeError as exc:
        if "api key" not in str(exc).lower():
            raise
        raise ValueError(f"{what} requires an API key: set TILED_API_KEY (or api_key in the "
                         f"Tiled profile)") from exc
    except ClientError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status not in (401, 403):
            raise
        raise ValueError(f"{what} refused the API key ({str(exc).split(' http')[0]}); "
                         f"check TILED_API_KEY (or api_key in the Tiled profile)") from exc


def open_catalog(store: str | os.PathLike):
    """Open (or create) the catalog of runs, once per process.

    Parameters
    ----------
    store : str or os.PathLike
        - a directory (an ``os.PathLike``, an existing path, or a string with a path separator
          such as ``"./runs"``): the embedded catalog, in-process, no server and no socket:
          ``DIR/catalog.db`` (Tiled SQLite catalog), array data as zarr under ``DIR/data`` and
          tabular data in ``DIR/storage.sqlite``. A new directory (or one without
          ``catalog.db``) is created and initialised; an existing one is reopened as is.
        - a Tiled profile name (``tiled profile list``), e.g. a Tiled server on PostgreSQL.
        - an ``http(s)://`` URI of a Tiled server.

    Returns
    -------
    bluesky_tiled_plugins.CatalogOfBlueskyRuns
        The root client; ``catalog[uid]`` is a run (see :func:`curiss.store.load_run`). The
        embedded catalog's root carries the ``CatalogOfBlueskyRuns`` spec, so
        ``databroker.Broker(catalog)`` (v1 API) and ``catalog.v2`` work on it as well.

    Notes
    -----
    Opening costs seconds (imports, app, SQLite), so the client is cached per resolved
    directory (or profile name / URI) for the life of the process: a second call returns the
    same object.

    Raises
    ------
    TypeError
        ``store`` is neither a string nor a path.
    ValueError
        ``store`` is empty, a file, a bare name that is neither a directory nor a profile, a
        directory whose path holds ``#`` or ``?``, the URI of a server that cannot be
        reached, or a server (URI or profile) that wants an API key and got none or a wrong one.
    """
    kind, target = _resolve(store)
    key = (kind, target)
    with _LOCK:
        client = _CACHE.get(key)
        if client is None:
            opener = {"dir": _open_directory, "profile": _open_profile, "uri": _open_uri}[kind]
            client = opener(target)
            _CACHE[key] = client
            _ORIGIN[id(client)] = key
    return client


def journal_dir_for(catalog) -> Path:
    """The journal folder :func:`writer_for` uses for ``catalog``.

    ``DIR/journal`` for a directory catalog opened by :func:`open_catalog`; otherwise (a Tiled
    server) the per-user folder :func:`curiss.store.default_journal_dir`, one subfolder per
    server or profile.
    """
    from ._journal import default_journal_dir

    if isinstance(catalog, (str, os.PathLike)):
        kind, target = _resolve(catalog)
    else:
        kind, target = _ORIGIN.get(id(catalog), ("uri", str(getattr(catalog, "uri", "unknown"))))
    if kind == "dir":
        return Path(target) / "journal"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{kind}-{target}")
    return default_journal_dir() / safe[:120]


def writer_for(catalog, *, batch_size: int = DEFAULT_BATCH_SIZE, journal=True):
    """A callback that writes every run it sees into ``catalog``; use as ``RE.subscribe(cb)``.

    Parameters
    ----------
    catalog : tiled client or str or os.PathLike
        A writable catalog root (from :func:`open_catalog`), or anything
        :func:`open_catalog` accepts.
    batch_size : int
        Events buffered per stream before they are written. Smaller keeps the catalog more
        current during a run (a reader sees all but at most ``batch_size − 1`` rows of each
        stream); larger writes faster. Everything buffered is written at the stop document,
        also when the plan fails or is aborted. Writer cost measured on this (shared, loaded)
        2-core machine, 500 rows of 64 pixels: batch 1 → ~0.25 s per row, 5 → ~35 ms,
        10 → ~18 ms, 50 → ~6 ms. The default, 10, keeps a live reader within 9 rows.
    journal : bool or str or os.PathLike
        Keep a local journal of every document (:class:`curiss.store.JournaledWriter`), so
        that a process killed mid-run loses none of the rows still in the writer's buffer:
        ``True`` (default) uses :func:`journal_dir_for` ``(catalog)``, a path uses that
        folder, ``False`` writes without a journal. After a crash, :func:`curiss.store.recover`
        puts the journal's runs into the catalog.

    Returns
    -------
    curiss.store.JournaledWriter or bluesky_tiled_plugins.TiledWriter
        The journal in front of a ``TiledWriter`` (``journal=False``: the ``TiledWriter``
        alone). The ``TiledWriter`` is built with ``max_array_size=0``: every array (the detector line, the planner's request,
        the analysis cube) is written as zarr, never into the SQLite table (small arrays in
        SQLite storage break it). Boolean arrays are stored as declared in the descriptor's
        ``dtype_numpy`` (``|b1`` or ``|u1`` both work); without it they come back as float64,
        which :func:`curiss.store.load_run` casts back.

    Notes
    -----
    Subscribe it before any other callback. The RunEngine hands each document to its callbacks
    in the order they were subscribed, and a callback that raises stops that document there:
    with a faulty callback first, the row being emitted reaches neither the journal nor the
    catalog.

    An embedded catalog directory stores its files by absolute path (Tiled's ``file://``
    asset URIs, in ``catalog.db``): move or rename the directory and its runs can no longer be
    read (Tiled refuses files outside its storage).
    """
    if isinstance(catalog, (str, os.PathLike)):
        catalog = open_catalog(catalog)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int >= 1; got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if not hasattr(catalog, "create_container") or not hasattr(catalog, "include_data_sources"):
        raise TypeError(f"catalog must be a writable Tiled container client (from open_catalog); "
                        f"got {type(catalog).__name__}")
    from bluesky_tiled_plugins import TiledWriter

    writer = TiledWriter(catalog, batch_size=batch_size, max_array_size=0)
    if journal is False or journal is None:
        return writer
    from ._journal import JournaledWriter

    if journal is True:
        folder = journal_dir_for(catalog)
    elif isinstance(journal, (str, os.PathLike)):
        folder = Path(journal)
    else:
        raise TypeError(f"journal must be True, False or a folder path; got {type(journal).__name__}")
    return JournaledWriter(writer, folder)
