"""The signature functions on their own: bytes, header values, key, now."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.signatures import (
    SignatureError,
    TwilioVerifier,
    load_public_key,
    public_key_b64,
    sendgrid_hasher,
    sign_sendgrid,
    sign_twilio,
    verify_sendgrid,
    verify_sendgrid_digest,
    verify_twilio,
    with_body_sha256,
)

NOW = 1_763_900_000.0
TS = str(int(NOW))
# On the wire each event is followed by \r\n; re-encoding the JSON would change these bytes.
BODY = b'[{"email":"ana@example.com","timestamp":1763900000,"event":"processed"}\r\n]'
TOKEN = "12345678901234567890123456789012"
URL = "https://hooks.example.com/webhooks/twilio/events"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def verify(key: ec.EllipticCurvePrivateKey, body: bytes, signature: str | None, ts: str | None) -> None:
    verify_sendgrid(body, signature, ts, key.public_key(), NOW, 300)


def reason(call: object) -> SignatureError:
    assert callable(call)
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------------- SendGrid


def test_sendgrid_valid_signature_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    verify(key, BODY, sign_sendgrid(key, TS, BODY), TS)
    verify(key, BODY, sign_sendgrid(key, str(int(NOW) - 299), BODY), str(int(NOW) - 299))


def test_sendgrid_public_key_round_trips_through_its_text_form(key: ec.EllipticCurvePrivateKey) -> None:
    loaded = load_public_key(public_key_b64(key.public_key()))
    verify_sendgrid(BODY, sign_sendgrid(key, TS, BODY), TS, loaded, NOW, 300)


def test_sendgrid_streamed_digest_equals_the_whole_body(key: ec.EllipticCurvePrivateKey) -> None:
    hasher = sendgrid_hasher(TS)
    for start in range(0, len(BODY), 7):
        hasher.update(BODY[start : start + 7])
    verify_sendgrid_digest(hasher.digest(), sign_sendgrid(key, TS, BODY), TS, key.public_key(), NOW, 300)


def test_sendgrid_forged_signatures_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    signature = sign_sendgrid(key, TS, BODY)
    other = ec.generate_private_key(ec.SECP256R1())
    reencoded = orjson.dumps(orjson.loads(BODY))  # same JSON, other bytes
    cases = [
        (BODY + b" ", signature, TS),  # body changed
        (reencoded, signature, TS),
        (BODY, signature, str(int(NOW) - 1)),  # timestamp changed
        (BODY, sign_sendgrid(other, TS, BODY), TS),  # another key
    ]
    for body, sig, ts in cases:
        error = reason(lambda body=body, sig=sig, ts=ts: verify(key, body, sig, ts))
        assert not error.missing and error.reason == "signature does not match the body and timestamp"


def test_sendgrid_stale_and_future_timestamps_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    old, future = str(int(NOW) - 301), str(int(NOW) + 301)
    stale = reason(lambda: verify(key, BODY, sign_sendgrid(key, old, BODY), old))
    assert "301 s old, outside ±300 s" in stale.reason and not stale.missing
    ahead = reason(lambda: verify(key, BODY, sign_sendgrid(key, future, BODY), future))
    assert "in the future" in ahead.reason


def test_sendgrid_missing_and_malformed_headers(key: ec.EllipticCurvePrivateKey) -> None:
    signature = sign_sendgrid(key, TS, BODY)
    no_signature = reason(lambda: verify(key, BODY, None, TS))
    assert no_signature.missing and "X-Twilio-Email-Event-Webhook-Signature" in no_signature.reason
    no_timestamp = reason(lambda: verify(key, BODY, signature, ""))
    assert no_timestamp.missing and "Timestamp" in no_timestamp.reason
    for ts in ("yesterday", "1.5e9", "-1", "\uff11\uff17\uff16\uff13"):  # the last: full-width digits
        assert "whole Unix seconds" in reason(lambda ts=ts: verify(key, BODY, signature, ts)).reason
    assert "not valid base64" in reason(lambda: verify(key, BODY, "%%%not base64", TS)).reason
    garbage = base64.b64encode(b"not DER").decode()
    assert "does not match" in reason(lambda: verify(key, BODY, garbage, TS)).reason


def test_public_key_loading_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="base64 DER"):
        load_public_key("not a key")
    rsa_like = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
    with pytest.raises(ValueError, match="base64 DER"):
        load_public_key(rsa_like)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(public_key_b64(p384))


# --------------------------------------------------------------------------- Twilio


def test_twilio_json_body_signed_over_url_with_body_sha256() -> None:
    url = with_body_sha256(URL, BODY)
    assert url == f"{URL}?bodySHA256={hashlib.sha256(BODY).hexdigest()}"
    verify_twilio(url, BODY, "application/json", sign_twilio(url, TOKEN), TOKEN)


def test_twilio_signature_accepts_the_url_with_or_without_default_port() -> None:
    url = with_body_sha256(URL, BODY)
    with_port = url.replace("hooks.example.com", "hooks.example.com:443")
    verify_twilio(with_port, BODY, "application/json", sign_twilio(url, TOKEN), TOKEN)
    verify_twilio(url, BODY, "application/json", sign_twilio(with_port, TOKEN), TOKEN)
    other_port = url.replace("hooks.example.com", "hooks.example.com:8443")
    assert (
        "does not match"
        in reason(
            lambda: verify_twilio(other_port, BODY, "application/json", sign_twilio(url, TOKEN), TOKEN)
        ).reason
    )


def test_twilio_form_body_signs_sorted_parameters() -> None:
    params = {"To": ["+15550001"], "From": ["+15550002"], "Tag": ["b", "a"]}
    # Documented algorithm: URL, then each name and value, names sorted, a name's values sorted.
    data = URL + "From+15550002TagaTagbTo+15550001"
    expected = base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()
    assert sign_twilio(URL, TOKEN, params) == expected
    form = "application/x-www-form-urlencoded; charset=utf-8"
    verify_twilio(URL, b"To=...", form, expected, TOKEN, params)
    changed = {**params, "To": ["+15550009"]}
    assert "does not match" in reason(lambda: verify_twilio(URL, b"", form, expected, TOKEN, changed)).reason


def test_twilio_body_hash_is_never_skipped() -> None:
    url = with_body_sha256(URL, BODY)
    signature = sign_twilio(url, TOKEN)
    tampered = reason(lambda: verify_twilio(url, BODY + b" ", "application/json", signature, TOKEN))
    assert tampered.reason == "bodySHA256 does not match the body"
    bare = reason(lambda: verify_twilio(URL, BODY, "application/json", sign_twilio(URL, TOKEN), TOKEN))
    assert "exactly one bodySHA256" in bare.reason
    twice = f"{url}&bodySHA256={hashlib.sha256(BODY).hexdigest()}"
    assert (
        "exactly one"
        in reason(
            lambda: verify_twilio(twice, BODY, "application/json", sign_twilio(twice, TOKEN), TOKEN)
        ).reason
    )


def test_twilio_missing_and_forged_signatures() -> None:
    url = with_body_sha256(URL, BODY)
    missing = reason(lambda: verify_twilio(url, BODY, "application/json", None, TOKEN))
    assert missing.missing and "X-Twilio-Signature" in missing.reason
    forged = reason(lambda: verify_twilio(url, BODY, "application/json", sign_twilio(url, "x" * 32), TOKEN))
    assert not forged.missing and forged.reason == "signature does not match the URL and body"


def test_twilio_verifier_uses_the_public_base_url_behind_a_proxy() -> None:
    public = with_body_sha256(URL, BODY)
    seen = public.replace("https://hooks.example.com", "http://10.0.0.5:8080")
    headers = {"content-type": "application/json", "X-Twilio-Signature": sign_twilio(public, TOKEN)}
    TwilioVerifier(TOKEN, "https://hooks.example.com/").verify(seen, headers, BODY)
    with pytest.raises(SignatureError):
        TwilioVerifier(TOKEN).verify(seen, headers, BODY)
