"""The topic registry: every topic the suite uses, its partitions, key and messages.

Names carry a version suffix: a change that old consumers cannot read goes to
a new topic (``.v2``) while both run side by side during an upgrade. A
deployment may put a prefix in front of every name (``KAFKA_TOPIC_PREFIX``)
to share one cluster between environments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.commands import TICKET_COMMANDS, AssignTicket, EscalateTicket, FlagTicket, RouteTicket
from contracts.envelope import Envelope
from contracts.incidents import DIRECTORY_MESSAGES, IncidentIdentified, IncidentReported
from contracts.notifications import NOTIFICATIONS
from contracts.sla import SLA_MESSAGES
from contracts.tickets import TICKET_EVENTS


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    description: str
    messages: tuple[type[Envelope], ...] = ()
    config: dict[str, str] = field(default_factory=dict)

    def qualified(self, prefix: str = "") -> str:
        """The topic's name on the cluster, with the deployment's prefix."""
        return f"{prefix}{self.name}"


INCIDENTS_REPORTED = Topic(
    name="helpdesk.incidents.reported.v1",
    partitions=6,
    key="'<channel>:<channel_message_id>' (no ticket exists yet)",
    description="Incidents as channels and integrations report them. Integrations may publish here directly.",
    messages=(IncidentReported,),
)

INCIDENTS_IDENTIFIED = Topic(
    name="helpdesk.incidents.identified.v1",
    partitions=6,
    key="'<channel>:<channel_message_id>'",
    description="Incidents with the customer identified and enriched by intake; the ticket service opens tickets from them.",
    messages=(IncidentIdentified,),
)

TICKET_EVENTS_TOPIC = Topic(
    name="helpdesk.tickets.events.v1",
    partitions=6,
    key="ticket id",
    description=(
        "Every event of the ticket log, relayed from the ticket service's event store in log order per ticket. "
        "Kept forever: escalation rebuilds its SLA clocks by replaying it, and a ticket open longer than a "
        "retention would lose its clock."
    ),
    messages=TICKET_EVENTS,
    # The broker's default (7 days) would drop the opening of every ticket open longer than that.
    config={"retention.ms": "-1", "retention.bytes": "-1"},
)

# Commands to the ticket service: one topic per producer, so that Kafka's ACLs say who may send what
# (only routing may write routing's topic), and the ticket service takes from each topic only the
# command types that producer may send (any other is dead-lettered, kind "forbidden").

ROUTING_COMMANDS = Topic(
    name="helpdesk.tickets.commands.routing.v1",
    partitions=6,
    key="ticket id",
    description="Routing's commands to the ticket service: each ticket's priority and queue, and its assignments.",
    messages=(RouteTicket, AssignTicket),
)

ESCALATION_COMMANDS = Topic(
    name="helpdesk.tickets.commands.escalation.v1",
    partitions=6,
    key="ticket id",
    description="Escalation's commands to the ticket service: escalations, and assignments to a level's on-call agent.",
    messages=(EscalateTicket, AssignTicket),
)

NOTIFY_COMMANDS = Topic(
    name="helpdesk.tickets.commands.notify.v1",
    partitions=6,
    key="ticket id",
    description="Notify's commands to the ticket service: flags raised on tickets (the 'flag' notification method).",
    messages=(FlagTicket,),
)

PRODUCER_COMMAND_TOPICS: tuple[Topic, ...] = (ROUTING_COMMANDS, ESCALATION_COMMANDS, NOTIFY_COMMANDS)

SHARED_COMMANDS = Topic(
    name="helpdesk.tickets.commands.v1",
    partitions=6,
    key="ticket id",
    description=(
        "The one command topic of releases before per-producer command topics (any producer, any command). "
        "The ticket service still reads it, so that commands sent by services not yet upgraded are not lost; "
        "nobody may write it once every producer is upgraded (docs/operations.md). A later release drops it."
    ),
    messages=TICKET_COMMANDS,
)

NOTIFICATION_REQUESTS = Topic(
    name="helpdesk.notifications.requests.v1",
    partitions=6,
    key="ticket id",
    description="Requests to notify agents or customers, to the notify service.",
    messages=NOTIFICATIONS,
)

DIRECTORY_CUSTOMERS = Topic(
    name="helpdesk.directory.customers.v1",
    partitions=3,
    key="the customer's user id",
    description=(
        "Customers and their assets as a directory or CMDB integration publishes them; intake keeps its "
        "customer directory from it (compacted: the latest message per customer is the truth)."
    ),
    messages=DIRECTORY_MESSAGES,
    config={"cleanup.policy": "compact"},
)

SLA_DEADLINES = Topic(
    name="helpdesk.sla.deadlines.v1",
    partitions=6,
    key="ticket id",
    description="Every SLA deadline of a ticket, republished whole on each change (compacted: the latest is the truth).",
    messages=SLA_MESSAGES,
    config={"cleanup.policy": "compact"},
)

DEAD_LETTERS = Topic(
    name="helpdesk.deadletter.v1",
    partitions=3,
    key="the original message's key",
    description=(
        "Messages a consumer could not process after bounded retries. The value is the original bytes; "
        "headers say why (dlt.reason, dlt.kind) and where from (dlt.origin.topic, dlt.origin.partition, "
        "dlt.origin.offset, dlt.consumer.group, dlt.service, dlt.attempts, dlt.failed_at)."
    ),
    config={"retention.ms": str(30 * 24 * 3600 * 1000)},
)

ALL_TOPICS: tuple[Topic, ...] = (
    INCIDENTS_REPORTED,
    INCIDENTS_IDENTIFIED,
    TICKET_EVENTS_TOPIC,
    *PRODUCER_COMMAND_TOPICS,
    SHARED_COMMANDS,
    NOTIFICATION_REQUESTS,
    DIRECTORY_CUSTOMERS,
    SLA_DEADLINES,
    DEAD_LETTERS,
)
