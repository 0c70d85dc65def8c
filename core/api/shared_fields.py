"""Serializers of the hot request paths (claim, redeem) bind their declared fields once per class (#21, R-NFR-2).

DRF deep-copies every declared field for every serializer instance (``Serializer.get_fields``) so that one instance
may change its fields without touching another's; a request body of ten fields then costs about as much as the rest
of DRF's request handling. A serializer whose fields nobody changes per instance can share one bound set: validation
reads a field's settings and never writes them, and the field's ``parent`` (for ``root``/``context``/``partial``) is
a prototype instance built without data or context — which is what these request serializers are given anyway.

Use it only on serializers that take no ``context`` or ``partial``, are never used as nested fields, and do not
override ``get_fields`` (the mixin builds the shared set with ``Serializer.get_fields``).
tests/perf/test_hot_paths.py checks, body by body, that the answers (validated data and errors) are the same as
with per-instance copies, and from concurrent threads.
"""
from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict


class SharedFieldsMixin:
    """Mix in before ``serializers.Serializer``: ``fields`` is bound once per class, not deep-copied per instance."""

    @property
    def fields(self) -> BindingDict:
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            prototype: Any = cls()  # no data, no context, not partial
            shared = BindingDict(prototype)
            for name, field in serializers.Serializer.get_fields(prototype).items():
                shared[name] = field
            cls._shared_fields = shared  # type: ignore[attr-defined]  # one per class: subclasses build their own
        return shared
