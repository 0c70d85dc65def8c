"""Benchmarks: `python manage.py bench …` and the figures in bench/RESULTS.md (issue #22 moves them here)."""
