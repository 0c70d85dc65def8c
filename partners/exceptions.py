"""The partner-upload error catalogue: each refusal has a stable code and HTTP status (API.md)."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.exceptions import BusinessRuleViolation, InvalidInput, InvalidState, NotFound


class PartnerNotFound(NotFound):
    code = "partner_not_found"
    default_message = _("No such partner.")


class UploadNotFound(NotFound):
    default_message = _("No such partner upload.")


class UploadTooLarge(InvalidInput):
    code = "file_too_large"
    default_message = _("The file is too large.")


class UploadBusy(InvalidState):
    code = "upload_not_done"
    default_message = _("Only a finished upload can be reprocessed.")


class BadCorrection(InvalidInput):
    code = "invalid_correction"
    default_message = _("A corrected row does not name a failed line of this upload.")


class DistributionNotFound(NotFound):
    default_message = _("No such distribution.")


class NotEnoughCodes(BusinessRuleViolation):
    code = "not_enough_codes"
    default_message = _("There are not enough available codes to distribute.")
