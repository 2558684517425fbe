"""A consumer process for the delivery tests: logs what it starts and finishes.

``python -m tests.support.crashy_consumer <journal>``: the handler writes
``started <subject>`` then, unless the subject is ``hang``, ``done <subject>``.
A test kills it with SIGKILL while it hangs, to prove the offset of an
unfinished message was not committed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from contracts.incidents import IncidentReported
from contracts.topics import INCIDENTS_REPORTED
from runtime.service import Service
from runtime.settings import CommonSettings, HttpSettings


async def main(journal: Path) -> None:
    svc = Service("crashy", CommonSettings(), HttpSettings(http_port=0), description="delivery test consumer")

    async def handle(batch):  # type: ignore[no-untyped-def]
        for delivery in batch:
            subject = delivery.message.data.subject
            with journal.open("a") as f:
                f.write(f"started {subject}\n")
            if subject == "hang":
                await asyncio.sleep(3600)
            with journal.open("a") as f:
                f.write(f"done {subject}\n")

    svc.subscribe(INCIDENTS_REPORTED, handle, accepts=[IncidentReported], group="delivery-test")
    async with svc._lifespan(svc.app):
        with journal.open("a") as f:
            f.write("ready\n")
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
