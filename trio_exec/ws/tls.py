"""TLS on the daemon's own port (`--listen wss://…` with `--tls-cert` and `--tls-key`).

Rules:
- The certificate file is PEM: the server's certificate first, then any intermediates (the
  chain is sent as given); the key file is its PEM private key, unencrypted. Both are loaded
  into a fresh server context (TLS 1.2 or newer, Python's secure defaults).
- `reload()` (SIGHUP) builds a new context from the same paths and swaps it in only when it
  loads: new connections get the new certificate, connections already open keep the context
  they were accepted with, so no session is dropped; a file that does not load leaves the
  current certificate serving and raises `TLSSettingError`.
- The handshake is bounded (`HANDSHAKE_TIMEOUT`) and its failure (a plain-HTTP client on the TLS
  port, a client that does not trust the certificate, a peer that goes away) is one INFO line
  and a closed socket, never a traceback.
- `/readyz` and the WebSocket share the port: TLS wraps the stream before the front door reads
  the request head.
"""

from __future__ import annotations

import hashlib
import logging
import ssl

import attrs
import trio

log = logging.getLogger(__name__)

#: Seconds a peer gets to complete the TLS handshake.
HANDSHAKE_TIMEOUT = 10.0


class TLSSettingError(ValueError):
    """A certificate or key that cannot be used; `str(err)` names the setting and the cause."""


def load_server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context serving the PEM chain in `cert_file` with the key in `key_file`."""
    for setting, path in (("--tls-cert", cert_file), ("--tls-key", key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:  # OpenSSL's own error would not say which file
            raise TLSSettingError(f"cannot read {setting}: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        raise TLSSettingError(
            f"cannot load --tls-cert/--tls-key (a PEM certificate chain and its unencrypted "
            f"PEM key): {reason}"
        ) from None
    return context


def _no_password() -> str:
    raise TLSSettingError("--tls-key is encrypted; give an unencrypted PEM key")


def leaf_fingerprint(cert_file: str) -> str:
    """The SHA-256 of the first certificate in `cert_file` (hex, as `openssl x509
    -fingerprint -sha256` prints it without colons), or "?" when it cannot be read."""
    try:
        with open(cert_file, encoding="ascii") as handle:
            pem = handle.read()
        end = pem.index(ssl.PEM_FOOTER) + len(ssl.PEM_FOOTER)
        der = ssl.PEM_cert_to_DER_cert(pem[pem.index(ssl.PEM_HEADER) : end])
    except (OSError, ValueError):
        return "?"
    return hashlib.sha256(der).hexdigest()


@attrs.define(eq=False)
class ServerTLS:
    """The certificate the daemon serves now.

    Invariant: `_context` holds the chain and key last loaded successfully from `cert_file` and
    `key_file`; only `reload()` replaces it."""

    cert_file: str
    key_file: str
    _context: ssl.SSLContext = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._context = load_server_context(self.cert_file, self.key_file)

    def reload(self) -> str:
        """Load the files again and serve them to new connections; the new certificate's
        fingerprint. Raises `TLSSettingError` (the current certificate stays)."""
        self._context = load_server_context(self.cert_file, self.key_file)
        return leaf_fingerprint(self.cert_file)

    async def accept(self, stream: trio.abc.Stream, peer: str) -> trio.SSLStream[trio.abc.Stream] | None:
        """`stream` with the handshake done, or None when it failed (logged, see the rules).

        Cancellation: the handshake is abandoned; the caller closes `stream`."""
        secured = trio.SSLStream(stream, self._context, server_side=True)
        with trio.move_on_after(HANDSHAKE_TIMEOUT) as timer:
            try:
                await secured.do_handshake()
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                reason = getattr(cause, "reason", None) or str(cause or "connection closed")
                log.info("TLS handshake with %s failed: %s", peer, reason)
                return None
            return secured
        if timer.cancelled_caught:
            log.info("TLS handshake with %s did not complete within %ss", peer, HANDSHAKE_TIMEOUT)
        return None
