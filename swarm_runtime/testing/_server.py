"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 (ephemeral port), in a thread.

``POST /v1/chat/completions`` answers from a :class:`Script`: completions, tool calls, error
statuses with headers, delays, hangs, and SSE streams (chunked, so connections stay alive).
Tests drive it with the real ``openai`` client; it runs in its own thread, so both the sync
``Swarm.run`` and async code can use it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import orjson

from ._script import Reply, ReplySource, Script, ScriptedRequest

__all__ = ["ScriptedServer"]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``server.requests`` instead."""

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
            )
        else:
            self._send_json(
                404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
            )

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(
                404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
            )
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid"}})
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = owner.script.take(ScriptedRequest(body, headers, self.path))
        if answer.delay and owner._stopping.wait(answer.delay):
            self.close_connection = True
            return
        if answer.hang:
            owner._hang()
            self.close_connection = True  # no answer: the client sees the connection drop
            return
        if answer.status != 200:
            kind = _ERROR_TYPES.get(answer.status, "server_error")
            error = {"message": answer.message, "type": kind, "param": None, "code": None}
            self._send_json(answer.status, {"error": error}, dict(answer.headers))
            return
        if body.get("stream"):
            self._stream(owner.script, answer, body)
        else:
            self._send_json(200, owner.script.completion(answer, body), dict(answer.headers))
        owner.script.mark_answered()

    def _stream(self, script: Script, answer: Reply, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [
            b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in script.chunks(answer, body)
        ]
        events.append(b"data: [DONE]\n\n")
        for event in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class ScriptedServer:
    """``with ScriptedServer(reply("hi")) as server: openai.OpenAI(base_url=server.base_url)``.

    ``requests`` holds every request received, ``answered`` how many got a completion.
    """

    def __init__(
        self,
        *replies: ReplySource,
        script: Script | None = None,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script = script if script is not None else Script(replies, default=default)
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._hanging: list[threading.Event] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the scripted server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The ``base_url`` for an openai client (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[ScriptedRequest]:
        return self.script.requests

    @property
    def answered(self) -> int:
        return self.script.answered

    def start(self) -> Self:
        if self._httpd is None:
            self._stopping.clear()
            httpd = _HTTPServer(self._address, _Handler)
            httpd.owner = self
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="scripted-openai-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def _hang(self) -> None:
        released = threading.Event()
        with self._lock:
            if self._stopping.is_set():
                return
            self._hanging.append(released)
        released.wait()

    def release(self) -> None:
        """Let the requests hanging now go: their connections are dropped, unanswered."""
        with self._lock:
            hanging, self._hanging = self._hanging, []
        for released in hanging:
            released.set()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        self.release()
        if self._httpd is not None:
            httpd, self._httpd = self._httpd, None
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def client(self, **options: Any) -> Any:
        """An ``openai.AsyncOpenAI`` for this server (no retries of its own)."""
        import openai

        options.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key="scripted", **options)

    def sync_client(self, **options: Any) -> Any:
        """An ``openai.OpenAI`` for this server (no retries of its own)."""
        import openai

        options.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.base_url, api_key="scripted", **options)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
