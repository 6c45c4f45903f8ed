"""Vision models in Ray actors: each actor loads its model once and keeps it for every chunk of
images it is sent, with the model's `resources` (schemas/models.yaml) reserved on its node.

The step stays the driver: it reads keyframes, sends pixels, gets results back (Ray's object
store) and writes the catalog itself, so workers need neither the catalog nor the artifact
storage, and the catalog is right wherever they run. Ray is imported here only, and only when
the `ray` backend is chosen.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from enrich_assets.infra.settings import ComputeSettings
from enrich_assets.models.registry import ModelSpec
from enrich_assets.models.vision.batching import K, packed_batches
from enrich_assets.models.vision.loading import LOADS, load_vision_model

# what the step reads from a model besides `run` (the rest live on the actor)
SHARED_ATTRIBUTES = ("provenance", "model_id", "dim", "is_metric", "batch_size")
BATCHES_PER_CALL = 2  # images per actor call = this many of the model's batches
NAMESPACE = "enrich-assets"


class ModelActor:
    """A Ray actor's state: the model, loaded once when the actor starts."""

    def __init__(self, spec: ModelSpec, device: str):
        self.model, self.name, self.calls = load_vision_model(spec, device), spec.name, 0

    def describe(self) -> dict[str, Any]:
        return {a: getattr(self.model, a) for a in SHARED_ATTRIBUTES if hasattr(self.model, a)}

    def run(self, images: list[np.ndarray], *args: Any) -> list[Any]:
        """One result per image, in order; the model packs them into its own batches."""
        self.calls += 1
        return [result for _, result in self.model.run(enumerate(images), *args)]

    def stats(self) -> dict[str, Any]:
        import ray

        return {
            "loads": LOADS[self.name],  # in this actor's process: 1 unless run() reloaded it
            "calls": self.calls,
            "oom_splits": self.model.oom_splits,
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }


class RemoteModel:
    """The step's handle on a model held by Ray actors: the same `run` and attributes as the
    local model; chunks of images go to the actors in turn."""

    def __init__(self, actors: list[Any], info: dict[str, Any]):
        self.actors, self.info = actors, info
        self.chunk = BATCHES_PER_CALL * int(info["batch_size"])

    def __getattr__(self, name: str) -> Any:
        info = self.__dict__.get("info", {})
        if name in info:
            return info[name]
        raise AttributeError(name)

    def run(self, items: Iterable[tuple[K, np.ndarray]], *args: Any) -> Iterator[tuple[K, Any]]:
        """(key, result) in input order; at most two chunks per actor in flight, so images are
        read from disk while the actors work, without holding the whole run in memory."""
        import ray

        in_flight: deque[tuple[list[K], Any]] = deque()
        for n, (keys, images) in enumerate(packed_batches(items, self.chunk)):
            if len(in_flight) >= 2 * len(self.actors):
                yield from _results(ray, *in_flight.popleft())
            actor = self.actors[n % len(self.actors)]
            in_flight.append((keys, actor.run.remote(images, *args)))
        while in_flight:
            yield from _results(ray, *in_flight.popleft())

    def stats(self) -> list[dict[str, Any]]:
        import ray

        return ray.get([a.stats.remote() for a in self.actors])

    @property
    def oom_splits(self) -> int:
        return sum(s["oom_splits"] for s in self.stats())


def _results(ray: Any, keys: list[K], ref: Any) -> Iterator[tuple[K, Any]]:
    return zip(keys, ray.get(ref), strict=True)


class RayHost:
    """Opens a model as `actors_per_model` actors spread over the cluster's nodes."""

    def __init__(self, compute: ComputeSettings, device: str = "auto"):
        self.compute, self.device = compute, device

    def open(self, spec: ModelSpec) -> RemoteModel:
        ray = connect(self.compute.ray_address)
        res = spec.resources
        # no GPU reserved: stay off any GPU the node has, it belongs to other actors
        device = "cpu" if not res.num_gpus and self.device == "auto" else self.device
        actor_class = ray.remote(ModelActor).options(
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
            memory=int(res.memory_gb * 2**30),
            scheduling_strategy="SPREAD",
        )
        actors = [actor_class.remote(spec, device) for _ in range(self.compute.actors_per_model)]
        timeout = self.compute.actor_start_timeout_s
        try:
            infos = ray.get([a.describe.remote() for a in actors], timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            _kill(ray, actors)
            raise TimeoutError(
                f"model {spec.name}: {len(actors)} Ray actor(s) asking for {_asks(spec)} "
                f"not started within {timeout:g} s (compute.actor_start_timeout_s); does a node "
                "of the cluster have that free? (`ray status`)"
            ) from None
        except ray.exceptions.RayActorError as err:
            _kill(ray, actors)
            raise RuntimeError(f"model {spec.name}: a Ray actor failed to load it: {err}") from err
        return RemoteModel(actors, infos[0])

    def close(self, model: RemoteModel) -> None:
        import ray

        _kill(ray, model.actors)

    def describe(self, model: RemoteModel) -> dict[str, Any]:
        stats = model.stats()
        return {
            "compute": "ray",
            "ray_actors": len(stats),
            "ray_nodes": len({s["node_id"] for s in stats}),
            "model_loads": sum(s["loads"] for s in stats),
            "model_calls": sum(s["calls"] for s in stats),
        }


def _asks(spec: ModelSpec) -> str:
    r = spec.resources
    return f"{{num_gpus: {r.num_gpus:g}, num_cpus: {r.num_cpus:g}, memory_gb: {r.memory_gb:g}}}"


def _kill(ray: Any, actors: list[Any]) -> None:
    for actor in actors:
        ray.kill(actor)


def connect(address: str) -> Any:
    """The `ray` module, connected once per process to the cluster at `address` (empty:
    $RAY_ADDRESS, else a cluster running on this machine; never a new in-process one)."""
    import ray

    if not ray.is_initialized():
        where = address or "$RAY_ADDRESS / this machine"
        try:
            if address:
                _probe(address)  # ray.init retries an unreachable address for minutes
            ray.init(address=address or "auto", namespace=NAMESPACE, logging_level="warning")
        except (OSError, ValueError) as err:  # ConnectionError is an OSError
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConnectionError(
                f"compute.ray_address {where}: no Ray cluster reachable ({reason})"
            ) from None
    return ray


def _probe(address: str, timeout_s: float = 10) -> None:
    """Open and close a TCP connection to "host:port" or "ray://host:port"."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port or ray://host:port, got {address!r}")
    socket.create_connection((host, int(port)), timeout=timeout_s).close()
