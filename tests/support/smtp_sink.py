"""A real SMTP server for tests that records every message it receives.

``with SmtpSink() as sink:`` starts aiosmtpd on 127.0.0.1 at a free port
(``sink.host``, ``sink.port``); ``await sink.wait_for(n)`` waits until ``n``
messages have arrived. What a test checks is what an SMTP peer really got.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class _Recorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), parsed)  # type: ignore[arg-type]
            self.received.append(received)
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self._recorder = _Recorder()
        self._controller = Controller(self._recorder, hostname=host, port=self.port)

    @property
    def messages(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.received)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """At least ``count`` messages, or AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} e-mail(s) within {timeout}s, got {len(self.messages)}")
            await asyncio.sleep(0.05)
        return self.messages
