"""A Standard Webhooks receiver, as the `standardwebhooks` package's README shows it."""

from standardwebhooks import Webhook


def receive(body: bytes, headers: dict, secret: str):
    # Raises WebhookVerificationError on a missing header, a stale timestamp or a bad signature;
    # returns the parsed JSON payload otherwise.
    return Webhook(secret).verify(body, headers)
