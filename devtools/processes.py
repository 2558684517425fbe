"""Start the suite's processes, wait until each is ready, stop them gracefully."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("intake", "tickets", "routing", "escalation", "notify")
DEFAULT_PORTS = {"intake": 8001, "tickets": 8002, "routing": 8003, "escalation": 8004, "notify": 8005}

# Intake's SMS webhook answers 503 without a Twilio auth token. The local run gives it this one, which
# anyone can read here, so that a signed SMS can be sent locally (``python -m devtools.sms``).
DEVELOPMENT_TWILIO_AUTH_TOKEN = "helpdesk-development-twilio-token-never-in-a-deployment"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    ready_port: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; log: {self.log_path}\n{self.tail()}")
            if self.ready_port is not None:
                try:
                    socket.create_connection(("127.0.0.1", self.ready_port), timeout=1.0).close()
                    return
                except OSError:
                    time.sleep(0.1)
                    continue
            if self.ready_url is None:
                return
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s ({self.ready_url}); log: {self.log_path}\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Suite:
    """The five services plus a mailbox, configured to run side by side."""

    state_dir: Path
    kafka_bootstrap: str
    topic_prefix: str = ""
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    smtp_port: int = 2525
    intake_smtp_port: int = 2526
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def mailbox_dir(self) -> Path:
        return self.state_dir / "mailbox"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def env(self) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": str(self.smtp_port),
            "INTAKE_SMTP_PORT": str(self.intake_smtp_port),
            "PYTHONUNBUFFERED": "1",
            # The local suite on one machine: built-in development credentials are acceptable here.
            "HELPDESK_DEVELOPMENT": "true",
            # Yours, when you set one to receive real texts (with INTAKE_PUBLIC_URL, your tunnel's URL).
            "INTAKE_TWILIO_AUTH_TOKEN": os.environ.get("INTAKE_TWILIO_AUTH_TOKEN") or DEVELOPMENT_TWILIO_AUTH_TOKEN,
        }
        for name in SERVICES:
            env[f"{name.upper()}_HTTP_PORT"] = str(self.ports[name])
            env[f"{name.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.state_dir / f'{name}.db'}"
        env.update(self.extra_env)
        if env["HELPDESK_DEVELOPMENT"] != "true" and env["INTAKE_TWILIO_AUTH_TOKEN"] == DEVELOPMENT_TWILIO_AUTH_TOKEN:
            del env["INTAKE_TWILIO_AUTH_TOKEN"]  # development credentials only with the development switch
        return env

    def build(self) -> None:
        env = self.env()
        logs = self.state_dir / "logs"
        self.processes["mailbox"] = Process(
            "mailbox",
            [sys.executable, "-m", "devtools.mailbox", "--port", str(self.smtp_port), "--dir", str(self.mailbox_dir)],
            env,
            logs / "mailbox.log",
            ready_port=self.smtp_port,
        )
        for name in SERVICES:
            self.processes[name] = Process(
                name, [sys.executable, "-m", f"services.{name}"], env, logs / f"{name}.log", f"{self.url(name)}/readyz"
            )

    def start(self, timeout: float = 90.0) -> None:
        if not self.processes:
            self.build()
        for proc in self.processes.values():
            proc.start()
        for proc in self.processes.values():
            proc.wait_ready(timeout)

    def stop(self) -> dict[str, int | None]:
        return {name: proc.stop() for name, proc in reversed(list(self.processes.items()))}
