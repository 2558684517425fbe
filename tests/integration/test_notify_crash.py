"""Notify killed (SIGKILL) in the middle of a batch and run again on the same
messages, as Kafka redelivers an uncommitted batch: every e-mail arrives, and the
duplicates are only those handed to SMTP but not yet recorded, within the stated
bound (``NOTIFY_RECORD_EVERY`` + ``NOTIFY_PARALLEL_SENDS``), each with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from services.notify.config import Settings
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
COUNT = 300


def run(url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.support.notify_batches", url, str(port), str(COUNT), "100"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())


async def test_notify_killed_mid_batch_and_restarted_sends_every_email_with_bounded_duplicates(
    database_url: str,
) -> None:
    with SmtpSink() as sink:
        first = run(database_url, sink.port)
        deadline = time.monotonic() + 60
        while len(sink.messages) < 130:  # well into the second batch
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run never got going"
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before_restart = len(sink.messages)
        assert before_restart < COUNT, "the kill came too late to prove anything"

        second = run(database_url, sink.port)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0, err.decode()
        await asyncio.sleep(0.3)
        ids = Counter(m.message["Message-ID"] for m in sink.messages)

    assert len(ids) == COUNT  # every e-mail arrived
    duplicates = sum(n - 1 for n in ids.values())
    print(f"killed after {before_restart} e-mails; {duplicates} duplicate(s) after the restart")
    s = Settings()
    assert duplicates <= s.record_every + s.parallel_sends, f"{duplicates} duplicates"
    assert all(n <= 2 for n in ids.values())
