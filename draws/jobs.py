"""RQ entry points (queue "draws"): take ids, call a service."""
from __future__ import annotations

from core.audit import Actor
from draws.services import draw_grant_prizes, draw_run


def run_draw(draw_id: int) -> None:
    draw_run(draw_id=draw_id, actor=Actor.job("run_draw"))


def grant_prizes(draw_id: int) -> None:
    draw_grant_prizes(draw_id=draw_id, actor=Actor.job("grant_draw_prizes"))
