"""Winners to XLSX (write-only workbook: rows go to disk as they are read, memory stays flat)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

from core.spreadsheets import add_sheet, append_row, new_workbook, save_workbook
from draws.models import Draw, DrawWinner

HEADER = ["draw", "draw name", "round", "tier", "tier name", "rank", "member_id", "coupon", "grant error",
          "forfeited_at"]


def winner_rows(draws: Iterable[Draw]) -> Iterable[list[Any]]:
    for draw in draws:
        rows = (DrawWinner.objects.filter(draw=draw).order_by("tier__position", "rank")
                .values_list("tier__position", "tier__name", "rank", "member_id", "coupon__code", "grant_error",
                             "forfeited_at"))
        for position, tier_name, rank, member_id, code, grant_error, forfeited_at in rows.iterator(chunk_size=2000):
            yield [draw.public_id, draw.name, draw.round, position, tier_name, rank, member_id, code or "",
                   grant_error, forfeited_at.isoformat() if forfeited_at else ""]


def winners_xlsx(draws: Iterable[Draw], directory: Path | None = None) -> Path:
    workbook = new_workbook(streaming=True)
    sheet = add_sheet(workbook, "winners", HEADER,
                      ["id", "text", "number", "number", "text", "number", "id", "code", "code", "date"])
    for row in winner_rows(draws):
        append_row(sheet, row)
    return save_workbook(workbook, directory=directory or Path(settings.MEDIA_ROOT) / "exports", prefix="winners-")


class DeleteOnClose:
    """A file object that removes its file once the response has streamed it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "rb")  # noqa: SIM115 - closed by the response

    def read(self, *args: Any) -> bytes:
        return self.file.read(*args)

    def close(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)
