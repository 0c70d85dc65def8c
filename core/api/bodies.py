"""Hostile request bodies (issue #17, R-NFR-4): too large → 413, too deeply nested → 400, never a 500.

Design: docs/design/api.md#core-api-bodies.
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext

from core.api.parsers import JSONParser as TranslatedJSONParser
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


def too_large_response(limit: int) -> JsonResponse:
    return JsonResponse({
        "code": "request_too_large",
        "message": gettext("The request body is larger than %(limit)s bytes.") % {"limit": f"{limit:,}"},
        "details": {"max_bytes": limit}}, status=413)


def body_limit(content_type: str) -> int:
    if content_type.startswith("multipart/"):
        return settings.COUPON_API_MAX_UPLOAD_BYTES
    return settings.COUPON_API_MAX_BODY_BYTES


class ApiEdgeMiddleware:
    """The API's edge: the body limit before anything reads the body, and ``Cache-Control: no-store`` on every
    ``/api/`` answer (coupon codes, member ids and balances must not sit in a proxy's or browser's cache)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = body_limit(request.META.get("CONTENT_TYPE", ""))
        response = too_large_response(limit) if length > limit else self.get_response(request)
        response["Cache-Control"] = "no-store"
        return response


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONParser(TranslatedJSONParser):
    """#19's parser (errors in the request's language) that also refuses JSON nested too deep (#17)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            too_deep = True
        else:
            too_deep = _depth_exceeds(data, MAX_DEPTH)
        if too_deep:
            raise ParseError(gettext("JSON nested deeper than %(max)d levels is not accepted.") % {"max": MAX_DEPTH})
        return data


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        normal = value.normalize()
        return {"#n": format(normal, "f") if normal == normal.to_integral_value() else str(normal)}
    return value


def canonical_json(body: bytes) -> bytes | None:
    """The body's canonical JSON, or None when it is not JSON (then the raw bytes are hashed)."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError, InvalidOperation):
        return None
    return json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
