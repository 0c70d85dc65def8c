"""Draws and winners (R-DRAW) — built in issue #7."""
