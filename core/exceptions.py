"""Domain errors. Each has a stable snake_case ``code``, an HTTP status and a human message.

The API turns them into ``{"code", "message", "details"}`` (API.md); the console shows the message.
Services raise them; they never import the API layer.
"""
from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code: str = "error"
    status: int = 400
    # Messages are translated (lazily: shown in the language active when rendered); ``code`` never is.
    default_message: Any = _("The request could not be processed.")
    # True for a refusal that says "not now" rather than "no" (a dependency not answering): jobs retry it.
    transient: bool = False

    def __init__(self, message: Any = None, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        # Rendered now, in the language active where the error is raised (the request's): a plain str from here on.
        self.message = str(message or self.default_message)
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
    default_message = _("The input is not valid.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    default_message = _("You are not allowed to do this.")


class InvalidState(DomainError):
    code = "invalid_state"
    status = 409
    default_message = _("The object is not in a state that allows this.")


class BusinessRuleViolation(DomainError):
    code = "rule_violation"
    status = 422
    default_message = _("A business rule forbids this.")


def message_for_code(code: str) -> str:
    """The catalogue's message for an error ``code``, in the active language — for codes stored without their text
    (a draw prize's grant error, a grant member's failure): the code stays stable, the reader gets a sentence. The
    code itself when no error class has it."""
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop(0)
        if cls.__dict__.get("code") == code:
            return str(cls.default_message)
        pending.extend(cls.__subclasses__())
    return code


class MemberBusy(DomainError):
    code = "request_in_progress"
    status = 409
    default_message = _("Another request for this member is being processed; retry shortly.")
