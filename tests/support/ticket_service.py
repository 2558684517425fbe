"""The ticket service for tests: generated commands on a ticket, and the service as a real process.

:func:`steps` generates what people and services ask of a ticket (valid or not,
by agents, a lead, routing and escalation); :meth:`Step.decide` asks the
domain. The aggregate's stateful test and its run through the real store use
the same steps. :class:`TicketProcess` runs ``python -m services.tickets`` as
a child process a test can SIGKILL and start again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from hypothesis import strategies as st

from contracts.incidents import Channel, CustomerProfile, IncidentIdentifiedData
from services.tickets.domain import (
    INVERSE_LINK,
    Actor,
    Status,
    Ticket,
    TicketEvent,
)

ROOT = Path(__file__).resolve().parents[2]

# --- generated commands -------------------------------------------------------

AGENTS = (Actor("agent-1"), Actor("agent-2"), Actor("agent-3"))
LEADS = (Actor("lead-1", lead=True),)
LEAD_IDS = frozenset(a.id for a in LEADS)
# A credential without a subject never reaches the domain, but the domain refuses one too.
NOBODY = Actor("  ")
REOPEN_WINDOW = timedelta(days=7)
FINISHED_AT = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)

actors = st.sampled_from([*AGENTS, *LEADS, NOBODY])
# Who usually acts (most steps): no blank id, so that more of them get past the first check.
workers = st.sampled_from([*AGENTS, *LEADS])
queues = st.sampled_from(["service-desk", "finance-apps", "level-2", "level-3", "", "  "])
# Short, within every contract's limits; blank ones break the "say why" rules.
texts = st.one_of(
    st.just("Replaced the toner"),
    st.sampled_from(["", " ", 'Ünïcode ✓ "quoted"\n😀']),
    st.text(max_size=30),
)
link_kinds = st.sampled_from([*INVERSE_LINK, "blocks"])
flags = st.one_of(st.sampled_from(["vip", "sla_warning", "", " "]), st.text(max_size=50))


def incident(message_id: str = "msg-1") -> IncidentIdentifiedData:
    return IncidentIdentifiedData(
        channel=Channel.EMAIL,
        channel_message_id=message_id,
        received_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
        subject="Printer on fire",
        description="Third floor printer is smoking",
        components=["printer-3f"],
        customer=CustomerProfile(identified=True, identified_by="email", customer_id="c-7", name="Ada"),
    )


Decision = tuple[list[TicketEvent], list[TicketEvent]]


class Step:
    """One request of a ticket, which may involve another (merge, link).

    ``decide`` returns the domain's events for (the ticket, the other ticket),
    or raises its TicketRuleViolation.
    """

    def decide(self, ticket: Ticket, other: Ticket) -> Decision:
        return self.decide_one(ticket), []

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        raise NotImplementedError


@dataclass(frozen=True)
class Route(Step):
    priority: int
    queue: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.route(
            priority=self.priority,
            priority_rule="matrix",
            priority_reason="impact x urgency",
            queue=self.queue,
            queue_rule="printers",
            queue_reason="component printer-3f",
        )


@dataclass(frozen=True)
class Assign(Step):
    agent: Actor

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.assign(self.agent.id, strategy="round_robin", reason="next in line")


@dataclass(frozen=True)
class Claim(Step):
    actor: Actor

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.claim(self.actor.id)


@dataclass(frozen=True)
class Release(Step):
    actor: Actor

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.release(self.actor)


@dataclass(frozen=True)
class Note(Step):
    actor: Actor
    text: str
    visibility: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.add_note(self.actor.id, self.text, self.visibility)


@dataclass(frozen=True)
class ChangeStatus(Step):
    actor: Actor
    status: Status

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.change_status(self.actor, self.status)


@dataclass(frozen=True)
class ChangePriority(Step):
    actor: Actor
    priority: int
    reason: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.change_priority(self.actor, self.priority, self.reason)


@dataclass(frozen=True)
class MoveToQueue(Step):
    actor: Actor
    queue: str
    reason: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.move_to_queue(self.actor, self.queue, self.reason)


@dataclass(frozen=True)
class Escalate(Step):
    level: int
    queue: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.escalate(level=self.level, queue=self.queue, reason="no agent took it in time")


@dataclass(frozen=True)
class Flag(Step):
    flag: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.flag(self.flag, reason="raised by a test", raised_by="escalation")


@dataclass(frozen=True)
class Reply(Step):
    channel: Channel
    message_id: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.record_reply(
            channel=self.channel,
            channel_message_id=self.message_id,
            received_at=FINISHED_AT,
            text="Still broken",
        )


@dataclass(frozen=True)
class Resolve(Step):
    actor: Actor
    resolution: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.resolve(self.actor.id, self.resolution, lead=self.actor.lead)


@dataclass(frozen=True)
class Close(Step):
    actor: Actor

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.close(self.actor)


@dataclass(frozen=True)
class Reopen(Step):
    actor: Actor
    reason: str
    late: bool  # asked after the reopen window closed

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        after = REOPEN_WINDOW + timedelta(seconds=1) if self.late else REOPEN_WINDOW
        return ticket.reopen(
            self.actor,
            self.reason,
            now=FINISHED_AT + after,
            finished_at=FINISHED_AT,
            window=REOPEN_WINDOW,
        )


@dataclass(frozen=True)
class CustomerReply(Step):
    """The customer writes through the API (a closed or merged ticket refuses), not a channel."""

    message_id: str
    text: str

    def decide_one(self, ticket: Ticket) -> list[TicketEvent]:
        return ticket.customer_reply(
            channel=Channel.WEB,
            message_id=self.message_id,
            received_at=FINISHED_AT,
            text=self.text,
        )


@dataclass(frozen=True)
class MergeInto(Step):
    actor: Actor
    reason: str

    def decide(self, ticket: Ticket, other: Ticket) -> Decision:
        return ticket.merge(self.actor, other, self.reason)


@dataclass(frozen=True)
class LinkTo(Step):
    actor: Actor
    kind: str

    def decide(self, ticket: Ticket, other: Ticket) -> Decision:
        return ticket.link(self.actor, other, self.kind)


@dataclass(frozen=True)
class UnlinkFrom(Step):
    actor: Actor
    kind: str

    def decide(self, ticket: Ticket, other: Ticket) -> Decision:
        return ticket.unlink(self.actor, other, self.kind)


def steps() -> dict[type[Step], st.SearchStrategy[Step]]:
    """Every command the domain has, each with its arguments both valid and not."""
    priorities = st.integers(min_value=0, max_value=6)
    return {
        Route: st.builds(Route, priority=priorities, queue=queues),
        Assign: st.builds(Assign, agent=st.one_of(workers, actors)),
        Claim: st.builds(Claim, actor=st.one_of(workers, actors)),
        Release: st.builds(Release, actor=workers),
        Note: st.builds(
            Note,
            actor=actors,
            text=texts,
            visibility=st.sampled_from(["internal", "public", "secret"]),
        ),
        ChangeStatus: st.builds(ChangeStatus, actor=workers, status=st.sampled_from(list(Status))),
        ChangePriority: st.builds(ChangePriority, actor=workers, priority=priorities, reason=texts),
        MoveToQueue: st.builds(MoveToQueue, actor=workers, queue=queues, reason=texts),
        Escalate: st.builds(Escalate, level=st.integers(min_value=1, max_value=4), queue=queues),
        Flag: st.builds(Flag, flag=flags),
        Reply: st.builds(
            Reply,
            channel=st.sampled_from([Channel.EMAIL, Channel.CHAT]),
            message_id=st.sampled_from("abc"),
        ),
        Resolve: st.builds(Resolve, actor=st.one_of(workers, actors), resolution=texts),
        Close: st.builds(Close, actor=workers),
        Reopen: st.builds(Reopen, actor=workers, reason=texts, late=st.booleans()),
        CustomerReply: st.builds(CustomerReply, message_id=st.sampled_from("ab"), text=texts),
        MergeInto: st.builds(MergeInto, actor=st.one_of(workers, actors), reason=texts),
        LinkTo: st.builds(LinkTo, actor=st.one_of(workers, actors), kind=link_kinds),
        UnlinkFrom: st.builds(UnlinkFrom, actor=workers, kind=link_kinds),
    }


# --- the service as a real process -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TicketProcess:
    """``python -m services.tickets`` with its own topics, SQLite file and port; its output goes to ``output``."""

    bootstrap: str
    topic_prefix: str
    database_url: str
    output: Path
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "KAFKA_RETRY_BACKOFF_MS": "10",
            "TICKETS_DATABASE_URL": self.database_url,
            "TICKETS_HTTP_PORT": str(self.port),
            **self.env,
        }
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.tickets"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> bool:
        """Whether it answers /readyz with 200; raises if it exited (its output says why)."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the ticket service exited with {self.process.returncode}:\n{self.tail()}")
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                return (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])
