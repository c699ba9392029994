"""A signed S3 ``ListBuckets`` (AWS Signature V4) with the standard library only.

The launcher waits on it: an S3 gateway is ready when it answers an authenticated
request, not when its port accepts connections (SeaweedFS opens the port seconds before
its filer can serve). Keeping it dependency-free means the launcher needs no S3 client.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
from datetime import UTC, datetime

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def list_buckets_status(
    host: str, port: int, *, access_key: str, secret_key: str, region: str, timeout: float = 2.0
) -> int | None:
    """The HTTP status of a signed ``GET /`` (ListBuckets), or None when nothing answers."""
    now = datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    host_header = f"{host}:{port}"
    signed_headers = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(
        [
            "GET",
            "/",
            "",
            f"host:{host_header}",
            f"x-amz-content-sha256:{_EMPTY_SHA256}",
            f"x-amz-date:{amz_date}",
            "",
            signed_headers,
            _EMPTY_SHA256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Host": host_header,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": _EMPTY_SHA256,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}",
    }
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
