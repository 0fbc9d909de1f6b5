"""A real HTTP server on 127.0.0.1 that speaks OpenAI chat completions, scripted by the test.

    with ChatServer(default_text="hello") as server:
        client = ChatClient(server.base_url, "test-model")
        server.script(Reply.rate_limited(retry_after=0.1), Reply.server_error(503))  # then the default
        ...
        assert server.request_count == 3

What the server answers to `POST /v1/chat/completions` (also `/chat/completions`), first that applies:

1. the next scripted reply (`script(...)`, consumed in order, one per request);
2. `responder(request_json)` when set: returns a `Reply`, a `(status, body, delay_s)` tuple, or a
   plain string (a normal completion with that content);
3. a normal completion whose content is `default_text`.

A `Reply` body that is a dict is sent as JSON, a str or bytes as is (so a malformed body is just a
string). `delay_s` sleeps before answering (beyond the client's timeout: a timeout); `headers` adds
headers (`Retry-After`). Every request is recorded before the reply (`requests`: path, headers, parsed
JSON body, arrival time), and the server tracks how many requests were in flight at once
(`max_in_flight`). `stop()` wakes sleeping handlers so the server always stops promptly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


def completion_body(text: str | None, finish_reason: str = "stop", model: str = "test-model") -> dict[str, Any]:
    """A chat.completion object with one choice."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] | list[Any] | str | bytes | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def chat(cls, text: str | None, finish_reason: str = "stop", delay_s: float = 0.0) -> Reply:
        return cls(200, completion_body(text, finish_reason), delay_s)

    @classmethod
    def score(cls, score: Any, reason: str = "scripted", delay_s: float = 0.0) -> Reply:
        """A judge reply: content is the JSON {"score": score, "reason": reason}."""
        return cls.chat(json.dumps({"score": score, "reason": reason}), delay_s=delay_s)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = None) -> Reply:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}
        return cls(429, body, 0.0, headers)

    @classmethod
    def server_error(cls, status: int = 500, message: str = "internal server error") -> Reply:
        return cls(status, {"error": {"message": message, "type": "server_error"}})

    @classmethod
    def client_error(cls, status: int = 400, message: str = "bad request") -> Reply:
        return cls(status, {"error": {"message": message, "type": "invalid_request_error"}})

    @classmethod
    def slow(cls, delay_s: float, text: str = "late") -> Reply:
        return cls.chat(text, delay_s=delay_s)

    @classmethod
    def malformed(cls) -> Reply:
        return cls(200, '{"id": "chatcmpl-test", "choices": [')

    @classmethod
    def no_choices(cls) -> Reply:
        return cls(200, {"id": "chatcmpl-test", "object": "chat.completion", "model": "test-model"})


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lower-cased names
    json: Any  # parsed body (None when it was not JSON)
    received_at: float  # time.monotonic()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.json.get("messages", []) if isinstance(self.json, dict) else []

    @property
    def last_user_content(self) -> str:
        users = [m.get("content") for m in self.messages if m.get("role") == "user"]
        return users[-1] if users and isinstance(users[-1], str) else ""


Responder = Callable[[Any], "Reply | tuple[int, Any, float] | str"]


class ChatServer:
    """Threaded OpenAI-compatible test server on a free port of 127.0.0.1 (see the module doc)."""

    def __init__(self, default_text: str = "OK", responder: Responder | None = None):
        self.default_text = default_text
        self.responder = responder
        self._script: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ChatServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False  # idle keep-alive handlers must not hold up stop()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What a client takes as base URL (OpenAI style, up to /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ scripting and inspection

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order (before responder/default)."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget requests, script and the in-flight maximum."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self.max_in_flight = 0

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def scripted_left(self) -> int:
        with self._lock:
            return len(self._script)

    # ------------------------------------------------------------------ request handling

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        if self.responder is not None:
            return _as_reply(self.responder(request.json))
        return Reply.chat(self.default_text)

    def _enter(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _as_reply(value: Reply | tuple[int, Any, float] | str) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply.chat(value)
    status, body, delay = value
    return Reply(status, body, delay)


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # an idle keep-alive connection is dropped after this

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._send(Reply(404, {"error": {"message": "only POST /v1/chat/completions"}}))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = Request(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                json=body,
                received_at=time.monotonic(),
            )
            server._enter(request)
            try:
                if self.path not in CHAT_PATHS:
                    reply = Reply(404, {"error": {"message": f"no route {self.path}"}})
                elif body is None:
                    reply = Reply(400, {"error": {"message": "body is not JSON"}})
                else:
                    try:
                        reply = server._next_reply(request)
                    except Exception as exc:  # a broken responder shows up as a 500, not a hung test
                        reply = Reply.server_error(500, f"responder failed: {type(exc).__name__}: {exc}")
                if reply.delay_s > 0 and server._stopping.wait(reply.delay_s):
                    return
                self._send(reply)
            finally:
                server._leave()

        def _send(self, reply: Reply) -> None:
            if isinstance(reply.body, bytes):
                payload = reply.body
            elif isinstance(reply.body, str):
                payload = reply.body.encode("utf-8")
            elif reply.body is None:
                payload = b""
            else:
                payload = json.dumps(reply.body).encode("utf-8")
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True  # the client gave up (timeout); nothing to tell it

    return Handler
