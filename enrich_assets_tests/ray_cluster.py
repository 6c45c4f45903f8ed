"""A real two-node Ray cluster on 127.0.0.1 for tests: `ray start --head` plus one worker node,
as separate process trees, each with one CPU and a small object store.

Stopped by signalling the two `ray start --block` processes this helper started (each then
stops its own node's processes), not with `ray stop`, which would stop every Ray node of the
user on this machine, other sessions' included.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
OBJECT_STORE_BYTES = 80 * 2**20  # Ray's minimum is 75 MiB
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_args(cpus: int) -> list[str]:
    return [
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={cpus}",
        "--num-gpus=0",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        f"--dashboard-agent-listen-port={free_port()}",
        "--disable-usage-stats",
    ]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # `ray start --block` stops its node's processes on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the session this helper started
            process.wait(timeout=10)


def _wait_for_nodes(address: str, count: int, log: Path, timeout_s: float = 240) -> None:
    import ray

    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                if not ray.is_initialized():
                    ray.init(address=address, logging_level="warning", log_to_driver=False)
                if sum(n["Alive"] for n in ray.nodes()) >= count:
                    return
            except ConnectionError:
                pass  # the head is not up yet
            if time.monotonic() > deadline:
                tail = log.read_text()[-2000:]
                raise TimeoutError(f"Ray cluster at {address}: {count} nodes not up:\n{tail}")
            time.sleep(0.5)
    finally:
        ray.shutdown()


@contextmanager
def ray_cluster(cpus_per_node: int = 1) -> Iterator[str]:
    """The GCS address ("127.0.0.1:<port>") of a head node and one worker node."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # socket paths must stay short
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    logs = Path(temp_dir) / "start.log"
    started: list[subprocess.Popen] = []
    try:
        with logs.open("w") as log:

            def start(args: list[str]) -> None:
                started.append(
                    subprocess.Popen(
                        [str(RAY), "start", *args],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

            start(
                [
                    "--head",
                    f"--port={port}",
                    f"--ray-client-server-port={free_port()}",
                    "--include-dashboard=false",
                    f"--temp-dir={temp_dir}",
                    *_node_args(cpus_per_node),
                ]
            )
            start([f"--address={address}", *_node_args(cpus_per_node)])
            _wait_for_nodes(address, 2, logs)
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for process in reversed(started):
            _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
