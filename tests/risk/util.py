"""Helpers for the risk tests: configuration through the services, counters read back, a webhook receiver."""
from __future__ import annotations

import http.server
import json
import threading
from contextlib import contextmanager
from typing import Any

from coupons.models import CouponInventory, CouponPolicy
from risk import services
from risk.models import FrequencyLimit, MemberRisk
from tests import factories


def add_limit(*, inventory: CouponInventory | None = None, policy: CouponPolicy | None = None, action: str = "claim",
              dimension: str = "device_id", max_per_day: int = 5) -> FrequencyLimit:
    tenant = (inventory or policy).tenant
    return services.frequency_limit_save(
        limit=FrequencyLimit(tenant=tenant, inventory=inventory, policy=policy, action=action, dimension=dimension,
                             max_per_day=max_per_day), actor=factories.TEST_ACTOR)


def set_level(tenant: Any, member_id: str, level: str, **kwargs: Any) -> MemberRisk:
    return services.member_risk_save(entry=MemberRisk(tenant=tenant, member_id=member_id, level=level, **kwargs),
                                     actor=factories.TEST_ACTOR)


def claim(api: Any, inventory: CouponInventory, member: str, **context: Any) -> Any:
    return api.post("/api/v1/claims", {"member_id": member, "inventory": inventory.public_id, **context},
                    format="json")


class Receiver:
    """A real HTTP server on 127.0.0.1 (a thread) that records every POST; answers `status` (settable)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/coupons"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


@contextmanager
def receiver():
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
