"""Webhook signatures: plain functions over the raw body bytes, the headers' values, a key and ``now``.

Pure (``cryptography`` and the standard library only, no web framework), so the simulator signs with
the same code that ingest checks with. Every check raises ``SignatureError`` with the reason; a
missing signature is flagged ``missing`` (HTTP 401), anything else is a bad signature (HTTP 403).

- SendGrid signed Event Webhook (and Inbound Parse security policies): ECDSA P-256 / SHA-256 over the
  ``X-Twilio-Email-Event-Webhook-Timestamp`` value followed by the raw body, DER signature in base64 in
  ``X-Twilio-Email-Event-Webhook-Signature``, public key base64 DER SubjectPublicKeyInfo.
- Twilio ``X-Twilio-Signature``: base64 HMAC-SHA1 (auth token) over the full URL followed by the sorted
  form parameters; JSON bodies are bound by ``bodySHA256`` (hex SHA-256 of the body) in the URL instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
BODY_SHA256_PARAM = "bodySHA256"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SignatureError(Exception):
    """The request is not provably from the provider. ``missing``: no signature was sent at all."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


# --------------------------------------------------------------------------- SendGrid (ECDSA)


def load_public_key(b64_der: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from base64 DER SubjectPublicKeyInfo (what SendGrid shows); ValueError if not."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(b64_der.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not a base64 DER SubjectPublicKeyInfo public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the public key must be an ECDSA P-256 (secp256r1) key")
    return key


def public_key_b64(key: ec.EllipticCurvePublicKey) -> str:
    """The base64 DER SubjectPublicKeyInfo form of ``key`` (the format ``load_public_key`` reads)."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sendgrid_hasher(timestamp: str) -> hashlib._Hash:
    """SHA-256 primed with the timestamp; feed it the body as it streams in (Inbound Parse)."""
    return hashlib.sha256(timestamp.encode())


def sign_sendgrid(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """The header value SendGrid would send for ``body`` at ``timestamp`` (for tests and the simulator)."""
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def check_sendgrid_headers(
    signature_b64: str | None, timestamp: str | None, now: float, tolerance_s: float
) -> bytes:
    """Everything that can be checked before the body: presence, encoding and replay window.
    Returns the decoded DER signature."""
    if not signature_b64:
        raise SignatureError(f"missing {SENDGRID_SIGNATURE_HEADER} header", missing=True)
    if not timestamp:
        raise SignatureError(f"missing {SENDGRID_TIMESTAMP_HEADER} header", missing=True)
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(f"{SENDGRID_TIMESTAMP_HEADER} must be whole Unix seconds")
    skew = now - int(timestamp)
    if abs(skew) > tolerance_s:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureError(f"timestamp is {abs(skew):.0f} s {direction}, outside ±{tolerance_s:.0f} s")
    try:
        return base64.b64decode(signature_b64.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise SignatureError(f"{SENDGRID_SIGNATURE_HEADER} is not valid base64") from None


def verify_sendgrid_digest(
    digest: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    public_key: ec.EllipticCurvePublicKey,
    now: float,
    tolerance_s: float,
) -> None:
    """Like ``verify_sendgrid`` with the SHA-256 of timestamp + body already computed (streaming)."""
    signature = check_sendgrid_headers(signature_b64, timestamp, now, tolerance_s)
    try:
        public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise SignatureError("signature does not match the body and timestamp") from None


def verify_sendgrid(
    body: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    public_key: ec.EllipticCurvePublicKey,
    now: float,
    tolerance_s: float,
) -> None:
    """Raise SignatureError unless ``signature_b64`` signs ``timestamp`` + ``body`` (bytes as received)
    and ``timestamp`` is within ``tolerance_s`` of ``now`` (Unix seconds)."""
    hasher = sendgrid_hasher(timestamp or "")
    hasher.update(body)
    verify_sendgrid_digest(hasher.digest(), signature_b64, timestamp, public_key, now, tolerance_s)


# --------------------------------------------------------------------------- Twilio (HMAC-SHA1)

Params = Mapping[str, Sequence[str]]


def with_body_sha256(url: str, body: bytes) -> str:
    """``url`` with the ``bodySHA256`` query parameter Twilio adds for JSON bodies."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{url}{'&' if urlsplit(url).query else '?'}{BODY_SHA256_PARAM}={digest}"


def sign_twilio(url: str, auth_token: str, params: Params | None = None) -> str:
    """The ``X-Twilio-Signature`` value for ``url`` (and form ``params``, names and values sorted)."""
    given = params or {}
    data = url + "".join(name + value for name in sorted(given) for value in sorted(given[name]))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()  # SHA-1: Twilio's choice
    return base64.b64encode(mac).decode()


def _port_variants(url: str) -> list[str]:
    """The URL as given, plus the same URL with the scheme's default port added or removed: Twilio may
    have signed either form."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    variants = [url]
    if default is None or parts.hostname is None:
        return variants
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    try:
        port = parts.port
    except ValueError:
        return variants
    if port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    elif port == default:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}")))
    return variants


def _query_values(url: str, name: str) -> list[str]:
    return [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k == name]


def _is_form(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == FORM_CONTENT_TYPE


def check_twilio_headers(url: str, content_type: str, signature: str | None) -> str:
    """Everything that can be checked before the body: the signature is there and, for a non-form
    body, the URL carries the one ``bodySHA256`` it is bound by. Returns the signature."""
    if not signature:
        raise SignatureError(f"missing {TWILIO_SIGNATURE_HEADER} header", missing=True)
    if not _is_form(content_type) and len(_query_values(url, BODY_SHA256_PARAM)) != 1:
        raise SignatureError(f"the URL must carry exactly one {BODY_SHA256_PARAM} for a non-form body")
    return signature


def verify_twilio(
    url: str,
    body: bytes,
    content_type: str,
    signature: str | None,
    auth_token: str,
    params: Params | None = None,
) -> None:
    """Raise SignatureError unless ``signature`` is Twilio's for this request.

    ``url`` is the full URL Twilio requested (scheme, host, path, query). Form bodies
    (``application/x-www-form-urlencoded``) sign the URL followed by ``params``; any other body (JSON)
    signs the URL alone, which must carry ``bodySHA256`` matching the raw body: it is always checked.
    """
    signature = check_twilio_headers(url, content_type, signature)
    if _is_form(content_type):
        signed_params = params or {}
    else:
        signed_params = {}
        claimed = _query_values(url, BODY_SHA256_PARAM)
        actual = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(claimed[0].lower().encode(), actual.encode()):
            raise SignatureError(f"{BODY_SHA256_PARAM} does not match the body")
    given = signature.strip().encode()
    if not any(
        hmac.compare_digest(sign_twilio(u, auth_token, signed_params).encode(), given)
        for u in _port_variants(url)
    ):
        raise SignatureError("signature does not match the URL and body")


# --------------------------------------------------------------------------- request verifiers


@dataclass(frozen=True, slots=True)
class SendGridVerifier:
    """Checks SendGrid's signature headers of a request (``headers``: a case-insensitive mapping)."""

    public_key: ec.EllipticCurvePublicKey
    tolerance_s: float

    def check_headers(self, headers: Mapping[str, str], now: float) -> None:
        """What ``verify`` checks before the body: presence, encoding, the timestamp's freshness."""
        check_sendgrid_headers(
            headers.get(SENDGRID_SIGNATURE_HEADER),
            headers.get(SENDGRID_TIMESTAMP_HEADER),
            now,
            self.tolerance_s,
        )

    def hasher(self, headers: Mapping[str, str]) -> hashlib._Hash:
        return sendgrid_hasher(headers.get(SENDGRID_TIMESTAMP_HEADER) or "")

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        verify_sendgrid(
            body,
            headers.get(SENDGRID_SIGNATURE_HEADER),
            headers.get(SENDGRID_TIMESTAMP_HEADER),
            self.public_key,
            now,
            self.tolerance_s,
        )

    def verify_digest(self, headers: Mapping[str, str], digest: bytes, now: float) -> None:
        verify_sendgrid_digest(
            digest,
            headers.get(SENDGRID_SIGNATURE_HEADER),
            headers.get(SENDGRID_TIMESTAMP_HEADER),
            self.public_key,
            now,
            self.tolerance_s,
        )


@dataclass(frozen=True, slots=True)
class TwilioVerifier:
    """Checks ``X-Twilio-Signature``. ``public_base_url`` replaces scheme, host and port (and adds any
    path prefix) of the URL the app sees: behind a proxy, Twilio signed the public URL, not ours."""

    auth_token: str = field(repr=False)
    public_base_url: str | None = None

    def signed_url(self, seen_url: str) -> str:
        if not self.public_base_url:
            return seen_url
        parts = urlsplit(seen_url)
        return self.public_base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    def check_headers(self, seen_url: str, headers: Mapping[str, str]) -> None:
        """What ``verify`` checks before the body (``check_twilio_headers``)."""
        check_twilio_headers(
            self.signed_url(seen_url), headers.get("content-type", ""), headers.get(TWILIO_SIGNATURE_HEADER)
        )

    def verify(
        self,
        seen_url: str,
        headers: Mapping[str, str],
        body: bytes,
        params: Iterable[tuple[str, str]] = (),
    ) -> None:
        grouped: dict[str, list[str]] = {}
        for name, value in params:
            grouped.setdefault(name, []).append(value)
        verify_twilio(
            self.signed_url(seen_url),
            body,
            headers.get("content-type", ""),
            headers.get(TWILIO_SIGNATURE_HEADER),
            self.auth_token,
            grouped,
        )
