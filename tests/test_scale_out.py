"""Scale-out, tested: a Tiled server (PostgreSQL when available) and bluesky-queueserver.

a. ``tiled serve config deploy/tiled/config.yml`` on loopback with API-key authentication, on a
   throwaway PostgreSQL cluster (initdb + postgres, as an unprivileged user when run as root) or
   on SQLite when PostgreSQL's binaries cannot be found. A Tiled profile made from the shipped
   template in a temporary ``TILED_PROFILES`` folder; ``curiss.store.open_catalog(profile)`` +
   ``writer_for`` record a CURISS run of the simulated STXM; a NEW process reads it back with
   ``load_run``.
b. ``start-re-manager`` with a local ``redis-server``, ``--startup-dir`` = the shipped profile's
   startup folder: open the environment, queue ``curiss_scan`` by name (devices by name,
   energies and dictionary as lists), run it, find the run in the catalog the startup files
   opened (``CURISS_STORE``), and check it is the same acquisition as the offline method.

Every server listens on 127.0.0.1, on a free port, is waited for with a bounded timeout and is
torn down by a finalizer (its whole process group). A test skips, with the reason, only when a
service's binary cannot be found — unless ``CURISS_REQUIRE_SERVICES=1`` (set by ``.ci/run``,
which installs them), which turns a missing PostgreSQL or redis-server into a failure so that CI
cannot pass without running them. (bluesky-queueserver itself is a Python dependency: the
queueserver test skips without it.)
Set ``CURISS_TEST_TILED_BACKEND=sqlite`` or ``postgresql`` to choose the Tiled backend.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STARTUP = REPO / "profiles" / "profile_curiss_sim" / "startup"
TILED_CONFIG = REPO / "deploy" / "tiled" / "config.yml"
PROFILE_TEMPLATE = REPO / "deploy" / "tiled" / "profiles" / "curiss.yml"
BIN = Path(sys.executable).parent
REQUIRE = os.environ.get("CURISS_REQUIRE_SERVICES", "").strip() not in {"", "0", "false", "no"}

SIM_SIZE = (10, 8, 8)  # n_E, n_y, n_x of the simulated sample (keeps each run to seconds)


# ----------------------------------------------------------------------------- helpers
def _missing(what: str) -> None:
    """Skip (or fail under CURISS_REQUIRE_SERVICES) because ``what`` cannot be found."""
    if REQUIRE:
        pytest.fail(f"{what} (CURISS_REQUIRE_SERVICES is set: .ci/run must install it)")
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child: without the Tiled/curiss settings of the caller (Tiled gives
    TILED_CATALOG_* environment variables priority over its config file)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TILED_", "CURISS_STORE", "CURISS_SIM", "QSERVER_"))}
    env.update(extra)
    return env


class _Service:
    """A server process in its own process group, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], log: Path, *, env=None, user=None, cwd=None):
        self.name, self.log = name, log
        self._fh = open(log, "wb")
        kw = {}
        if user is not None:
            kw.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        self.proc = subprocess.Popen([str(c) for c in cmd], stdout=self._fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                     start_new_session=True, **kw)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, ready, timeout: float, what: str) -> None:
        """Poll ``ready()`` until true; fail with the log when it exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited (code {self.proc.returncode}) before "
                                   f"{what}:\n{self.tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: no {what} within {timeout:.0f} s:\n{self.tail()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> None:
        """Signal the whole process group; SIGKILL it after ``timeout``."""
        try:
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers (workers, children)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        finally:
            self._fh.close()


def _http_status(url: str, api_key: str | None = None) -> int:
    req = urllib.request.Request(url)
    if api_key is not None:
        req.add_header("Authorization", f"Apikey {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def _postgres_bin() -> Path | None:
    """The directory with initdb and postgres (PATH, then Debian's /usr/lib/postgresql/*/bin)."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "initdb").exists() and (d / "postgres").exists():
            return d
    return None


def _unprivileged_user():
    """PostgreSQL refuses to run as root: the ``postgres`` account (Debian's package makes it),
    else ``nobody``; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root and neither a 'postgres' nor a 'nobody' account exists")


# ----------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with databases curiss_catalog and
    curiss_tables; yields ``{"catalog": uri, "tables": uri}``, or None for SQLite."""
    backend = os.environ.get("CURISS_TEST_TILED_BACKEND", "").strip().lower()
    if backend not in {"", "sqlite", "postgresql"}:
        pytest.fail(f"CURISS_TEST_TILED_BACKEND must be 'sqlite' or 'postgresql'; got {backend!r}")
    bindir = _postgres_bin()
    if backend == "sqlite" or (bindir is None and backend == "" and not REQUIRE):
        yield None
        return
    if bindir is None:
        _missing("PostgreSQL's initdb/postgres not found (Debian: apt-get install postgresql)")
    user = _unprivileged_user()
    tmp = Path(tempfile.mkdtemp(prefix="curiss-pg-"))
    password = secrets.token_hex(12)
    service = None
    try:
        (tmp / "pw").write_text(password + "\n")
        if user is not None:
            for p in (tmp, tmp / "pw"):
                os.chown(p, user.pw_uid, user.pw_gid)
        kw = {} if user is None else dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        subprocess.run([bindir / "initdb", "-D", tmp / "data", "-U", "curiss", f"--pwfile={tmp / 'pw'}",
                        "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=60, cwd=tmp, **kw)
        port = _free_port()
        service = _Service("postgres", [bindir / "postgres", "-D", tmp / "data", "-p", str(port),
                                        "-c", "listen_addresses=127.0.0.1", "-k", str(tmp),
                                        "-c", "fsync=off", "-c", "full_page_writes=off"],
                           tmp / "postgres.log", user=user, cwd=tmp)
        base = f"postgresql://curiss:{password}@127.0.0.1:{port}"

        def ready():
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            return (b"ready to accept connections" in (tmp / "postgres.log").read_bytes())

        service.wait_for(ready, 30, "connections")
        import asyncio

        import asyncpg

        async def create():
            conn = await asyncpg.connect(f"{base}/postgres", timeout=10)
            try:
                for db in ("curiss_catalog", "curiss_tables"):
                    await conn.execute(f"CREATE DATABASE {db}")
            finally:
                await conn.close()

        asyncio.run(create())
        yield {"catalog": f"{base}/curiss_catalog", "tables": f"{base}/curiss_tables"}
    finally:
        if service is not None:
            service.stop(signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def tiled_server(postgres, tmp_path_factory):
    """``tiled serve config deploy/tiled/config.yml`` on 127.0.0.1; yields url, api_key, backend."""
    tiled = BIN / "tiled"
    if not tiled.exists():
        tiled = shutil.which("tiled")
        if tiled is None:
            _missing("the `tiled` command is not installed (pip install 'tiled[server]')")
    tmp = tmp_path_factory.mktemp("tiled")
    (tmp / "data").mkdir()
    if postgres is None:
        backend, catalog, tables = ("sqlite", f"sqlite:///{tmp / 'catalog.db'}",
                                    f"sqlite:///{tmp / 'tables.sqlite'}")
    else:
        backend, catalog, tables = "postgresql", postgres["catalog"], postgres["tables"]
    api_key = secrets.token_hex(16)
    port = _free_port()
    env = _clean_env(TILED_SINGLE_USER_API_KEY=api_key, CURISS_TILED_CATALOG_URI=catalog,
                     CURISS_TILED_DATA_DIR=str(tmp / "data"), CURISS_TILED_TABLES_URI=tables)
    service = _Service("tiled", [tiled, "serve", "config", TILED_CONFIG, "--host", "127.0.0.1",
                                 "--port", str(port)], tmp / "tiled.log", env=env, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        service.wait_for(lambda: _http_status(f"{url}/healthz") == 200, 120, "/healthz answer")
        yield {"url": url, "api_key": api_key, "backend": backend, "data": tmp / "data",
               "postgres": postgres, "service": service}
    finally:
        service.stop()


# ----------------------------------------------------------------------------- a. Tiled
_READER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from curiss.store import load_run
    uid, profile = sys.argv[1], sys.argv[2]
    d = load_run(uid, catalog=profile)
    print(json.dumps({
        "uid": d.uid, "exit_status": d.exit_status, "plan_name": d.start.get("plan_name"),
        "order": d.order.tolist(), "mask": d.mask.astype(int).tolist(),
        "counts_sum": float(np.nansum(d.counts)), "od_finite_where_measured": bool(np.isfinite(d.od[d.mask]).all()),
        "od_nan_elsewhere": bool(np.isnan(d.od[~d.mask]).all()),
        "energies": d.energies.tolist(), "has_completed": d.completed is not None,
        "n_decisions": len(d.history)}))
""")


def test_tiled_server_profile_write_and_read_back(tiled_server, tmp_path, monkeypatch, capsys):
    """A run written through a Tiled profile (API key) is read back by another process."""
    url, key = tiled_server["url"], tiled_server["api_key"]
    # Authentication is enforced: no key or a wrong key is refused, the key is accepted.
    assert _http_status(f"{url}/api/v1/metadata/") == 401
    assert _http_status(f"{url}/api/v1/metadata/", api_key=key[::-1] + "x") == 401
    assert _http_status(f"{url}/api/v1/metadata/", api_key=key) == 200

    # A profile made from the shipped template, in a temporary TILED_PROFILES folder.
    template = yaml.safe_load(PROFILE_TEMPLATE.read_text())
    assert list(template) == ["curiss"] and "uri" in template["curiss"]
    name = f"curiss_test_{secrets.token_hex(4)}"  # unique: open_catalog caches per name
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "curiss.yml").write_text(yaml.safe_dump({name: dict(template["curiss"], uri=url)}))

    import tiled.profiles

    from bluesky import RunEngine
    from curiss.plans import curiss_scan
    from curiss.store import open_catalog, writer_for
    from sim_devices import PhantomSample, make_stxm

    monkeypatch.setenv("TILED_PROFILES", str(profiles))
    monkeypatch.setenv("TILED_API_KEY", key)
    monkeypatch.setattr(tiled.profiles, "paths", [*tiled.profiles.paths, profiles])
    tiled.profiles.load_profiles.cache_clear()
    try:
        catalog = open_catalog(name)
        sample = PhantomSample(SIM_SIZE[0], SIM_SIZE[1:], 2, seed=3)
        stxm = make_stxm(sample, seed=4)
        RE = RunEngine({})
        RE.subscribe(writer_for(catalog))
        docs = []
        RE.subscribe(lambda n, d: docs.append((n, d)))
        uid, = RE(curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                              sampling_ratio=0.3, dictionary=sample.dictionary,
                              y_positions=stxm.y_positions, seed=5))
    finally:
        tiled.profiles.load_profiles.cache_clear()
    primary = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == "primary"}
    events = [d for n, d in docs if n == "event" and d["descriptor"] in primary]
    order = [[e["data"]["energy_index"], e["data"]["row_index"]] for e in events]
    counts_sum = float(sum(np.sum(e["data"]["detector_line"]) for e in events))
    assert len(order) > 0

    # Read back from a NEW process, through the same profile and key.
    out = subprocess.run([sys.executable, "-c", _READER, uid, name], capture_output=True, text=True,
                         timeout=120, env=_clean_env(TILED_PROFILES=str(profiles), TILED_API_KEY=key))
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["uid"] == uid and got["exit_status"] == "success" and got["plan_name"] == "curiss_scan"
    assert got["order"] == order
    mask = np.array(got["mask"], bool)
    assert mask.shape == (SIM_SIZE[0], SIM_SIZE[1], SIM_SIZE[2])
    assert mask.sum() == len(order) * SIM_SIZE[2]
    assert got["counts_sum"] == pytest.approx(counts_sum, rel=1e-12)
    assert got["od_finite_where_measured"] and got["od_nan_elsewhere"]
    assert np.allclose(got["energies"], sample.energies, rtol=0, atol=0)
    assert got["has_completed"] and got["n_decisions"] >= 2

    # Without the key a client is refused (the profile holds no secret).
    from tiled.client import from_uri

    monkeypatch.delenv("TILED_API_KEY")
    with pytest.raises(Exception, match="(?i)api key|401|unauthori"):
        from_uri(url)
    # ... and the command line says so on one line (it printed Tiled's traceback)
    from curiss.cli import main

    assert main(["show", uid, "--store", url]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "requires an API key: set TILED_API_KEY" in err
    monkeypatch.setenv("TILED_API_KEY", key[::-1] + "x")
    assert main(["show", uid, "--store", url]) == 2
    err = capsys.readouterr().err
    assert "refused the API key (401" in err and "check TILED_API_KEY" in err
    monkeypatch.delenv("TILED_API_KEY")

    # The run's arrays are in the server's storage; on PostgreSQL its nodes are in the catalog DB
    # and its event tables in the tables DB.
    assert (tiled_server["data"] / uid).is_dir()
    if tiled_server["postgres"] is not None:
        import asyncio

        import asyncpg

        async def query():
            cat = await asyncpg.connect(tiled_server["postgres"]["catalog"], timeout=10)
            tab = await asyncpg.connect(tiled_server["postgres"]["tables"], timeout=10)
            try:
                n_uid = await cat.fetchval("SELECT count(*) FROM nodes WHERE key = $1", uid)
                n_tables = await tab.fetchval(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
                return n_uid, n_tables
            finally:
                await cat.close()
                await tab.close()

        n_uid, n_tables = asyncio.run(query())
        assert n_uid == 1 and n_tables >= 1
    print(f"tiled backend: {tiled_server['backend']}")


# ----------------------------------------------------------------------------- b. queueserver
class _QueueServer:
    """redis-server + start-re-manager (the shipped startup folder), started in a thread so that
    the RE environment (imports, catalog, devices: the slow part) opens while test a runs."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.store = tmp / "store"
        self.epd = tmp / "existing_plans_and_devices.yaml"
        self.redis = self.manager = self.RM = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="qserver-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            self._start_services()
        except BaseException as err:  # pytest.skip / pytest.fail outcomes too: re-raised in the test
            self.error = err

    def _start_services(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            _missing("redis-server not found (Debian: apt-get install redis-server)")
        try:
            import bluesky_queueserver  # noqa: F401
            from bluesky_queueserver_api.zmq import REManagerAPI
        except ImportError as err:  # a Python dependency (pyproject), not a system service
            pytest.skip(f"bluesky-queueserver / bluesky-queueserver-api not installed ({err})")
        manager = BIN / "start-re-manager"
        if not manager.exists():
            manager = shutil.which("start-re-manager")
            if manager is None:
                pytest.skip("the start-re-manager command is not installed (pip install bluesky-queueserver)")

        port = _free_port()
        self.redis = _Service("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(self.tmp), "--daemonize", "no"],
                              self.tmp / "redis.log", cwd=self.tmp)

        def ping():
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        self.redis.wait_for(ping, 20, "PONG")

        control = _free_port()
        env = _clean_env(CURISS_STORE=str(self.store), CURISS_SIM_SIZE=",".join(map(str, SIM_SIZE)),
                         CURISS_SIM_SEED="7", CURISS_SIM_NOISE="0", CURISS_SIM_MATERIALS="2")
        cmd = [manager, "--startup-dir", STARTUP, "--existing-plans-devices", self.epd,
               "--user-group-permissions", STARTUP / "user_group_permissions.yaml",
               "--redis-addr", f"127.0.0.1:{port}",
               "--redis-name-prefix", f"curiss_test_{secrets.token_hex(4)}",
               "--zmq-control-addr", f"tcp://127.0.0.1:{control}", "--zmq-publish-console", "OFF"]
        self.manager = _Service("start-re-manager", cmd, self.tmp / "manager.log", env=env, cwd=self.tmp)
        self.RM = REManagerAPI(zmq_control_addr=f"tcp://127.0.0.1:{control}",
                               timeout_recv=10, timeout_send=10)
        self.manager.wait_for(lambda: self.RM.status()["manager_state"] == "idle", 60, "idle status")
        response = self.RM.environment_open()  # returns at once; the worker starts in the background
        if not response["success"]:
            raise RuntimeError(f"environment_open refused: {response}")

    def ready(self, timeout: float = 120.0) -> "_QueueServer":
        """Wait for the start (bounded); re-raise its skip or failure."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"queueserver start did not finish within {timeout:.0f} s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self._thread.join(90)
        if self.RM is not None:
            with contextlib.suppress(Exception):
                if self.manager.alive() and self.RM.status().get("worker_environment_exists"):
                    self.RM.environment_close()
                    self.RM.wait_for_idle(timeout=20)
            with contextlib.suppress(Exception):
                self.RM.close()
        for service in (self.manager, self.redis):
            if service is not None:
                service.stop()


@pytest.fixture(scope="module", autouse=True)
def _queueserver(request, tmp_path_factory):
    """Started first (autouse) when a queueserver test is selected; torn down at module end."""
    wanted = any(item.name.startswith("test_queueserver") and item.module is request.module
                 for item in request.session.items)
    if not wanted:
        yield None
        return
    server = _QueueServer(tmp_path_factory.mktemp("qserver"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def re_manager(_queueserver):
    if _queueserver is None:
        pytest.skip("the queueserver fixture was not started")
    return _queueserver.ready()


def _params(plan: dict) -> list[str]:
    return [p["name"] for p in plan.get("parameters", [])]


def test_queueserver_runs_curiss_scan_by_name(re_manager):
    """Queue curiss_scan by name with JSON arguments; the run lands in the profile's catalog and
    is the same acquisition as the offline method on the same (noise-free) sample."""
    from bluesky_queueserver_api import BPlan

    import curiss
    from curiss.store import load_run, open_catalog
    from sim_devices import PhantomSample

    RM, log = re_manager.RM, re_manager.manager
    RM.wait_for_idle(timeout=120)  # environment_open was requested when the fixture started
    status = RM.status()
    assert status["worker_environment_exists"], log.tail()

    # The plans and devices the startup files expose (by name), and the shipped list agrees.
    allowed = RM.plans_allowed()["plans_allowed"]
    assert {"curiss_scan", "acuriss_scan", "riss_scan", "raster_scan", "random_rows_scan"} <= set(allowed)
    devices = RM.devices_allowed()["devices_allowed"]
    assert {"mono", "stage", "detector"} <= set(devices)
    generated = yaml.safe_load(re_manager.epd.read_text())
    shipped = yaml.safe_load((STARTUP / "existing_plans_and_devices.yaml").read_text())
    for kind in ("existing_plans", "existing_devices"):
        assert sorted(shipped[kind]) == sorted(generated[kind]), (
            f"{kind} in profiles/profile_curiss_sim/startup/existing_plans_and_devices.yaml are "
            f"stale: regenerate it with `qserver-list-plans-devices --startup-dir "
            f"profiles/profile_curiss_sim/startup --file-name existing_plans_and_devices.yaml`")
    for plan, spec in generated["existing_plans"].items():
        assert _params(shipped["existing_plans"][plan]) == _params(spec), (
            f"the parameters of {plan} changed: regenerate existing_plans_and_devices.yaml")

    sample = PhantomSample(SIM_SIZE[0], SIM_SIZE[1:], 2, seed=7)  # as 20-devices.py builds it
    kwargs = {"sampling_ratio": 0.3, "shape": list(sample.shape), "seed": 11,
              "dictionary": sample.dictionary.tolist()}
    item = BPlan("curiss_scan", "detector", "mono", "stage", sample.energies.tolist(), **kwargs)
    response = RM.item_add(item)
    assert response["success"], response
    RM.queue_start()
    RM.wait_for_idle(timeout=120)
    result = RM.history_get()["items"][-1]["result"]
    assert result["exit_status"] == "completed", (result, log.tail())
    uid, = result["run_uids"]
    RM.environment_close()
    RM.wait_for_idle(timeout=30)

    run = load_run(open_catalog(re_manager.store)[uid])
    assert run.exit_status == "success" and run.start["plan_name"] == "curiss_scan"
    assert np.array_equal(run.energies, sample.energies)
    offline = curiss.replay(curiss.CURISSPlanner(sample.energies, sample.shape, sampling_ratio=0.3,
                                                 dictionary=sample.dictionary, seed=11), sample.cube)
    assert np.array_equal(run.mask, offline.mask)
    assert np.allclose(run.od[run.mask], sample.cube[run.mask], atol=1e-9)
    assert run.completed is not None and run.completed.shape == sample.cube.shape
