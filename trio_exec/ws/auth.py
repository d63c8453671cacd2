"""Bearer-token auth of the WebSocket upgrade.

Rules:
- The daemon holds only the token's SHA-256, never the token: a token given in a file is hashed
  as it is read, and `--auth-token-sha256` gives the digest itself, so the secret need not be
  stored on the serving machine at all. An offered token is hashed and the two digests compared
  in constant time.
- The `Authorization` header is read as codex's own exec-server (0.171) reads it, probed with
  raw sockets: only the first such header counts; its scheme is the text before the first
  space, matched case-insensitively with `Bearer` (RFC 9110); the token is the rest with the
  spaces and tabs around it removed. A tab instead of that first space, no separator at all,
  another scheme, or an empty token is refused.
- A token file holds one token of printable ASCII without whitespace inside; whitespace around
  it (the usual trailing newline) is ignored. `--auth-token-sha256` is 64 hex digits, any case.
- Nothing here puts a token or its digest into a log line or an error message: errors name the
  setting and the cause, never the content.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import attrs

log = logging.getLogger(__name__)

#: What a token file may hold between its surrounding whitespace.
TOKEN_RULE = "one token of printable ASCII, no spaces"


class AuthSettingError(ValueError):
    """An unusable token setting; `str(err)` names the setting (never the token)."""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def offered_token(header: str | None) -> str | None:
    """The token an `Authorization` header value carries under the Bearer scheme, or None."""
    if header is None:
        return None
    scheme, space, rest = header.partition(" ")
    if not space or scheme.lower() != "bearer":
        return None
    token = rest.strip(" \t")
    return token or None


def read_token_file(path: str, *, setting: str = "--auth-token-file") -> bytes:
    """The digest of the token in `path`. Raises `AuthSettingError` naming `setting`."""
    return token_digest(read_token_text(path, setting=setting))


def read_token_text(path: str, *, setting: str = "--auth-token-file") -> str:
    """The token in `path` itself (for a caller that must recognise it, then forget it).
    Raises `AuthSettingError` naming `setting`."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise AuthSettingError(f"cannot read {setting}: {reason}") from None
    if not token:
        raise AuthSettingError(f"{setting} is empty")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise AuthSettingError(f"{setting} must hold {TOKEN_RULE}")
    return token


def parse_token_sha256(text: str, *, setting: str = "--auth-token-sha256") -> bytes:
    """The digest `text` spells in hex. Raises `AuthSettingError` naming `setting`."""
    cleaned = text.strip()
    if len(cleaned) != 64:
        raise AuthSettingError(f"{setting} must be the 64 hex digits of a SHA-256 digest")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise AuthSettingError(
            f"{setting} must be the 64 hex digits of a SHA-256 digest"
        ) from None


@attrs.define(eq=False)
class BearerAuth:
    """The token every upgrade must carry.

    Invariant: `_digest` is the SHA-256 of the one token accepted now; only `reload()` changes
    it (re-reading `token_file`, when the token came from one)."""

    _digest: bytes
    token_file: str | None = None

    def accepts(self, authorization: str | None) -> bool:
        token = offered_token(authorization)
        offered = token_digest(token) if token is not None else b""
        return hmac.compare_digest(offered, self._digest)

    def reload(self) -> bool:
        """Re-read `token_file`; whether the token changed. Raises `AuthSettingError` (the
        current token stays) when the file cannot be used."""
        if self.token_file is None:
            return False
        digest = read_token_file(self.token_file)
        changed = not hmac.compare_digest(digest, self._digest)
        self._digest = digest
        return changed
