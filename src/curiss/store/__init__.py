"""The catalog of runs: open it, write runs into it, read them back.

- :func:`open_catalog` — the embedded Tiled SQLite catalog of a directory (in-process, no
  server), or a Tiled profile (a Tiled server, e.g. on PostgreSQL).
- :func:`writer_for` — the ``RE.subscribe`` callback that writes runs into it
  (``bluesky_tiled_plugins.TiledWriter`` with ``max_array_size=0``).
- :func:`recover` — runs of a killed process back into the catalog, from the local journal that
  :func:`writer_for` keeps of every document.
- :func:`recompute` — the completion again from ``primary`` alone (replays the recorded planner).
- :func:`load_run` — a run back as numpy arrays (:class:`RunData`): the measured optical density,
  mask and counts (n_E, n_y, n_x), the acquisition order, the planner history, the analysis.
- :func:`default_store`, :func:`default_data_dir` — the catalog and the per-user folder used
  when none is given (``$CURISS_STORE``; ``$CURISS_DATA_DIR``, else ``$XDG_DATA_HOME/curiss``,
  else ``~/.local/share/curiss``),
  shared by ``curiss demo``/``show``/``export`` and the shipped profile.

Example
-------
>>> from bluesky import RunEngine
>>> from curiss.plans import curiss_scan
>>> from curiss.store import open_catalog, writer_for, load_run
>>> catalog = open_catalog("./runs")                      # doctest: +SKIP
>>> RE = RunEngine(); RE.subscribe(writer_for(catalog))   # doctest: +SKIP
>>> uid, = RE(curiss_scan(...))                           # doctest: +SKIP
>>> data = load_run(catalog[uid])                         # doctest: +SKIP

Other readers of the same directory (another process, once the run has ended: reading an
embedded catalog while another process writes a run into it can block or fail; live readers
need a Tiled server, see docs/howto-tiled-server.md): ``open_catalog(DIR)`` again; the plain
Tiled client (``tiled.catalog.from_uri`` → ``build_app`` → ``Context.from_app`` →
``from_context``, with the ``CatalogOfBlueskyRuns`` spec); databroker 2.x through
``databroker.catalog[PROFILE]`` (v2/v3 API), or ``databroker.Broker.named(PROFILE)`` (v1 API; needs
databroker's ``back-compat`` extra: humanize, doct, boltons), where ``PROFILE`` is a Tiled profile
(YAML in a ``TILED_PROFILES`` folder) with an in-line app::

    PROFILE:
      direct:
        catalog:
          uri: sqlite:///DIR/catalog.db
          writable_storage: [DIR/data, sqlite:///DIR/storage.sqlite]
          specs: [{name: CatalogOfBlueskyRuns, version: "3.0"}]

Document model notes (what the writer does to the documents of :mod:`curiss.plans`): every array is stored as
zarr (``max_array_size=0``); a data key named ``time`` (the planner's acquisition time) is renamed
``time_`` by the writer and renamed back by :func:`load_run`; arrays keep the ``dtype_numpy`` their
descriptor declares (``|b1``, ``|u1``, ``<i8`` all work) and are stored as float64 without one,
which :func:`load_run` casts back for the curiss keys (``mask``/``request`` → bool,
``energy_index``/``row_index``/``labels``/``rank``/``iteration`` → int).
"""

from ._catalog import (
    DEFAULT_BATCH_SIZE,
    ROOT_SPEC,
    default_data_dir,
    default_store,
    journal_dir_for,
    open_catalog,
    writer_for,
)
from ._journal import JournaledWriter, default_journal_dir, read_journal, recover
from ._load import RunData, load_run
from ._recompute import recompute

__all__ = ["open_catalog", "writer_for", "load_run", "recompute", "recover", "RunData",
           "JournaledWriter", "read_journal", "journal_dir_for", "default_journal_dir",
           "default_store", "default_data_dir",
           "DEFAULT_BATCH_SIZE", "ROOT_SPEC"]
