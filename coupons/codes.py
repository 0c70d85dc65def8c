"""How a code typed by a person is read (R-CODE-4): one function, used by every path that takes a code."""
from __future__ import annotations


def normalise_code(raw: str) -> str:
    """Upper-case, without '-' and without whitespace anywhere (spaces, tabs, line breaks from a pasted list):
    ``" abcd-ef\tgh "`` → ``"ABCDEFGH"``. Codes never contain either, so nothing meaningful is lost."""
    return "".join(ch for ch in raw.upper() if ch != "-" and not ch.isspace())
