"""Domain errors. Each has a stable snake_case ``code``, an HTTP status and a human message.

The API turns them into ``{"code", "message", "details"}`` (API.md); the console shows the message.
Services raise them; they never import the API layer.
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "error"
    status: int = 400
    default_message: str = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(DomainError):
    code = "invalid"
    status = 400
    default_message = "The input is not valid."


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    default_message = "You are not allowed to do this."


class InvalidState(DomainError):
    code = "invalid_state"
    status = 409
    default_message = "The object is not in a state that allows this."


class BusinessRuleViolation(DomainError):
    code = "rule_violation"
    status = 422
    default_message = "A business rule forbids this."
