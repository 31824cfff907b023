"""Bearer tokens: armsim issues unsigned-but-well-formed JWTs from its managed-identity endpoint and
checks the audience and expiry of every token it is sent (not the signature), as Azurite does."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from typing import Any

from armsim.core.errors import Unauthorized

TENANT_ID = "72f988bf-0000-4000-8000-00000000a7e5"
SANDBOX_PRINCIPAL_ID = "5f3c2b1a-0000-4000-8000-0000000a0701"

# Audiences armsim's services accept, by service.
ARM_AUDIENCES = frozenset({"https://management.azure.com", "https://management.core.windows.net"})
EVENTGRID_AUDIENCES = frozenset({"https://eventgrid.azure.net"})
LOGANALYTICS_AUDIENCES = frozenset({"https://api.loganalytics.io"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def identity_ids(identity: dict[str, str] | None) -> tuple[str, str]:
    """(object id, client id) of the identity a token is asked for: the sandbox's system identity by
    default; a user-assigned one named by client_id, principal_id / object_id or mi_res_id gets ids
    of its own, derived from the name (stable across runs)."""
    if not identity:
        return SANDBOX_PRINCIPAL_ID, SANDBOX_PRINCIPAL_ID
    object_id = identity.get("principal_id") or identity.get("object_id")
    client_id = identity.get("client_id")
    seed = ";".join(f"{k}={v.lower()}" for k, v in sorted(identity.items()))
    derived = str(uuid.uuid5(uuid.NAMESPACE_URL, f"armsim-identity:{seed}"))
    return (object_id or derived).lower(), (client_id or derived).lower()


def issue_token(
    resource: str, lifetime_seconds: int = 3600, identity: dict[str, str] | None = None
) -> dict[str, Any]:
    """The managed-identity endpoint's answer for `resource` (App Service 2019-08-01 shape), for the
    sandbox's identity or the user-assigned one `identity` names (client_id, principal_id, ...)."""
    now = int(time.time())
    audience = resource[: -len("/.default")] if resource.endswith("/.default") else resource
    object_id, client_id = identity_ids(identity)
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
        "oid": object_id,
        "sub": object_id,
        "tid": TENANT_ID,
        "appid": client_id,
        "uti": uuid.uuid4().hex,
    }
    header = {"alg": "RS256", "typ": "JWT", "kid": "armsim"}
    token = ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(secrets.token_bytes(32))]
    )
    return {
        "access_token": token,
        "expires_on": str(claims["exp"]),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id,
    }


def make_token(audience: str, expires_at: float, object_id: str = SANDBOX_PRINCIPAL_ID) -> str:
    """A token with a chosen audience, expiry and principal (for tests of the checks below)."""
    claims = {"aud": audience, "exp": int(expires_at), "tid": TENANT_ID, "oid": object_id}
    return ".".join(
        [_b64(b'{"alg":"RS256","typ":"JWT"}'), _b64(json.dumps(claims).encode()), _b64(b"signature")]
    )


def _challenge(description: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
        f'error_description="{description}"'
    }


def check_bearer(authorization: str | None, audiences: frozenset[str]) -> dict[str, Any]:
    """The token's claims, or the 401 ARM gives for a missing, malformed, expired or misdirected token."""
    if not authorization:
        raise Unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            headers=_challenge("The authentication failed because of missing 'Authorization' header."),
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            headers=_challenge("The authentication failed because of an invalid 'Authorization' header."),
        )
    parts = token.strip().split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        if not isinstance(claims, dict):
            raise ValueError("claims are not an object")
    except ValueError:
        raise Unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            headers=_challenge("The access token is invalid."),
        ) from None
    exp = claims.get("exp")
    now = time.time()
    if not isinstance(exp, int | float) or exp <= now:
        raise Unauthorized(
            "ExpiredAuthenticationToken",
            f"The access token expiry UTC time '{_us_time(exp)}' is earlier than current UTC time '{_us_time(now)}'.",
            headers=_challenge("The access token has expired."),
        )
    audience = str(claims.get("aud", "")).rstrip("/")
    if audience not in audiences:
        raise Unauthorized(
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. "
            "It should exactly match with one of the allowed audiences "
            + ",".join(f"'{a}/','{a}'" for a in sorted(audiences))
            + ".",
            headers=_challenge("The access token has been obtained for a wrong audience."),
        )
    return claims


def _us_time(ts: object) -> str:
    """ARM's time format in token errors: 3/21/2023 12:44:36 PM."""
    import datetime as dt

    if not isinstance(ts, int | float):
        return "unknown"
    value = dt.datetime.fromtimestamp(ts, dt.UTC)
    return f"{value.month}/{value.day}/{value.year} {value.strftime('%I:%M:%S %p').lstrip('0')}"
