"""A GitHub-style receiver: GitHub's documented `verify_signature` ("Validating webhook
deliveries"), with its web framework's HTTPException swapped for a plain exception."""

import hashlib
import hmac
import json


class Forbidden(Exception):
    pass


def verify_signature(payload_body, secret_token, signature_header):
    """Verify that the payload was sent from GitHub by validating SHA256.

    Raise and return 403 if not authorized.

    Args:
        payload_body: original request body to verify (request.body())
        secret_token: GitHub app webhook token (WEBHOOK_SECRET)
        signature_header: header received from GitHub (x-hub-signature-256)
    """
    if not signature_header:
        raise Forbidden("x-hub-signature-256 header is missing!")
    hash_object = hmac.new(secret_token.encode("utf-8"), msg=payload_body, digestmod=hashlib.sha256)
    expected_signature = "sha256=" + hash_object.hexdigest()
    if not hmac.compare_digest(expected_signature, signature_header):
        raise Forbidden("Request signatures didn't match!")


def receive(body: bytes, headers: dict, secret: str):
    verify_signature(body, secret, headers.get("x-hub-signature-256"))
    return json.loads(body)
