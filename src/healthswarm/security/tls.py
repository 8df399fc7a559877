"""ssl.SSLContext objects for the API, TAXII and node traffic, built from `[tls]` settings.

One policy for every listener and client: TLS 1.2 at least, forward-secret AEAD suites only on 1.2
(1.3's suites are all of that kind), no compression or renegotiation, peers verified against the
configured CA. A missing or unreadable file is a ConfigError naming it, so the CLI prints one line.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from healthswarm.config import TlsSettings
from healthswarm.errors import ConfigError

# ECDHE key exchange with AES-GCM or ChaCha20-Poly1305: what TLS 1.3 keeps, expressed for 1.2.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!SHA1"
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _readable(path: str, what: str) -> str:
    file = Path(path)
    try:
        with file.open("rb") as handle:
            head = handle.read(64 * 1024)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the TLS {what}: {exc.strerror}") from exc
    if b"-----BEGIN " not in head:
        raise ConfigError(f"{path}: the TLS {what} is not a PEM file (expected -----BEGIN ...)")
    return str(file)


def _harden(ctx: ssl.SSLContext, settings: TlsSettings) -> ssl.SSLContext:
    if settings.min_version not in VERSIONS:
        raise ConfigError(f"tls.min_version {settings.min_version!r}: expected one of {', '.join(VERSIONS)}")
    ctx.minimum_version = VERSIONS[settings.min_version]
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return ctx


def _load_identity(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    if not (settings.cert and settings.key):
        missing = "tls.key" if settings.cert else "tls.cert"
        raise ConfigError(f"{missing}: missing (TLS needs both a certificate and its private key)")
    cert, key = _readable(settings.cert, "certificate"), _readable(settings.key, "private key")
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(f"{cert}: certificate and private key {key} do not load together ({exc.reason})") from exc


def _load_ca(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    if not settings.ca:
        ctx.load_default_certs()
        return
    ca = _readable(settings.ca, "CA")
    try:
        ctx.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigError(f"{ca}: not a usable CA certificate ({exc.reason})") from exc


def server_context(settings: TlsSettings, require_client_cert: bool = False) -> ssl.SSLContext:
    """A listener's context: our certificate; with `require_client_cert`, peers must present one from the CA."""
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), settings)
    _load_identity(ctx, settings)
    if require_client_cert:
        if not settings.ca:
            raise ConfigError("tls.ca: missing (mutual TLS verifies peers against the consortium CA)")
        _load_ca(ctx, settings)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """A client's context: verify the server (hostname and chain to the CA); present our certificate if we have one."""
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), settings)  # CERT_REQUIRED and check_hostname
    _load_ca(ctx, settings)
    if settings.cert or settings.key:
        _load_identity(ctx, settings)
    return ctx


def uvicorn_options(settings: TlsSettings) -> dict[str, Any]:
    """uvicorn.run keyword arguments for HTTPS with our context (built now, so a bad path fails before binding)."""
    if not settings.enabled:
        return {}
    context = server_context(settings)
    return {"ssl_context_factory": lambda _config, _default: context}
