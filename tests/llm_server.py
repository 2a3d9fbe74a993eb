"""A real local HTTP server speaking the OpenAI chat-completions protocol, for tests.

``ScriptedLLMServer(responder)`` listens on 127.0.0.1 (a free port) in a background thread and
answers ``POST /v1/chat/completions`` with ``responder(request_json) -> str`` as
``choices[0].message.content`` and a ``usage`` block (tokens counted as whitespace-separated
words, or fixed with ``usage=(prompt, completion)``). ``fail_first`` lists HTTP status codes to answer the first requests with (e.g.
``[500, 429]``). Every request body it receives is kept in ``requests`` (in arrival order).

    with ScriptedLLMServer(lambda req: "hello") as server:
        base_url = server.base_url   # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def words(text: str) -> int:
    return len(text.split())


def prompt_text(request: dict) -> str:
    return "\n".join(m.get("content", "") for m in request.get("messages", []))


class ScriptedLLMServer:
    def __init__(self, responder: Callable[[dict], str], fail_first: list[int] | None = None,
                 finish_reason: str = "stop", retry_after: str | None = None,
                 usage: tuple[int, int] | None = None):
        self.responder = responder
        self.fail_first = list(fail_first or [])
        self.finish_reason = finish_reason
        self.retry_after = retry_after
        self.usage = usage  # fixed (prompt, completion) tokens per answer instead of word counts
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def prompts(self) -> list[str]:
        with self._lock:
            return [prompt_text(r) for r in self.requests]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                request = json.loads(raw or b"{}")
                with server._lock:
                    server.requests.append(request)
                    fail = server.fail_first.pop(0) if server.fail_first else None
                if fail is not None:
                    with server._lock:
                        server.statuses.append(fail)
                    headers = {"Retry-After": server.retry_after} if server.retry_after else None
                    self._send(fail, {"error": {"message": f"scripted failure {fail}", "type": "server_error"}}, headers)
                    return
                try:
                    content = server.responder(request)
                except Exception as exc:  # a broken script is a 500 the test will see
                    with server._lock:
                        server.statuses.append(500)
                    self._send(500, {"error": {"message": f"responder raised {exc!r}"}})
                    return
                with server._lock:
                    server.statuses.append(200)
                prompt = prompt_text(request)
                n_prompt, n_completion = server.usage or (words(prompt), words(content))
                self._send(200, {
                    "id": f"chatcmpl-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": request.get("model", "scripted"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": server.finish_reason}],
                    "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_completion,
                              "total_tokens": n_prompt + n_completion},
                })

        return Handler

    def start(self) -> "ScriptedLLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ScriptedLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
