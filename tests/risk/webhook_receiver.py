"""A real receiver for lifecycle webhooks (issue #16): an HTTP server on 127.0.0.1 in a thread that runs the
verification example of docs/WEBHOOKS.md — the very code integrators copy — on every delivery it accepts."""
from __future__ import annotations

import http.server
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from django.conf import settings


def documented_example() -> dict[str, Any]:
    """The Python block of docs/WEBHOOKS.md, executed: its functions and its set of seen event ids."""
    text = (Path(settings.BASE_DIR) / "docs" / "WEBHOOKS.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, Any] = {"__name__": "webhooks_example"}
    exec(compile(code, "docs/WEBHOOKS.md", "exec"), namespace)  # noqa: S102 - our own documentation's example
    return namespace


class LifecycleReceiver:
    """``down_for``: answer 503 to that many requests first (without looking at them). ``drop_answer_once``: process
    the next delivery, then close the connection without answering (an answer lost on the way back)."""

    def __init__(self, secret: str = "", *, down_for: int = 0) -> None:
        self.secret, self.down_for, self.drop_answer_once = secret, down_for, False
        self.example = documented_example()
        self.requests: list[dict[str, Any]] = []  # every request: headers, body, what the receiver answered
        self.processed: list[dict[str, Any]] = []  # the events handle_webhook said were new
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                with receiver.lock:
                    entry = {"headers": headers, "body": body}
                    receiver.requests.append(entry)
                    if len(receiver.requests) <= receiver.down_for:
                        entry["answer"] = 503
                    else:
                        try:
                            if receiver.example["handle_webhook"](receiver.secret, headers, body):
                                receiver.processed.append(receiver.example["verify_webhook"](
                                    receiver.secret, headers, body))
                            entry["answer"] = 200
                        except ValueError:
                            entry["answer"] = 400
                        if receiver.drop_answer_once and entry["answer"] == 200:
                            receiver.drop_answer_once = False
                            entry["answer"] = "dropped"
                            self.close_connection = True
                            self.connection.close()
                            return
                self.send_response(entry["answer"])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/coupons"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.processed if e["event"] == name]


@contextmanager
def lifecycle_receiver(**kwargs: Any) -> Iterator[LifecycleReceiver]:
    r = LifecycleReceiver(**kwargs)
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
