"""Bearer tokens as the collector's config holds them: a fresh token, and the SHA-256 that goes into
``auth.tokens[].sha256``. Standard library only, so ``foothold-audit token`` works without the collector extra."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "fh_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 that goes into ``auth.tokens[].sha256`` (surrounding whitespace is not part of a token)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()
