"""A CloudBlue Connect webhook handler's first step, from CloudBlue's document (seed 002):
"Validates the received JWT by calculating the HS256 signature and compares it with the signature
inside the JWT", using the shared JWT secret, with PyJWT."""

import jwt


class MissingBearer(Exception):
    pass


def receive(body: bytes, headers: dict, secret: str):
    authorization = headers.get("authorization", "")
    if not authorization.startswith("Bearer "):
        raise MissingBearer("no Authorization: Bearer <JWT>")
    token = authorization[len("Bearer "):]
    # Checks the signature and `exp`; raises jwt.InvalidTokenError subclasses otherwise.
    return jwt.decode(token, secret, algorithms=["HS256"])
