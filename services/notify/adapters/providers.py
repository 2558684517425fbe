"""The HTTP providers agents and integrations are reached through (httpx, with timeouts).

- SMS and phone calls: the Twilio REST API (``POST /2010-04-01/Accounts/{sid}/Messages.json``
  and ``Calls.json``, form-encoded, basic auth; a call says its text with TwiML). Any
  Twilio-compatible provider works with ``NOTIFY_TWILIO_BASE_URL``.
- Pager: the PagerDuty Events API v2 (``POST /v2/enqueue``), with our notification key as
  ``dedup_key``: PagerDuty folds a resend into the same incident, a real idempotency key.
- Alarm: an Alertmanager-compatible ``POST /api/v2/alerts``; the notification key is a
  label, so a resend is the same alert to Alertmanager.
- Outbound webhooks: the event as JSON, an ``Idempotency-Key`` header (the notification
  key), and ``X-Helpdesk-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

HTTPS is verified against the public CAs plus, if set, ``NOTIFY_HTTP_CA_FILE``'s
(a private CA of in-cluster receivers); webhooks are https unless the recipients
file allows plain http for one.

A 5xx, a 429, a timeout or a refused connection is retried a few times here with
backoff, then raised (:class:`ProviderUnavailable`): the consumer retries the batch
and finally dead-letters it. Any other 4xx is :class:`ProviderRejected`: the request
itself is wrong and would fail the same way again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx

from runtime.settings import ConfigError

from services.notify.adapters.headers import header_value
from services.notify.config import Settings
from services.notify.domain import Notification
from services.notify.recipients import Recipients
from services.notify.rendering import Rendered


class ProviderUnavailable(Exception):
    """The provider did not take the notification this time (5xx, 429, timeout, unreachable)."""


class ProviderRejected(Exception):
    """The provider refused the notification itself (4xx): sending it again would not help."""


def trusted_cas(ca_file: Path | None) -> ssl.SSLContext:
    """TLS verification as httpx does it (the public CAs) and against those of ``ca_file`` too; ConfigError
    naming the setting if the file is unusable."""
    context = httpx.create_ssl_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"NOTIFY_HTTP_CA_FILE: cannot use {ca_file} as CA certificates (PEM): {exc}") from None
    return context


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The webhook signature header's value; receivers recompute it to check the sender and the time."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class HttpProviders:
    """Sends sms, phone, pager, alarm and webhook notifications; one HTTP client for all."""

    METHODS = ("sms", "phone", "pager", "alarm", "webhook")

    def __init__(self, settings: Settings, recipients: Recipients, client: httpx.AsyncClient | None = None) -> None:
        self._s = settings
        self._recipients = recipients
        self._client = client or httpx.AsyncClient(
            timeout=settings.http_timeout_s, verify=trusted_cas(settings.http_ca_file)
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, n: Notification, body: Rendered) -> None:
        request = getattr(self, f"_{n.method}")(n, body)
        await self._post_with_retries(n, request)

    def _twilio(self, resource: str) -> tuple[str, httpx.BasicAuth]:
        s = self._s
        url = f"{s.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{s.twilio_account_sid}/{resource}.json"
        return url, httpx.BasicAuth(s.twilio_account_sid, s.twilio_auth_token.get_secret_value())

    def _sms(self, n: Notification, body: Rendered) -> dict[str, Any]:
        url, auth = self._twilio("Messages")
        return {"url": url, "auth": auth, "data": {"To": n.to, "From": self._s.twilio_from, "Body": body.short[:1600]}}

    def _phone(self, n: Notification, body: Rendered) -> dict[str, Any]:
        url, auth = self._twilio("Calls")
        twiml = f'<Response><Say voice="alice">{escape(body.short)}</Say><Pause length="1"/><Say>{escape(body.short)}</Say></Response>'
        return {"url": url, "auth": auth, "data": {"To": n.to, "From": self._s.twilio_from, "Twiml": twiml}}

    def _pager(self, n: Notification, body: Rendered) -> dict[str, Any]:
        event = {
            "routing_key": n.to,
            "event_action": "trigger",
            "dedup_key": n.notification_key,
            "payload": {
                "summary": body.short[:1024],
                "source": "helpdesk",
                "severity": n.context.get("severity", "error"),
                "custom_details": dict(n.context),
            },
        }
        return {"url": f"{self._s.pagerduty_url.rstrip('/')}/v2/enqueue", "json": event}

    def _alarm(self, n: Notification, body: Rendered) -> dict[str, Any]:
        labels = {"alertname": "HelpdeskNotification", "notification_key": n.notification_key,
                  "ticket": n.number or "", "severity": n.context.get("severity", "critical")}
        if n.to:
            labels["receiver"] = n.to
        alert = {"labels": labels, "annotations": {"summary": body.short}, "generatorURL": "helpdesk://notify"}
        return {"url": f"{self._s.alertmanager_url.rstrip('/')}/api/v2/alerts", "json": [alert]}

    def _webhook(self, n: Notification, body: Rendered) -> dict[str, Any]:
        hook = next((h for h in self._recipients.webhooks if h.name == n.to), None)
        if hook is None:
            raise ProviderRejected(f"no webhook named {n.to!r} in the recipients file")
        content = json.dumps(n.payload or {}, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": n.notification_key,
                   "X-Helpdesk-Event": str((n.payload or {}).get("type", ""))}
        # The only request headers built from a message (the other providers put it in a form or JSON body).
        checked = {name: header_value(name, value) for name, value in headers.items()}
        return {"url": hook.url, "content": content, "secret": self._recipients.secrets[hook.name], "headers": checked}

    async def _post_with_retries(self, n: Notification, request: dict[str, Any]) -> None:
        attempts = self._s.webhook_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = await self._client.post(**self._signed(request))
            except httpx.TransportError as exc:  # timeouts, refused, reset
                problem = f"{n.method} to {request['url']}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return
                problem = f"{n.method} to {request['url']}: HTTP {response.status_code} {response.text[:200]}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    raise ProviderRejected(problem)
            if attempt < attempts:
                await asyncio.sleep(0.1 * 2 ** (attempt - 1))
        raise ProviderUnavailable(problem)

    @staticmethod
    def _signed(request: dict[str, Any]) -> dict[str, Any]:
        """Signed at each attempt, so the timestamp is fresh (receivers reject old ones)."""
        request = dict(request)
        secret = request.pop("secret", None)
        if secret is not None:
            headers = dict(request["headers"])
            headers["X-Helpdesk-Signature"] = signature(secret, int(time.time()), request["content"])
            request["headers"] = headers
        return request
