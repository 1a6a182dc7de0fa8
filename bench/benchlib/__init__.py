"""Helpers for bench/compare.py: servers, client, load, process statistics."""


class BenchError(Exception):
    """A benchmark step failed: a server misbehaved or a tool is missing."""
