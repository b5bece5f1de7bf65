"""A throwaway PostgreSQL server for tests and benchmarks: fresh data dir, 127.0.0.1, free port.

    server = PgServer.start()      # initdb + pg_ctl start (as the postgres user when root)
    server.url                     # postgresql://postgres@127.0.0.1:PORT/postgres
    server.stop(); server.start_again(); server.destroy()

``initdb`` refuses to run as root, so when we are root every server command runs through
``runuser -u postgres --`` and the temporary directory is handed to that user. Auth is
``trust`` on loopback: the server only listens on 127.0.0.1 and lives for one test session.
Set ``STREAMSOURCE_TEST_PG_URL`` to use an existing server instead (see :func:`external_url`).
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ENV_URL = "STREAMSOURCE_TEST_PG_URL"
_SEARCHED = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13)]

# Small footprint: up to 8 helpers share 2 cores and a few servers may run at once.
_SMALL = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "32MB",
    "max_connections": "300",
    "dynamic_shared_memory_type": "posix",
    "log_min_messages": "warning",
    # A connection left idle inside a writing transaction holds back what read_all shows
    # for every store on the server (see the backend's docs): end such leaks after a while.
    "idle_in_transaction_session_timeout": "60s",
}


class ServerUnavailable(RuntimeError):
    """PostgreSQL binaries are missing or the server would not start (tests skip on it)."""


def external_url() -> str | None:
    """The URL of a server given by the environment, if any."""
    return os.environ.get(ENV_URL) or None


def find_bin_dir() -> Path | None:
    """The directory holding initdb/pg_ctl, or None when PostgreSQL is not installed."""
    configured = os.environ.get("STREAMSOURCE_PG_BIN")
    if configured:  # explicit: that directory or nothing
        directory = Path(configured)
        found = (directory / "initdb").exists() and (directory / "pg_ctl").exists()
        return directory if found else None
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    candidates.extend(_SEARCHED)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def pg_store_url(server_url: str) -> str:
    """A store URL in a new, empty schema of that server (tests never share a schema)."""
    separator = "&" if "?" in server_url else "?"
    return f"{server_url}{separator}schema=t_{uuid.uuid4().hex[:24]}&pool_min_size=1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailable("running as root and there is no 'postgres' user") from None
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PgServer:
    """One running (or stopped) PostgreSQL cluster in a temporary directory."""

    bin_dir: Path
    base: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)
    password: str | None = None  # None: trust auth; else scram-sha-256 over TCP

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str, password: str | None = None) -> str:
        secret = password if password is not None else self.password
        who = "postgres" if secret is None else f"postgres:{secret}"
        return f"postgresql://{who}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(
        cls, settings: dict[str, str] | None = None, *, password: str | None = None
    ) -> PgServer:
        """initdb a fresh cluster in a temporary directory and start it on a free port."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise ServerUnavailable(
                "PostgreSQL is not installed (no initdb/pg_ctl found; Debian: apt-get install"
                f" postgresql), and {ENV_URL} is not set"
            )
        prefix = _as_postgres()
        # as root the server runs as postgres, who must be able to reach the directory:
        # /tmp, whatever TMPDIR says (it may point into root's home)
        base = Path(tempfile.mkdtemp(prefix="streamsource-pg-", dir="/tmp" if prefix else None))
        if prefix:
            user = pwd.getpwnam("postgres")
            os.chown(base, user.pw_uid, user.pw_gid)
        server = cls(bin_dir, base, 0, {**_SMALL, **(settings or {})}, password)
        auth = ["-A", "trust"]
        if password is not None:
            secret = base / "password"
            secret.write_text(password + "\n")
            if prefix:
                os.chown(secret, user.pw_uid, user.pw_gid)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={secret}"]
        try:
            server._run(
                "initdb",
                "-D",
                str(server.data_dir),
                *auth,
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            server.start_again()
        except BaseException:
            server.destroy()
            raise
        atexit.register(server.destroy)  # also when a test session ends without teardown
        return server

    def start_again(self) -> None:
        """Start the server (again), on its old port if it had one, else a free one."""
        attempts = 5
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self.port = free_port()
            options = [f"-p {self.port}", f"-k {self.base}"]
            options += [f"-c {key}={value}" for key, value in self.settings.items()]
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.base / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    " ".join(options),
                    "start",
                )
                return
            except ServerUnavailable:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)  # most likely the port was taken meanwhile: another one

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: abort sessions cleanly; ``immediate``: like a crash)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove its directory (harmless when done already)."""
        if not self.base.exists():
            return
        try:
            self.stop()
        except ServerUnavailable:
            pass
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.base / "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _run(self, program: str, *args: str) -> None:
        command = [*_as_postgres(), str(self.bin_dir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.base)
        if done.returncode != 0:
            raise ServerUnavailable(
                f"{program} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                f"\n{self.log()}"
            )
