"""A CloudShare receiver, written from CloudShare's document (seed 000):

"The string in the x-cloudshare-signature header is calculated by the content of the webhook and
the secret key. When the webhook is received, you can calculate it the same way and get the same
header's value, using the HMAC-SHA256 base64 output format. If both strings are the same, it means
that this webhook came from us."

The secret is the account-level one an Account Manager copies from CloudShare (here, from
`GET /v1/account/secret`), used as the string it is.
"""

import base64
import hashlib
import hmac
import json


class SignatureMismatch(Exception):
    pass


def receive(body: bytes, headers: dict, secret: str):
    calculated = base64.b64encode(
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    ).decode("ascii")
    received = headers.get("x-cloudshare-signature", "")
    if not hmac.compare_digest(calculated, received):
        raise SignatureMismatch("x-cloudshare-signature is not the HMAC-SHA256 of the body")
    return json.loads(body)
