"""Journeys over a live server: an integrator's HTTP client per API token."""
from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def http(live_server):
    def client(token: str) -> httpx.Client:
        return httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    return client
