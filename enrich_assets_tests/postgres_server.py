"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir, on 127.0.0.1.

Real PostgreSQL, not a stand-in. When the tests run as root (CI containers), the server runs
as the `postgres` user that Debian's package creates, because initdb refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"{name} not found: run scripts/install_postgres.sh")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def postgres_server(database: str = "enrich") -> Iterator[str]:
    """Start a cluster in a fresh temp dir; yield a SQLAlchemy URL (psycopg 3); stop it after.

    The dir is made directly under the system temp dir: pytest's own tmp dirs are 0700 to
    root, which the `postgres` user cannot enter."""
    workdir = Path(tempfile.mkdtemp(prefix="enrich-pg-"))
    data, sock = workdir / "pgdata", workdir / "sock"
    sock.mkdir(exist_ok=True)
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for path in (workdir, sock):
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def run(cmd: list[str]) -> None:
        done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {done.stderr.strip()[-500:]}")

    run([_bin("initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8"])
    port = _free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c max_connections=200"
    run([_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(workdir / "log"), "-w", "start"])
    try:
        url = f"postgresql+psycopg://{user}@127.0.0.1:{port}"
        _create_database(url, database)
        yield f"{url}/{database}"
    finally:
        subprocess.run(
            _as_server_user([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def _create_database(url: str, database: str) -> None:
    import sqlalchemy as sa

    deadline = time.monotonic() + 20
    while True:
        try:
            engine = sa.create_engine(f"{url}/postgres", isolation_level="AUTOCOMMIT")
            with engine.connect() as con:
                con.execute(sa.text(f'CREATE DATABASE "{database}"'))
            engine.dispose()
            return
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
