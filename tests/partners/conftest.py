from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _jobs_start_at_once(monkeypatch):
    """The test transaction never commits, so the upload jobs (enqueued on commit) start right away instead."""
    monkeypatch.setattr("partners.services._after_commit", lambda fn: fn())
