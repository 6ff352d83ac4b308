"""A scripted fake LLM provider speaking the OpenAI Chat Completions, OpenAI Responses and Anthropic Messages
wire protocols over real HTTP on 127.0.0.1 (a random free port), so tests drive the real SDKs end to end.

Policy: replies are served in order from one script shared by all endpoints (a ``Reply`` per request); each reply
is an answer text (with token usage), an HTTP error (optionally with ``Retry-After``), or a slow answer that trips
the client's timeout. An exhausted script answers 500 "script exhausted" so a test never hangs. Every request is
recorded (path, lower-cased headers, JSON body) for assertions on headers and on what reached the prompt.
Non-streaming JSON only. Use as a context manager: ``with FakeLLMServer([Reply.answer("...")]) as server: ...``.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_DIFF_ANSWER = """I will add the function.

```diff
--- a/generated_runtime/hello.py
+++ b/generated_runtime/hello.py
@@ -1,2 +1,4 @@
 def hello():
     return "hi"
+def bye():
+    return "bye"
```
"""

MALFORMED_DIFF_ANSWER = """```diff
--- a/generated_runtime/hello.py
+++ b/generated_runtime/hello.py
@@ -1,9 +1,2 @@
 def hello():
this line has lost its prefix
```
"""

EDITS_ANSWER = """Edit the README (it contains a code fence):

generated_runtime/README.md
<<<<<<< SEARCH
# Runtime
=======
# Runtime

```python
import vibetensor.torch as vt
```
>>>>>>> REPLACE
"""


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    input_tokens: int = 100
    output_tokens: int = 50
    error_message: str = ""

    @classmethod
    def answer(cls, text: str, input_tokens: int = 100, output_tokens: int = 50) -> "Reply":
        return cls(text=text, input_tokens=input_tokens, output_tokens=output_tokens)

    @classmethod
    def error(cls, status: int, message: str = "fake error", retry_after: str | None = None) -> "Reply":
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=status, headers=headers, error_message=message)

    @classmethod
    def slow(cls, delay_s: float, text: str = "too late") -> "Reply":
        return cls(text=text, delay_s=delay_s)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _openai_chat(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": reply.text, "refusal": None}}],
        "usage": {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                  "total_tokens": reply.input_tokens + reply.output_tokens},
    }


def _openai_responses(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "resp_fake", "object": "response", "created_at": int(time.time()), "model": body.get("model"),
        "status": "completed", "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto",
        "tools": [],
        "output": [{"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}]}],
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
                  "total_tokens": reply.input_tokens + reply.output_tokens,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }


def _anthropic_messages(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": body.get("model"),
        "content": [{"type": "text", "text": reply.text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


_ROUTES = {"/v1/chat/completions": _openai_chat, "/v1/responses": _openai_responses,
           "/v1/messages": _anthropic_messages}


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    if path == "/v1/messages":
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error",
                      "param": None, "code": None}}


class FakeLLMServer:
    def __init__(self, replies: list[Reply] | None = None):
        self.replies: list[Reply] = list(replies or [])
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def __enter__(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if not self.replies:
                return Reply.error(500, "fake server: script exhausted")
            return self.replies.pop(0)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                path = self.path.split("?", 1)[0]
                recorded = RecordedRequest(path, {k.lower(): v for k, v in self.headers.items()}, body)
                if path not in _ROUTES:
                    self._send(404, _error_body(path, 404, f"fake server: no route {path}"), {})
                    return
                reply = server._next(recorded)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    self._send(reply.status, _error_body(path, reply.status, reply.error_message), reply.headers)
                else:
                    self._send(200, _ROUTES[path](reply, body), reply.headers)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler
