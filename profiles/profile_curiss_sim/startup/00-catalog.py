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
# Unset: a per-user data directory, ``<user data dir>/curiss/catalog`` (see _default_store).
import os as _os
import sys as _sys
from pathlib import Path as _Path

from curiss.store import load_run, open_catalog, writer_for  # noqa: F401


def _default_store() -> str:
    """The per-user catalog directory, ``<user data dir>/curiss/catalog``.

    The user data dir follows the platform conventions (as platformdirs' ``user_data_dir``):
    ``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux and other Unix systems,
    ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` (else ``~/AppData/Local``)
    on Windows.
    """
    if _sys.platform.startswith("win"):
        base = _os.environ.get("LOCALAPPDATA") or str(_Path.home() / "AppData" / "Local")
    elif _sys.platform == "darwin":
        base = str(_Path.home() / "Library" / "Application Support")
    else:
        xdg = _os.environ.get("XDG_DATA_HOME", "").strip()
        # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
        base = xdg if xdg and _os.path.isabs(xdg) else str(_Path.home() / ".local" / "share")
    return str(_Path(base) / "curiss" / "catalog")


#: What the catalog was opened from (a directory, a Tiled profile name or a URI).
CURISS_STORE = _os.environ.get("CURISS_STORE", "").strip() or _default_store()

#: The catalog of runs: ``catalog[uid]`` (or ``catalog[-1]``) is a run; ``load_run(catalog[uid])``
#: reads it back as numpy arrays. Opened once per session.
catalog = open_catalog(CURISS_STORE)

# A run whose process was killed (or whose catalog went away) left its journal behind: put it
# back into the catalog now, with every row it measured; `resume(uid, ...)` continues it.
from curiss.store import recover as _recover  # noqa: E402

for _uid in _recover(catalog):
    print(f"curiss: recovered interrupted run {_uid} from the journal; continue it with "
          f"RE(resume({_uid!r}, detector, mono, stage, catalog=catalog))")
