"""Outbound webhooks over HTTPS: a real local HTTPS receiver with a certificate of the test's own CA
(trusted through NOTIFY_HTTP_CA_FILE), and a plain-http URL refused at start-up unless allowed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contracts.envelope import new_envelope
from contracts.tickets import TicketEscalated, TicketEscalatedData
from runtime.consumer import Delivery
from runtime.settings import CommonSettings, ConfigError
from services.notify.adapters.providers import HttpProviders, ProviderUnavailable
from services.notify.adapters.smtp import SmtpMailer
from services.notify.adapters.store import NotifyStore
from services.notify.bootstrap import build
from services.notify.config import Settings
from services.notify.handlers import Outbox, TicketEventHandler
from services.notify.recipients import RecipientsFileError, load_recipients
from services.notify.rendering import Templates

SECRET = "whsec-test"
RECIPIENTS = """\
webhooks:
  - name: crm
    url: {url}
    secret_env: CRM_SECRET
    events: [ticket.escalated]
"""


@dataclass(frozen=True)
class Authority:
    ca_file: Path  # the CA's certificate: what a client trusts
    cert_file: Path  # the server's chain and key
    key_file: Path


def certificates(folder: Path) -> Authority:
    """A CA of the test's own, and a certificate it signs for 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "helpdesk test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    authority = Authority(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    authority.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    authority.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    authority.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return authority


class HttpsReceiver:
    """An integration's HTTPS endpoint on 127.0.0.1: records each request it answers (202)."""

    def __init__(self, authority: Authority) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(authority.cert_file, authority.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpsReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return certificates(tmp_path)


@pytest.fixture
def receiver(authority: Authority) -> Iterator[HttpsReceiver]:
    with HttpsReceiver(authority) as running:
        yield running


@pytest.fixture
async def store(sqlite_database: str) -> AsyncIterator[NotifyStore]:
    notify_store = NotifyStore(sqlite_database)
    await notify_store.create_schema()
    yield notify_store
    await notify_store.close()


def recipients_file(folder: Path, url: str, extra: str = "") -> Path:
    path = folder / "recipients.yaml"
    path.write_text(RECIPIENTS.format(url=url) + extra, encoding="utf-8")
    return path


async def escalate(store: NotifyStore, settings: Settings, path: Path) -> Any:
    recipients = load_recipients(path, {"CRM_SECRET": SECRET})
    providers = HttpProviders(settings, recipients)
    try:
        outbox = Outbox(store, SmtpMailer(settings), Templates(), {"webhook": providers})
        data = TicketEscalatedData(number="HD-7", version=4, level=2, queue="L2-specialists", reason="unclaimed")
        event = new_envelope(TicketEscalated, data, ticket_id=uuid.uuid4())
        await TicketEventHandler(store, outbox, recipients=recipients)([Delivery(event, "events", 0, 0, None)])
        return event
    finally:
        await providers.close()


async def test_a_webhook_is_posted_over_https_to_a_receiver_whose_ca_is_configured(
    store: NotifyStore, receiver: HttpsReceiver, authority: Authority, tmp_path: Path
) -> None:
    path = recipients_file(tmp_path, f"{receiver.url}/hooks/helpdesk")
    event = await escalate(store, Settings(http_ca_file=authority.ca_file, webhook_attempts=1), path)

    [(where, headers, body)] = receiver.requests
    assert where == "/hooks/helpdesk" and headers["idempotency-key"] == f"webhook.crm.{event.event_id}"
    fields = dict(part.split("=", 1) for part in headers["x-helpdesk-signature"].split(","))
    expected = hmac.new(SECRET.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


async def test_a_receiver_whose_certificate_is_not_trusted_gets_nothing(
    store: NotifyStore, receiver: HttpsReceiver, tmp_path: Path
) -> None:
    path = recipients_file(tmp_path, f"{receiver.url}/hooks/helpdesk")
    with pytest.raises(ProviderUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await escalate(store, Settings(webhook_attempts=1), path)
    assert receiver.requests == []


def test_notify_does_not_start_with_a_plain_http_webhook_unless_the_file_allows_it(tmp_path: Path) -> None:
    path = recipients_file(tmp_path, "http://crm.internal:8080/hooks/helpdesk")
    common = CommonSettings(kafka_bootstrap_servers="127.0.0.1:9")
    settings = Settings(recipients_file=path)
    env = {"CRM_SECRET": SECRET}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with pytest.raises(RecipientsFileError) as refused:
            build(common, settings)
        assert refused.value.message.startswith(f"{path}:3: webhooks[0].url: webhook crm: http://crm.internal:8080")
        recipients_file(tmp_path, "http://crm.internal:8080/hooks/helpdesk", "    allow_http: true\n")
        build(common, settings)  # allowed for this receiver: starts


def test_an_unusable_ca_file_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError) as refused:
        build(CommonSettings(kafka_bootstrap_servers="127.0.0.1:9"), Settings(http_ca_file=tmp_path / "ca.pem"))
    assert refused.value.message.startswith(f"NOTIFY_HTTP_CA_FILE: cannot use {tmp_path / 'ca.pem'} as CA certificates")
