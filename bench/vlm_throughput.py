"""VLM client throughput against the local stub with simulated latency.

The bound for C concurrent requests at latency L is C / L requests per second; the figure
that matters is achieved / bound (target >= 0.8). A serial run (concurrency 1) in the same
process is the baseline.

    .venv/bin/python bench/vlm_throughput.py [--requests 320] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from enrich_assets.models.vlm.openai_client import OpenAIVLMClient
from enrich_assets.models.vlm.stub_server import LocalStubServer
from enrich_assets.models.vlm.types import VLMRequest


def measure(server: LocalStubServer, requests: list[VLMRequest], concurrency: int) -> float:
    client = OpenAIVLMClient(server.model, [server.base_url], concurrency=concurrency)
    client.complete(requests[0])  # warm the connection pool and imports
    started = time.perf_counter()
    replies = client.complete_many(requests)
    elapsed = time.perf_counter() - started
    client.close()
    assert all(r.error is None for r in replies), "a benchmark reply failed"
    return len(requests) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=128, help="one RGB image per request")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (args.image_size, args.image_size, 3), dtype=np.uint8)
    requests = [
        VLMRequest(kind="vqa", prompt=f"Task: pick up cube {i}\nCount: 3", images=(image,))
        for i in range(args.requests)
    ]
    with LocalStubServer(latency_s=args.latency) as server:
        serial = measure(server, requests[: max(5, args.requests // 32)], 1)
        concurrent = measure(server, requests, args.concurrency)
    bound = args.concurrency / args.latency
    print(f"requests={args.requests} latency={args.latency}s concurrency={args.concurrency} "
          f"image={args.image_size}px")  # fmt: skip
    print(f"serial baseline:   {serial:7.2f} req/s (bound {1 / args.latency:.2f})")
    print(f"concurrent:        {concurrent:7.2f} req/s (bound {bound:.2f})")
    print(f"achieved / bound:  {concurrent / bound:7.3f}   (target >= 0.80)")
    print(f"speed-up vs serial:{concurrent / serial:7.2f}x")


if __name__ == "__main__":
    main()
