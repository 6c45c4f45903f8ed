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
STARTED = "Ray runtime started."  # what `ray start` prints once its node is up
START_TIMEOUT_S = 300  # a loaded 2-core machine can take minutes
# Ray's GCS deadlines (seconds) raised for a loaded 2-core machine, where the defaults (a few
# seconds) made ray.init fail with "Failed to get cluster ID ... Deadline Exceeded"
SLOW_MACHINE = {
    "RAY_gcs_rpc_server_connect_timeout_s": "120",
    "RAY_gcs_server_request_timeout_seconds": "120",
    "RAY_py_gcs_connect_timeout_s": "120",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Node:
    """One `ray start --block` process and its log."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [str(RAY), "start", "--block", *args, *_common_args()],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_started(self, deadline: float) -> None:
        while STARTED not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self.process.poll() is not None else "not up in time"
                raise RuntimeError(f"ray start {why}; {self.log}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # `ray start --block` stops its node's processes on TERM
            try:
                self.process.wait(timeout=60)
                return
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the session this helper started
        self.process.wait(timeout=10)


def _common_args() -> list[str]:
    return [
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--num-gpus=0",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        f"--dashboard-agent-listen-port={free_port()}",
        "--disable-usage-stats",
    ]


def _wait_for_nodes(address: str, count: int) -> None:
    import ray

    ray.init(address=address, logging_level="warning", log_to_driver=False)
    try:
        deadline = time.monotonic() + 60
        while sum(n["Alive"] for n in ray.nodes()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Ray cluster at {address}: {count} nodes not alive")
            time.sleep(0.5)
    finally:
        ray.shutdown()


@contextmanager
def ray_cluster() -> Iterator[str]:
    """The GCS address ("127.0.0.1:<port>") of a head node and one worker node, one CPU each."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # socket paths stay short
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_raylet_start_wait_time_s": str(START_TIMEOUT_S),
        **SLOW_MACHINE,
    }
    saved = {k: os.environ.get(k) for k in SLOW_MACHINE}
    os.environ.update(SLOW_MACHINE)  # the driver (this process, and Dagster's step processes)
    nodes: list[_Node] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        head_args = [
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={free_port()}",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
        ]
        nodes.append(_Node(head_args, env, temp_dir / "head.log"))
        nodes[0].wait_started(deadline)
        nodes.append(_Node([f"--address={address}"], env, temp_dir / "worker.log"))
        nodes[1].wait_started(deadline)
        _wait_for_nodes(address, 2)
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
