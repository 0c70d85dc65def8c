"""The partner-upload error catalogue: each refusal has a stable code and HTTP status (API.md)."""
from __future__ import annotations

from core.exceptions import InvalidInput, InvalidState, NotFound


class PartnerNotFound(NotFound):
    code = "partner_not_found"
    default_message = "No such partner."


class UploadNotFound(NotFound):
    default_message = "No such partner upload."


class UploadTooLarge(InvalidInput):
    code = "file_too_large"
    default_message = "The file is too large."


class UploadBusy(InvalidState):
    code = "upload_not_done"
    default_message = "Only a finished upload can be reprocessed."


class BadCorrection(InvalidInput):
    code = "invalid_correction"
    default_message = "A corrected row does not name a failed line of this upload."
