"""Send intake an SMS as Twilio's inbound-message webhook would, signed.

``python -m devtools.sms "Printer on fire"`` posts to the local run's intake
(``scripts/run``), signed with the development token it gives intake
(``INTAKE_TWILIO_AUTH_TOKEN``); ``--url`` and ``--token`` for another intake.
Prints the status and the answer (TwiML when the incident is on the topic).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from urllib.parse import urlencode

import httpx

from devtools.processes import DEFAULT_PORTS, DEVELOPMENT_TWILIO_AUTH_TOKEN
from services.intake.channels.twilio import signature

PATH = "/v1/channels/sms/twilio"


def sms_request(url: str, token: str, body: str, sender: str) -> tuple[str, bytes, dict[str, str]]:
    """The URL, form body and headers of Twilio's POST for one inbound SMS (url: intake's base URL)."""
    form = [("MessageSid", f"SM{uuid.uuid4().hex}"), ("AccountSid", "AC-development"), ("From", sender),
            ("To", "+15005550006"), ("Body", body), ("NumMedia", "0")]  # fmt: skip
    target = url.rstrip("/") + PATH
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature(token, target, form),
    }
    return target, urlencode(form).encode(), headers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body", help="the text of the message")
    parser.add_argument("--from", dest="sender", default="+442079460018", help="the sender's number (E.164)")
    parser.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORTS['intake']}", help="intake's base URL")
    parser.add_argument("--token", default=DEVELOPMENT_TWILIO_AUTH_TOKEN, help="intake's INTAKE_TWILIO_AUTH_TOKEN")
    args = parser.parse_args(argv)
    target, content, headers = sms_request(args.url, args.token, args.body, args.sender)
    response = httpx.post(target, content=content, headers=headers, timeout=30)
    print(response.status_code, response.text)
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
