"""A throwaway PostgreSQL cluster on 127.0.0.1 and a free port, removed when the run ends.

The same recipe as ``scripts/with-postgres`` (initdb as the postgres user when we are root), with
settings for measuring our code rather than the disk: the cluster is thrown away, so fsync is off,
and a bigger WAL keeps checkpoints out of the middle of a bulk INSERT.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from benchmarks.network import free_port

SERVER_SETTINGS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=300 -c shared_buffers=512MB -c max_wal_size=8GB "
    "-c checkpoint_timeout=30min"
)


class PostgresNotInstalled(RuntimeError):
    pass


def _bin_dir() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if versions:
        return versions[-1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise PostgresNotInstalled(
            "PostgreSQL is not installed (Debian: apt-get install -y postgresql)"
        )
    return Path(pg_ctl).parent


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as pg: pg.admin_url`` — a fresh cluster for the run."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._dir = Path(tempfile.mkdtemp(prefix="sms-sender-bench-pg."))
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> ThrowawayPostgres:
        self._dir.chmod(0o755)
        if self._as_owner:
            shutil.chown(self._dir, user="postgres")
        try:
            self._run("initdb", "-D", str(self._data), "-U", "postgres", "-A", "trust", "--no-sync")
            self._run(
                "pg_ctl",
                "-D",
                str(self._data),
                "-l",
                str(self._dir / "server.log"),
                "-w",
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {self._dir} {SERVER_SETTINGS}",
                "start",
            )
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._remove()

    @property
    def _data(self) -> Path:
        return self._dir / "data"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as_owner, str(self._bin / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _remove(self) -> None:
        if (self._data / "postmaster.pid").exists():
            pg_ctl = [*self._as_owner, str(self._bin / "pg_ctl"), "-D", str(self._data)]
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        shutil.rmtree(self._dir, ignore_errors=True)
