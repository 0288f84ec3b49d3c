"""Checks of the HTTP addresses an operator configures (not of user input: that is
`shared/netguard.py`'s job, at connect time)."""

from __future__ import annotations

from urllib.parse import urlsplit


def s3_endpoint(value: str) -> str:
    """`value` as an S3 endpoint the minio client takes: http(s), a host, maybe a port, and
    nothing else (it signs for exactly that host and refuses a path); without a trailing
    slash. ValueError saying what is wrong otherwise."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - reading it is the check (out of range, not a number)
    except ValueError as exc:
        raise ValueError(f"has a bad port: {exc}") from None
    if not parts.hostname:
        raise ValueError("names no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials (they are CONVEYOR_S3_ACCESS_KEY and "
                         "CONVEYOR_S3_SECRET_KEY)")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError("must be scheme, host and port only, without a path or query "
                         "(buckets are addressed below the root)")
    return value.rstrip("/")
