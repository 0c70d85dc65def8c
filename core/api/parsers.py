"""Request body parsers whose refusals speak the request's language (#19): DRF's own put the Python parser's English
text into the message ("JSON parse error - Expecting value: …")."""
from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, json.JSONDecodeError):
                raise ParseError(_("The body is not valid JSON (line %(line)d, column %(column)d).")
                                 % {"line": cause.lineno, "column": cause.colno}) from cause
            raise ParseError(_("The body is not valid JSON.")) from cause


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            raise ParseError(_("The body is not a valid multipart/form-data body.")) from exc
