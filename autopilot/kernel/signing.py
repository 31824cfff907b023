"""HMAC signatures of backup-now requests and of callbacks: `sha256=` + HMAC-SHA256, keyed with the
shared secret (AUTOPILOT_HMAC_SECRET), over "<timestamp>.<body>"."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping

from autopilot.kernel.problems import Problem

SIGNATURE_WINDOW = dt.timedelta(minutes=5)
_UNAUTHORIZED = "The request is not signed as required"


def mac(secret: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).digest()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`, the documented form (used both ways: requests and callbacks)."""
    return f"sha256={mac(secret, timestamp, body).hex()}"


def _presented_mac(signature: str) -> bytes | None:
    """The MAC's bytes of a presented signature, in hex (documented) or base64 (some tools, e.g.
    ServiceNow, only make that); None when it is neither."""
    value = signature.strip().removeprefix("sha256=")
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == hashlib.sha256().digest_size else None


def check_signature(
    headers: Mapping[str, str], body: bytes, secret: str, now: dt.datetime, first_use: Callable[[str], bool]
) -> None:
    """The request's X-Autopilot-Signature over X-Autopilot-Timestamp + body; a 5-minute window;
    each MAC is accepted once (`first_use` records the MAC's bytes, in hex, whichever encoding was
    sent: a signature re-encoded from hex to base64 is the same signature, and a replay)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-autopilot-timestamp", "")
    signature = lowered.get("x-autopilot-signature", "")
    if not timestamp or not signature:
        raise Problem(
            401,
            "signature-missing",
            _UNAUTHORIZED,
            "Send X-Autopilot-Timestamp (Unix seconds) and X-Autopilot-Signature (sha256=HMAC-SHA256 of '<timestamp>.<body>').",
        )
    try:
        sent = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise Problem(
            401, "signature-invalid", _UNAUTHORIZED, "X-Autopilot-Timestamp must be Unix seconds."
        ) from None
    if abs(now - sent) > SIGNATURE_WINDOW:
        raise Problem(
            401,
            "signature-expired",
            _UNAUTHORIZED,
            "The timestamp is more than 5 minutes away from now; sign the request again.",
        )
    presented = _presented_mac(signature)
    if presented is None or not hmac.compare_digest(presented, mac(secret, timestamp, body)):
        raise Problem(
            401, "signature-invalid", _UNAUTHORIZED, "The signature does not match the body and timestamp."
        )
    if not first_use(presented.hex()):
        raise Problem(
            401,
            "signature-replayed",
            _UNAUTHORIZED,
            "This signed request was already received; sign each request anew.",
        )
