"""The rules in force, and watching their file for a team lead's edits.

The file's modification time is polled (every ``ROUTING_RELOAD_INTERVAL_S``);
when it changes the file is read and validated again. Valid: the new rules
decide from the next batch on. Invalid: the rules in force stay, and the
problems (``file:line: where: what``) are logged, counted in
``helpdesk_routing_rules_reloads_total{outcome="rejected"}``, flagged by
``helpdesk_routing_rules_file_valid`` = 0 and shown by ``GET /v1/rules/status``
until a valid file replaces them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge

from runtime.logs import get_logger
from services.routing.adapters.rules_file import KnownAgents, RulesFileError, load_rules
from services.routing.domain import RoutingPolicy

RELOADS = Counter(
    "helpdesk_routing_rules_reloads_total", "Rules file changes seen, by outcome (loaded, rejected).", ["outcome"]
)
FILE_VALID = Gauge(
    "helpdesk_routing_rules_file_valid", "1 when the rules file on disk is the one in force, 0 when it has errors."
)

log = get_logger("routing.rules")


class RulesInForce:
    """The policy routing decides with; :meth:`check` swaps it for a valid edited file."""

    def __init__(self, path: Path, agents: KnownAgents | None = None) -> None:
        self.path = path
        self._agents = agents  # the agents ``assign_to`` may name, checked at every reload too
        self.policy: RoutingPolicy = load_rules(path, agents)  # at start-up an invalid file is fatal
        self.loaded_at = datetime.now(UTC)
        self._seen = self._stamp()
        self.problems: list[str] = []
        self.rejected_at: datetime | None = None
        FILE_VALID.set(1)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def check(self) -> bool:
        """Reload if the file changed; True when new rules were taken into force."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            policy = load_rules(self.path, self._agents)
        except RulesFileError as exc:
            self.problems, self.rejected_at = exc.problems, datetime.now(UTC)
            RELOADS.labels("rejected").inc()
            FILE_VALID.set(0)
            log.error(
                "routing rules rejected; the previous rules stay in force", file=str(self.path), problems=exc.problems
            )
            return False
        self.policy, self.loaded_at, self.problems, self.rejected_at = policy, datetime.now(UTC), [], None
        RELOADS.labels("loaded").inc()
        FILE_VALID.set(1)
        log.info("routing rules reloaded", file=str(self.path), **self.counts())
        return True

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            # Reading and validating a file is short; off the loop it would need locking for nothing.
            self.check()

    def counts(self) -> dict[str, int]:
        return {"priority_rules": len(self.policy.priority_rules), "queue_rules": len(self.policy.queue_rules)}

    def status(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "in_force_since": self.loaded_at.isoformat(),
            **self.counts(),
            "file_valid": not self.problems,
            "errors": self.problems,
            "rejected_at": self.rejected_at.isoformat() if self.rejected_at else None,
        }
