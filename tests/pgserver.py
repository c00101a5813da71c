"""A throwaway PostgreSQL cluster for tests and benchmarks.

Usage::

    with PostgresServer() as pg:
        url = pg.create_database("t1")
        ...

The cluster lives in a fresh temporary directory (data dir, Unix socket and log
file), listens on 127.0.0.1 on a free port and, when the current process is
root, runs as the ``postgres`` OS user (PostgreSQL refuses to run as root).

Authentication (pg_hba.conf):

* Unix socket: ``trust`` for everyone.
* 127.0.0.1: role ``perdure_pw`` (password ``s3cret-pw``) must authenticate with
  scram-sha-256; every other role (notably ``postgres``) is trusted.

Cleanup is layered so a crashed test session does not leak servers:

1. :meth:`PostgresServer.stop` (explicit, or via the context manager);
2. an ``atexit`` hook for normal interpreter exit;
3. a guard process, started with the server, that holds the read end of a pipe
   to this process. If this process dies without calling ``stop`` (SIGKILL,
   SIGTERM, segfault, ``os._exit``), the pipe reaches EOF and the guard runs
   ``pg_ctl stop -m immediate`` and deletes the temporary directory.

``execute``/``create_database``/``drop_database`` need ``psycopg`` (imported
lazily). Starting and stopping the server needs only the PostgreSQL binaries.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

__all__ = [
    "PASSWORD_ROLE",
    "PASSWORD_ROLE_PASSWORD",
    "PostgresServer",
    "PostgresServerError",
    "postgres_available",
]

PG_OS_USER = "postgres"
PASSWORD_ROLE = "perdure_pw"
PASSWORD_ROLE_PASSWORD = "s3cret-pw"

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_START_TIMEOUT_S = 30
_STOP_TIMEOUT_S = 30


class PostgresServerError(RuntimeError):
    """The throwaway server could not be set up, started or stopped."""


# --------------------------------------------------------------------------- helpers


def _find_bindir() -> str | None:
    """Directory holding initdb/pg_ctl/postgres: $PATH first, then Debian's layout."""
    override = os.environ.get("PERDURE_PG_BINDIR")
    candidates: list[str] = []
    if override:
        candidates.append(override)
    found = shutil.which("pg_ctl")
    if found:
        # /usr/local/bin/pg_ctl is a symlink into /usr/lib/postgresql/15/bin.
        candidates.append(os.path.dirname(os.path.realpath(found)))
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    for d in candidates:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in _REQUIRED_BINARIES):
            return d
    return None


def _is_root() -> bool:
    return os.geteuid() == 0


def _os_user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run_as_prefix() -> list[str] | None:
    """argv prefix that runs a command as the postgres OS user, ``[]`` if not root.

    Returns None when we are root but cannot switch users.
    """
    if not _is_root():
        return []
    if not _os_user_exists(PG_OS_USER):
        return None
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
    )
    if runuser:
        return [runuser, "-u", PG_OS_USER, "--"]
    su = shutil.which("su") or ("/bin/su" if os.access("/bin/su", os.X_OK) else None)
    if su:
        # `su` takes a single shell command; _as_postgres() quotes the argv into it.
        return [su, PG_OS_USER, "-s", "/bin/sh", "-c"]
    return None


def _as_postgres(prefix: Sequence[str], argv: Sequence[str]) -> list[str]:
    if prefix and prefix[-1] == "-c":  # su ... -c 'cmd'
        return [*prefix, shlex.join(argv)]
    return [*prefix, *argv]


def postgres_available() -> bool:
    """True if a throwaway server can be started here.

    Needs initdb/pg_ctl/postgres (on $PATH or under /usr/lib/postgresql/*/bin)
    and, when running as root, a ``postgres`` OS user plus runuser or su.
    """
    return _find_bindir() is not None and _run_as_prefix() is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """Environment for the server tools: no stray PG* variables, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# The guard: a tiny separate process. It blocks reading its stdin (a pipe whose
# write end only the parent holds). "done" => the parent cleaned up, exit quietly.
# EOF without "done" => the parent died: stop the server hard and delete the dir.
_GUARD_SOURCE = r"""
import json, os, shutil, signal, subprocess, sys
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
cfg = json.loads(sys.argv[2])  # argv[1] is a label for ps
line = sys.stdin.readline()
if line.strip() == "done":
    sys.exit(0)
try:
    subprocess.run(cfg["stop_argv"], cwd=cfg["tmpdir"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
except Exception:
    pass
shutil.rmtree(cfg["tmpdir"], ignore_errors=True)
"""


# --------------------------------------------------------------------------- server


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster in a temp dir, run as the postgres user on 127.0.0.1."""

    def __init__(
        self,
        *,
        base_dir: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """``base_dir``: where to create the temp dir (default: the system temp dir);
        it must be traversable by the postgres user.
        ``settings``: extra postgresql.conf settings (values are written verbatim,
        so quote strings yourself, e.g. ``{"log_statement": "'all'"}``).
        """
        self._base_dir = base_dir
        self._settings = dict(settings or {})
        self._tmpdir: str | None = None
        self._port: int | None = None
        self._running = False
        self._guard: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False
        self._bindir: str | None = None
        self._prefix: list[str] = []
        self._owner_pid = os.getpid()

    # ----------------------------------------------------------------- paths

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresServerError("server not started")
        return self._port

    @property
    def directory(self) -> str:
        """The temporary directory (data dir, socket, log)."""
        if self._tmpdir is None:
            raise PostgresServerError("server not started")
        return self._tmpdir

    @property
    def data_dir(self) -> str:
        return os.path.join(self.directory, "data")

    @property
    def socket_dir(self) -> str:
        # The tmp dir itself: keeps the socket path well under the 107-byte limit.
        return self.directory

    @property
    def log_file(self) -> str:
        return os.path.join(self.directory, "postgres.log")

    @property
    def running(self) -> bool:
        return self._running

    def url(
        self,
        dbname: str = "postgres",
        user: str = "postgres",
        password: str | None = None,
    ) -> str:
        """``postgresql://user[:password]@127.0.0.1:port/dbname``."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of the server log (for error messages and debugging)."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode("utf-8", "replace")
        except (OSError, PostgresServerError):
            return ""

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """initdb, configure, pick a free port and ``pg_ctl start -w``."""
        if self._running:
            raise PostgresServerError("server already running")
        bindir = _find_bindir()
        if bindir is None:
            raise PostgresServerError("PostgreSQL binaries (initdb, pg_ctl, postgres) not found")
        prefix = _run_as_prefix()
        if prefix is None:
            raise PostgresServerError(
                f"running as root but cannot switch to OS user {PG_OS_USER!r} "
                "(missing user or runuser/su)"
            )
        self._bindir, self._prefix = bindir, prefix

        tmpdir = tempfile.mkdtemp(prefix="perdure-pg-", dir=self._base_dir)
        self._tmpdir = tmpdir
        self._owner_pid = os.getpid()
        try:
            if _is_root():
                pw = pwd.getpwnam(PG_OS_USER)
                os.chown(tmpdir, pw.pw_uid, pw.pw_gid)
            self._start_guard()
            self._initdb()
            self._start_on_free_port()
            self._create_password_role()
        except BaseException:
            self._teardown(mode="immediate")
            raise
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` and remove the temporary directory. Idempotent."""
        self._teardown(mode="fast")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m <mode>`` on the same port; existing connections break.

        ``mode="immediate"`` simulates a crash (the server runs crash recovery).
        """
        if not self._running:
            raise PostgresServerError("server not running")
        self._pg_ctl("restart", "-m", mode, "-w", "-t", str(_START_TIMEOUT_S), "-l", self.log_file)

    def halt(self) -> None:
        """``pg_ctl stop -m fast``, keeping the cluster and its port: the database is down until
        :meth:`resume` (as when a client or worker starts before its database)."""
        if not self._running:
            raise PostgresServerError("server not running")
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_S))
        self._running = False

    def resume(self) -> None:
        """Start a :meth:`halt`-ed cluster again, on the same port."""
        if self._running or self._tmpdir is None:
            raise PostgresServerError("server not halted")
        self._pg_ctl("start", "-w", "-t", str(_START_TIMEOUT_S), "-l", self.log_file)
        self._running = True

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- admin SQL

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run admin SQL (autocommit, as superuser ``postgres``) through psycopg.

        ``sql`` is sent without parameters, so it may hold several statements.
        """
        import psycopg  # lazy: starting/stopping the server does not need it

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str, template: str | None = None) -> str:
        """``CREATE DATABASE name [TEMPLATE template]``; returns the new database's URL.

        PostgreSQL refuses to copy a template that has open connections.
        """
        stmt = f"CREATE DATABASE {_quote_ident(name)}"
        if template is not None:
            stmt += f" TEMPLATE {_quote_ident(template)}"
        self.execute(stmt)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name WITH (FORCE)`` (terminates its connections)."""
        self.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    # ----------------------------------------------------------------- internals

    def _bin(self, name: str) -> str:
        assert self._bindir is not None
        return os.path.join(self._bindir, name)

    def _run(self, argv: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_postgres(self._prefix, argv),
            cwd=self.directory,  # postgres may not be able to enter our cwd (e.g. /root)
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = self._run([self._bin("pg_ctl"), "-D", self.data_dir, *args], timeout=120)
        if check and proc.returncode != 0:
            raise PostgresServerError(
                f"pg_ctl {args[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n"
                f"--- server log ---\n{self.log_tail()}"
            )
        return proc

    def _initdb(self) -> None:
        proc = self._run(
            [
                self._bin("initdb"),
                "-D", self.data_dir,
                "-U", "postgres",
                "-E", "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=trust",
                "--no-sync",  # a throwaway cluster needs no durable initdb
                "--no-instructions",
            ],
            timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise PostgresServerError(
                f"initdb failed ({proc.returncode}); is {self.directory!r} reachable by the "
                f"{PG_OS_USER!r} user?\n{proc.stdout}{proc.stderr}"
            )
        hba = (
            "# written by tests/pgserver.py\n"
            "local all all                      trust\n"
            f"host  all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host  all all          127.0.0.1/32 trust\n"
        )
        self._write_as_postgres(os.path.join(self.data_dir, "pg_hba.conf"), hba)

    def _write_config(self, port: int) -> None:
        settings: dict[str, str] = {
            "port": str(port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "'" + self.socket_dir.replace("'", "''") + "'",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "dynamic_shared_memory_type": "posix",
            "password_encryption": "'scram-sha-256'",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_connections": "off",
            "log_disconnections": "off",
            "timezone": "'UTC'",
            "fsync": "on",
            "synchronous_commit": "on",
        }
        settings.update(self._settings)
        body = "\n# --- perdure test settings ---\n" + "".join(
            f"{k} = {v}\n" for k, v in settings.items()
        )
        # postgresql.auto.conf is read last, so these win over postgresql.conf.
        self._write_as_postgres(os.path.join(self.data_dir, "postgresql.auto.conf"), body)

    def _write_as_postgres(self, path: str, text: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        if _is_root():
            pw = pwd.getpwnam(PG_OS_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o600)

    def _start_on_free_port(self) -> None:
        last_error: PostgresServerError | None = None
        for _ in range(5):
            port = _free_port()
            self._write_config(port)
            self._port = port
            proc = self._pg_ctl(
                "start", "-w", "-t", str(_START_TIMEOUT_S), "-l", self.log_file, check=False
            )
            if proc.returncode == 0:
                self._running = True
                return
            log = self.log_tail()
            last_error = PostgresServerError(
                f"pg_ctl start failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n"
                f"--- server log ---\n{log}"
            )
            # Lost the race for the port to someone else: try another one.
            if "could not bind" not in log and "Address already in use" not in log:
                break
            self._pg_ctl("stop", "-m", "immediate", "-w", check=False)
        assert last_error is not None
        raise last_error

    def _create_password_role(self) -> None:
        # psycopg if importable (the usual case), else the psql client binary.
        stmt = f"CREATE ROLE {PASSWORD_ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD_ROLE_PASSWORD}'"
        try:
            import psycopg  # noqa: F401
        except ImportError:
            psql = self._bin("psql")
            if not os.access(psql, os.X_OK):
                psql = shutil.which("psql") or psql
            proc = self._run(
                [psql, "-X", "-q", "-h", self.socket_dir, "-p", str(self.port),
                 "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", stmt],
                timeout=60,
            )  # fmt: skip
            if proc.returncode != 0:
                raise PostgresServerError(f"creating role failed: {proc.stderr}") from None
        else:
            self.execute(stmt)

    def _start_guard(self) -> None:
        cfg: dict[str, Any] = {
            "tmpdir": self.directory,
            "stop_argv": _as_postgres(
                self._prefix,
                [self._bin("pg_ctl"), "-D", self.data_dir, "stop", "-m", "immediate", "-w"],
            ),
        }
        self._guard = subprocess.Popen(
            [sys.executable, "-c", _GUARD_SOURCE, "perdure-pgserver-guard", json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=_clean_env(),
            start_new_session=True,  # survive the Ctrl-C / SIGTERM aimed at our group
        )

    def _release_guard(self) -> None:
        guard, self._guard = self._guard, None
        if guard is None:
            return
        stdin: IO[bytes] | None = guard.stdin
        try:
            if stdin is not None:
                stdin.write(b"done\n")
                stdin.flush()
        except OSError:
            pass
        finally:
            if stdin is not None:
                with contextlib.suppress(OSError):
                    stdin.close()
        try:
            guard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            guard.kill()
            guard.wait()

    def _teardown(self, *, mode: str) -> None:
        tmpdir = self._tmpdir
        if tmpdir is None:
            return
        errors: list[str] = []
        if self._running or os.path.exists(os.path.join(tmpdir, "data", "postmaster.pid")):
            proc = self._pg_ctl("stop", "-m", mode, "-w", "-t", str(_STOP_TIMEOUT_S), check=False)
            if proc.returncode != 0 and mode != "immediate":
                proc = self._pg_ctl("stop", "-m", "immediate", "-w", check=False)
            if proc.returncode != 0 and os.path.exists(
                os.path.join(tmpdir, "data", "postmaster.pid")
            ):
                errors.append(f"pg_ctl stop failed: {proc.stdout}{proc.stderr}")
        self._running = False
        self._release_guard()
        shutil.rmtree(tmpdir, ignore_errors=True)
        self._tmpdir = None
        if errors:
            raise PostgresServerError("; ".join(errors))

    def _atexit_stop(self) -> None:
        if os.getpid() != self._owner_pid:
            return  # a forked child exiting must not stop its parent's server
        with contextlib.suppress(Exception):
            self._teardown(mode="immediate")


if __name__ == "__main__":  # manual smoke test: python tests/pgserver.py
    t0 = time.perf_counter()
    with PostgresServer() as _pg:
        print(f"started in {time.perf_counter() - t0:.2f}s at {_pg.url()} ({_pg.directory})")
        _pg.execute("SELECT 1")
    print(f"total {time.perf_counter() - t0:.2f}s")
