"""Checks a presigned URL's signature version 4 the way a real S3 server does, with
botocore's signer (not minio's, which made it): the moto stand-in accepts any signature,
and MinIO refuses a URL whose host is not the one it was signed for."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shared.settings import Settings


def signed_for_its_host(url: str, settings: Settings, method: str = "GET") -> bool:
    """Whether `url`'s signature is right for the host (and path and query) it names now,
    with the settings' credentials and region."""
    parts = urlsplit(url)
    fields = dict(parse_qsl(parts.query, keep_blank_values=True))
    # Signed: every parameter but the signature, as sent (percent-encoded).
    unsigned = "&".join(pair for pair in parts.query.split("&")
                        if not pair.startswith("X-Amz-Signature="))
    request = AWSRequest(method=method, url=parts._replace(query=unsigned).geturl())
    request.context["timestamp"] = fields["X-Amz-Date"]
    access_key, _, region, *_ = unquote(fields["X-Amz-Credential"]).split("/")
    if access_key != settings.s3_access_key.get_secret_value() or region != settings.s3_region:
        return False
    auth = S3SigV4QueryAuth(Credentials(access_key, settings.s3_secret_key.get_secret_value()),
                            "s3", region, expires=int(fields["X-Amz-Expires"]))
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                              request)
    return hmac.compare_digest(str(expected), fields.get("X-Amz-Signature", ""))
