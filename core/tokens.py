"""API token format: ``cpn_<prefix>_<secret>``. The prefix finds the row; only a SHA-256 of the whole token is kept.

Tokens carry 256 bits of CSPRNG entropy, so a fast hash is enough (no password-style stretching needed).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

TOKEN_SCHEME = "cpn"
PREFIX_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_token() -> tuple[str, str, str]:
    """Return (token, prefix, hash)."""
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(12))
    token = f"{TOKEN_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return token, prefix, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> str | None:
    """The prefix of a well-formed token, or None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_SCHEME or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


# Verified API clients are kept per process for a few seconds (core.api.authentication; a query per request
# otherwise). Revoking or rotating drops the entry in the process that did it (``forget_client``, called by the
# services); other processes notice within COUPON_TOKEN_CACHE_SECONDS. An entry for a previous token (rotation grace)
# never outlives that token's end of validity.
verified_clients: dict[str, tuple[Any, str, float]] = {}


def forget_client(key_prefix: str | None) -> None:
    if key_prefix:
        verified_clients.pop(key_prefix, None)
