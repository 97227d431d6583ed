"""What a refused connection means for security: the TLS error or the HTTP status under a
failed connect, classified as a :class:`~simulator.machines.charger.ConnectFailure` (the
machine raises the matching security event) and told in one line.

OpenSSL names its reasons (``ssl.SSLError.reason``); they fall in four kinds: the server's
certificate is not trusted or names another host (``ssl.SSLCertVerificationError``), no TLS
version in common, no cipher suite in common (a ``handshake failure`` alert usually means
that), or the server refused (or wanted) the charger's client certificate. HTTP 401 and 403
at the handshake refuse the charger's credentials. Anything else is no matter of security.
"""

from __future__ import annotations

import re
import ssl
from typing import Final

from simulator.machines.charger import ConnectFailure

_CREDENTIAL_STATUSES: Final = frozenset({401, 403})
"""HTTP statuses of a handshake that refuse the charger's credentials."""

_TLS_VERSION_REASONS: Final = frozenset({
    "UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE",
    "UNSUPPORTED_SSL_VERSION", "TLSV1_ALERT_INSUFFICIENT_SECURITY",
})
_TLS_CIPHER_REASONS: Final = frozenset({
    "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "NO_SUITABLE_SIGNATURE_ALGORITHM",
})
_CLIENT_CERTIFICATE_REASONS: Final = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_ACCESS_DENIED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_DECRYPT_ERROR",
})
"""OpenSSL's reasons (``ssl.SSLError.reason``) by what they mean for security: no TLS version
in common, no cipher suite in common, the server refused (or wanted) our client certificate.
A ``handshake failure`` alert usually means no suite in common."""
_SSL_NOISE: Final = re.compile(r"^\[[A-Z]+: [A-Z0-9_]+\] | \(_ssl\.c:\d+\)$")
"""The OpenSSL decorations of an ``ssl.SSLError`` message."""


def tls_failure(exc: BaseException) -> tuple[ConnectFailure | None, str] | None:
    """The ``ssl`` error under a connect failure ``exc`` (trio wraps it), classified: what it
    means for security (None: nothing in particular) and one line, ``TLS: <OpenSSL's text>``
    (a certificate check names what failed). None: ``exc`` is not a TLS failure."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ssl.SSLError):
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
            continue
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    if isinstance(seen, ssl.SSLCertVerificationError):
        detail = seen.verify_message or _SSL_NOISE.sub("", str(seen))
        return ConnectFailure.SERVER_CERTIFICATE, f"TLS: certificate verify failed: {detail}"
    reason = seen.reason or ""
    text = "TLS: " + (_SSL_NOISE.sub("", str(seen)) or reason.lower().replace("_", " "))
    if reason in _TLS_VERSION_REASONS:
        return ConnectFailure.TLS_VERSION, text
    if reason in _TLS_CIPHER_REASONS:
        return ConnectFailure.TLS_CIPHER_SUITE, text
    if reason in _CLIENT_CERTIFICATE_REASONS:
        return ConnectFailure.CREDENTIALS_REFUSED, text
    return None, text


def http_failure(status: int) -> ConnectFailure | None:
    """What a handshake answered with HTTP ``status`` means (401 and 403: the charger's
    credentials were refused; None: nothing for security)."""
    return ConnectFailure.CREDENTIALS_REFUSED if status in _CREDENTIAL_STATUSES else None


__all__ = ["http_failure", "tls_failure"]
