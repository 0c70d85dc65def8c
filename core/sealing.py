"""Secrets kept sealed in the database (R-DRAW-2: a draw's seed stays secret until the reveal).

A sealed value is Fernet-encrypted (AES-128-CBC + HMAC-SHA256, the ``cryptography`` package) with a key that lives in
the settings, never in the database: someone who can read the tables — a console user, a DBA, a backup — sees only
the ciphertext and, for a draw, the published hash. ``COUPON_SEAL_KEYS`` lists Fernet keys, the first one sealing;
the others still open older values (rotation). Without it, one key is derived from ``SECRET_KEY``.
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SealBroken(Exception):
    """The value cannot be opened with any configured key (a rotated-away key, or tampering)."""


def derived_key(secret_key: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(b"coupons.sealing:" + secret_key.encode()).digest())


def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "COUPON_SEAL_KEYS", None) or []) or [derived_key(settings.SECRET_KEY)]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured("COUPON_SEAL_KEYS: each key must be 32 url-safe base64-encoded bytes "
                                   "(python -c 'from cryptography.fernet import Fernet; "
                                   "print(Fernet.generate_key().decode())').") from exc


def seal(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def unseal(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SealBroken("the sealed value cannot be opened with the configured COUPON_SEAL_KEYS") from exc
