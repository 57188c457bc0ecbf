# curiss simulated-STXM profile, step 00: open the catalog of runs.
#
# Used by IPython (`ipython --profile-dir=profiles/profile_curiss_sim`) and by bluesky-queueserver
# (`start-re-manager --startup-dir profiles/profile_curiss_sim/startup`). Files run in name order
# in one namespace; plain Python only (no IPython magics) so that both can run them.
#
# The store is chosen by the environment variable CURISS_STORE:
#   - a directory (a path with a separator, or an existing directory): the embedded Tiled SQLite
#     catalog of that directory, in-process, no server;
#   - a Tiled profile name (`tiled profile list`): a Tiled server, e.g. on PostgreSQL
#     (see docs/deploy.md; the API key comes from TILED_API_KEY);
#   - an http(s):// URI of a Tiled server.
# Unset: the per-user catalog directory, DATA/catalog with DATA = $CURISS_DATA_DIR, else
# $XDG_DATA_HOME/curiss, else ~/.local/share/curiss (curiss.store.default_store): the
# catalog `curiss demo` writes to and `curiss show UID` reads without --store.
from curiss.store import default_store as _default_store
from curiss.store import load_run, open_catalog, writer_for  # noqa: F401

#: What the catalog was opened from (a directory, a Tiled profile name or a URI).
CURISS_STORE = _default_store()

#: The catalog of runs: ``catalog[uid]`` (or ``catalog[-1]``) is a run; ``load_run(catalog[uid])``
#: reads it back as numpy arrays. Opened once per session.
catalog = open_catalog(CURISS_STORE)

# A run whose process was killed (or whose catalog went away) left its journal behind: put it
# back into the catalog now, with every row it measured; `resume(uid, ...)` continues it.
from curiss.store import recover as _recover  # noqa: E402

for _uid in _recover(catalog):
    print(f"curiss: recovered interrupted run {_uid} from the journal; continue it with "
          f"RE(resume({_uid!r}, detector, mono, stage, catalog=catalog))")
