"""A local OpenAI-compatible chat server: scripted answers, token usage, faults on demand.

Serves POST /v1/chat/completions and GET /v1/models on 127.0.0.1 (ephemeral port by
default). The request kind comes from the `X-Enrich-Kind` header (docs/vlm.md). Every answer
names the requested model plus `:local-stub`, so nothing it produced can pass as a real model.

Faults are queued from Python (`server.faults.push(Fault("429", retry_after=1))`) or over
HTTP (POST /_faults {"faults": [{"kind": "500"}, ...]}); each chat request takes the next
one. GET /_stats reports the request count. The demo and the tests start it in-process;
`python -m enrich_assets.models.vlm.stub_server --port 8000` serves it standalone.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from enrich_assets.models.vlm.stub_answers import UnknownKind, scripted_answer

STUB_SUFFIX = ":local-stub"
KIND_HEADER = "X-Enrich-Kind"
FAULT_KINDS = (
    "429",
    "500",
    "delay",
    "malformed",
    "fenced",
    "truncated",
    "refusal",
    # HTTP 200 that is not a chat completion
    "empty_choices",
    "no_message",
    "html",
    "not_json",
    # HTTP 401 whose body echoes the Authorization header (as some proxies do)
    "401_echo",
)
IMAGE_TOKENS = 85


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour. `retry_after` (s) only for 429; `delay_s` only for delay."""

    kind: str
    retry_after: float | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; use one of {FAULT_KINDS}")


class FaultQueue:
    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def push(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def pop(self) -> Fault | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)


class LocalStubServer:
    def __init__(
        self,
        model: str = "stub-vlm",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
    ) -> None:
        self.model = _stub_name(model)
        self.latency_s = latency_s
        self.faults = FaultQueue()
        self.kinds: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=100)  # last chat request bodies
        self._count_lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.stub = self

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def request_count(self) -> int:
        return sum(self.kinds.values())

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def start(self) -> LocalStubServer:
        """Serve from a background thread."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalStubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        self.faults.clear()
        with self._count_lock:
            self.kinds.clear()
            self.recent.clear()

    def record(self, kind: str, body: dict[str, Any]) -> None:
        with self._count_lock:
            self.kinds[kind] += 1
            self.recent.append(body)

    def answer(self, kind: str, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        """The chat.completion object for a request, with `fault` applied to its content."""
        prompt, sizes, prompt_chars = _read_messages(body.get("messages", []))
        text = scripted_answer(kind, prompt, sizes)
        finish = "stop"
        if fault and fault.kind == "malformed":
            text = "Here is what I see: a robot arm and some objects on a table."
        elif fault and fault.kind == "fenced":
            text = f"Sure! Here is the JSON you asked for:\n```json\n{text}\n```"
        elif fault and fault.kind == "truncated":
            text, finish = text[: len(text) // 2], "length"
        elif fault and fault.kind == "refusal":
            text = "I'm sorry, but I can't help with that request."
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens and _tokens(text) > max_tokens:
            text, finish = text[: max_tokens * 4], "length"
        input_tokens = _tokens(" " * prompt_chars) + IMAGE_TOKENS * len(sizes)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": _stub_name(body.get("model") or self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": _tokens(text),
                "total_tokens": input_tokens + _tokens(text),
            },
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    stub: LocalStubServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demo
        pass

    def do_GET(self) -> None:
        stub = self.server.stub
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": stub.model, "object": "model", "owned_by": "local-stub"}
            self._send(200, {"object": "list", "data": [model]})
        elif self.path == "/_stats":
            self._send(200, {"requests": stub.request_count, "kinds": dict(stub.kinds)})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        stub = self.server.stub
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except json.JSONDecodeError as e:
            self._send(400, {"error": {"message": f"body is not JSON: {e}"}})
            return
        if self.path == "/_faults":
            try:
                stub.faults.push(*(Fault(**f) for f in body.get("faults", [])))
            except (TypeError, ValueError) as e:
                self._send(400, {"error": {"message": str(e)}})
                return
            self._send(200, {"queued": len(stub.faults)})
        elif self.path == "/_reset":
            stub.reset()
            self._send(200, {"reset": True})
        elif self.path.rstrip("/") == "/v1/chat/completions":
            self._chat(stub, body)
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, stub: LocalStubServer, body: dict[str, Any]) -> None:
        kind = self.headers.get(KIND_HEADER, "caption")
        stub.record(kind, body)
        fault = stub.faults.pop()
        time.sleep(stub.latency_s + (fault.delay_s if fault and fault.kind == "delay" else 0))
        if fault and fault.kind == "429":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after}"}
            self._send(429, {"error": {"message": "rate limited (stub fault)"}}, headers)
            return
        if fault and fault.kind == "500":
            self._send(500, {"error": {"message": "internal error (stub fault)"}})
            return
        if fault and fault.kind == "401_echo":
            auth = self.headers.get("Authorization", "")
            self._send(401, {"error": {"message": f"invalid credentials: {auth}"}})
            return
        if fault and fault.kind in ("html", "not_json"):
            self._send_raw(200, _NOT_COMPLETION[fault.kind])
            return
        if fault and fault.kind in ("empty_choices", "no_message"):
            answer = stub.answer(kind, body, None)
            if fault.kind == "empty_choices":
                answer["choices"] = []
            else:
                del answer["choices"][0]["message"]
            self._send(200, answer)
            return
        try:
            self._send(200, stub.answer(kind, body, fault))
        except UnknownKind as e:
            self._send(400, {"error": {"message": str(e)}})

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, ("application/json", json.dumps(payload).encode()), headers)

    def _send_raw(
        self, status: int, body: tuple[str, bytes], headers: dict[str, str] | None = None
    ) -> None:
        content_type, data = body
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to tell it


_NOT_COMPLETION = {
    "html": ("text/html", b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"),
    "not_json": ("application/json", b"{this is not json"),
}


def _read_messages(messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]], int]:
    """The first user prompt (repair turns come later), its images' (width, height), all
    text length."""
    prompt, sizes, chars, seen_user = "", [], 0, False
    for message in messages:
        content = message.get("content") or ""
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts = [p.get("text", "") for p in parts if p.get("type") == "text"]
        chars += sum(len(t) for t in texts)
        if message.get("role") == "user" and not seen_user:
            seen_user = True
            prompt = "\n".join(texts)
            images = [p.get("image_url") or {} for p in parts if p.get("type") == "image_url"]
            sizes = [_image_size(image.get("url", "")) for image in images]
    return prompt, sizes, chars


def _image_size(url: str) -> tuple[int, int]:
    """(width, height) of a base64 data-URL image (its header only); (0, 0) if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = base64.b64decode(url.partition(",")[2], validate=False)
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (ValueError, UnidentifiedImageError, OSError):
        return (0, 0)


def _stub_name(model: str) -> str:
    return model if model.endswith(STUB_SUFFIX) else model + STUB_SUFFIX


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="stub-vlm")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    args = parser.parse_args()
    server = LocalStubServer(args.model, port=args.port, latency_s=args.latency)
    print(f"local stub serving {server.model} at {server.base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
