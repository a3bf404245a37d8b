"""Hands one request Herald really sent to one of the receivers in this folder.

Usage: receive.py RECEIVER SECRET [--clock-offset SECONDS] < request.json

RECEIVER is a module here named RECEIVER_receiver (standard_webhooks, cloudshare, github,
cloudblue). request.json is {"headers": [[name, value], ...], "body_hex": "..."}, as the test's
in-process receiver captured it. The receiver sees the headers as a web framework shows them
(names in lower case) and the body byte for byte.

--clock-offset runs the receiver as if it were that many seconds later (for "an expired token is
rejected" without waiting): it moves the clock the receiver libraries read.

Prints one JSON line: {"valid": true, "payload": ...} or {"valid": false, "error": "Type: message"}.
Exits 0 either way; any other exit status means the harness itself failed.
"""

import argparse
import datetime
import importlib
import json
import sys


def shift_clock(seconds: float) -> None:
    real = datetime.datetime

    class Later(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + datetime.timedelta(seconds=seconds)

    import jwt.api_jwt
    import standardwebhooks.webhooks

    for module in (jwt.api_jwt, standardwebhooks.webhooks):
        if getattr(module, "datetime", None) is real:
            module.datetime = Later


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("receiver")
    parser.add_argument("secret")
    parser.add_argument("--clock-offset", type=float, default=0.0)
    args = parser.parse_args()

    request = json.load(sys.stdin)
    headers = {name.lower(): value for name, value in request["headers"]}
    body = bytes.fromhex(request["body_hex"])
    if args.clock_offset:
        shift_clock(args.clock_offset)

    receiver = importlib.import_module(f"{args.receiver}_receiver")
    try:
        payload = receiver.receive(body, headers, args.secret)
    except Exception as e:  # every receiver's rejection, whatever its type
        print(json.dumps({"valid": False, "error": f"{type(e).__name__}: {e}"}))
        return 0
    print(json.dumps({"valid": True, "payload": payload}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
