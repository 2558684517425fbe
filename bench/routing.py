"""Routing decisions per second: 200 rules, 500 agents, tickets with a kilobyte of text.

Measures the decision itself (rules + assignment, in-process, one core) as
``decisions_per_s`` (wall clock; ``decisions_per_cpu_s`` is the same per second
of CPU, which a busy machine does not skew), and the same through routing's batch handler and its
SQLite store (explanations, views, processed ids written; Kafka replaced by a
publisher that only serialises) as ``stored_decisions_per_s``.
Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from contracts.envelope import Envelope, new_envelope
from contracts.incidents import CustomerProfile
from contracts.tickets import TicketOpened, TicketOpenedData
from runtime.consumer import Delivery
from runtime.logs import configure_logging
from services.routing.adapters.rules_file import load_rules
from services.routing.adapters.store import RoutingStore
from services.routing.assignment import Agent, Roster
from services.routing.desk import Desk
from services.routing.handlers import RouteTickets
from services.routing.reload import RulesInForce

WORDS = (
    "printer vpn login password email outlook teams screen laptop network wifi sap invoice payroll "
    "slow broken error crash cannot access denied timeout server database backup disk license"
).split()
FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt. "
CHANNELS = ["email", "chat", "sms", "social", "mobile", "phone", "web", "integration"]
DEPARTMENTS = [f"Dept-{i}" for i in range(30)]
QUEUES = [f"Q-{i:02d}" for i in range(25)]
SKILLS = [f"skill-{i}" for i in range(40)]


def rules_file(rng: random.Random, path: Path) -> Path:
    """120 priority rules and 80 queue rules, conditions of every kind, most never matching a given ticket."""
    priority_rules: list[dict[str, Any]] = []
    for i in range(120):
        kind = i % 6
        when: dict[str, Any] = (
            {"keywords": [f"kw{i}", f"{rng.choice(WORDS)} kw{i}x"]}
            if kind == 0
            else {"components": [f"comp-{i}"]}
            if kind == 1
            else {"departments": [rng.choice(DEPARTMENTS)], "channels": [rng.choice(CHANNELS)]}
            if kind == 2
            else {"criticality": ["critical"], "urgency": ["high"], "departments": [rng.choice(DEPARTMENTS)]}
            if kind == 3
            else {"channels": [rng.choice(CHANNELS)], "hours": ["18:00-08:00"], "customers": [f"c-{i}"]}
            if kind == 4
            else {"vip": True, "departments": [rng.choice(DEPARTMENTS)], "impact": ["high"]}
        )
        priority_rules.append({"name": f"p-{i}", "when": when, "set": rng.randint(1, 5)})
    queue_rules: list[dict[str, Any]] = []
    for i in range(80):
        when = (
            {"keywords": [f"qkw{i}", rng.choice(WORDS) + f" q{i}"]}
            if i % 3 == 0
            else {"components": [f"comp-{i}", f"comp-{i + 100}"]}
            if i % 3 == 1
            else {"departments": [rng.choice(DEPARTMENTS)], "priority": [rng.randint(1, 5)]}
        )
        queue_rules.append(
            {"name": f"q-{i}", "when": when, "queue": QUEUES[i % len(QUEUES)], "skills": rng.sample(SKILLS, 2)}
        )
    document = {
        "timezone": "Europe/London",
        "components": {f"comp-{i}": rng.choice(["critical", "high", "medium", "low"]) for i in range(200)},
        "priority": {
            "matrix": {i: {u: 3 for u in ("high", "medium", "low")} for i in ("high", "medium", "low")},
            "rules": priority_rules,
        },
        "queues": {
            "default": QUEUES[0],
            "assignment": {q: ("least_loaded" if n % 2 else "round_robin") for n, q in enumerate(QUEUES)},
            "rules": queue_rules,
        },
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def agents(rng: random.Random) -> dict[str, Agent]:
    out = {}
    for i in range(500):
        out[f"agent-{i:03d}"] = Agent(
            f"agent-{i:03d}",
            skills=frozenset(rng.sample(SKILLS, 12)),
            languages=frozenset({"en"}),
            level=rng.randint(1, 3),
            queues=frozenset(rng.sample(QUEUES, 2)),
            available=rng.random() < 0.9,
        )
    return out


def tickets(rng: random.Random, n: int) -> list[Envelope[Any]]:
    start = datetime(2026, 11, 26, tzinfo=UTC)
    out = []
    for i in range(n):
        subject = " ".join(rng.sample(WORDS, 4)) + (f" kw{rng.randrange(120)}" if i % 4 == 0 else "")
        description = (
            FILLER * 10 + " ".join(rng.choices(WORDS, k=30)) + (f" q{rng.randrange(80)}" if i % 5 == 0 else "")
        )
        data = TicketOpenedData(
            number=f"HD-{i}",
            version=1,
            channel=rng.choice(CHANNELS),
            channel_message_id=str(i),
            reported_at=start + timedelta(minutes=7 * i),
            subject=subject,
            description=description,
            components=[f"comp-{rng.randrange(250)}" for _ in range(rng.randint(0, 3))],
            impact=rng.choice(["high", "medium", "low", None]),
            urgency=rng.choice(["high", "medium", "low", None]),
            customer=CustomerProfile(
                identified=True,
                identified_by="email",
                customer_id=f"c-{rng.randrange(200)}",
                department=rng.choice(DEPARTMENTS),
                vip=rng.random() < 0.05,
            ),
        )
        out.append(new_envelope(TicketOpened, data, ticket_id=uuid.uuid4()))
    return out


def in_process(rules: Path, roster: dict[str, Agent], events: list[Envelope[Any]]) -> tuple[float, float, int]:
    """(decisions per wall-clock second, per CPU second, tickets assigned)."""
    desk = Desk(load_rules(rules), Roster(roster), {}, datetime.now(UTC))
    started, cpu = time.perf_counter(), time.process_time()
    for event in events:
        desk.apply(event)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assigned = sum(1 for c in desk.commands if c.type == "command.assign_ticket")
    return len(events) / elapsed, len(events) / cpu, assigned


class _Serialising:
    """Stands in for Kafka: pays for serialising each command, sends nothing."""

    async def publish_all(self, items: Any) -> None:
        for item in items:
            item.message.model_dump_json()


async def through_store(rules: Path, roster: dict[str, Agent], events: list[Envelope[Any]], batch: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        store = RoutingStore(f"sqlite+aiosqlite:///{folder}/routing.db")
        await store.create_schema()
        await store.put_agents(roster.values())
        handler = RouteTickets(RulesInForce(rules), store, _Serialising())  # type: ignore[arg-type]
        deliveries = [Delivery(e, "events", 0, n, None) for n, e in enumerate(events)]
        started = time.perf_counter()
        for i in range(0, len(deliveries), batch):
            await handler(deliveries[i : i + batch])
        elapsed = time.perf_counter() - started
        await store.close()
    return len(events) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--stored-tickets", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=500, help="events per handler batch (the consumer's max_records)")
    args = parser.parse_args()
    configure_logging("routing-bench", "WARNING")  # one log line per decision would be measured too
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as folder:
        rules = rules_file(rng, Path(folder) / "rules.yaml")
        policy = load_rules(rules)
        roster = agents(rng)
        events = tickets(rng, args.tickets)
        in_process(rules, roster, events[:500])  # warm up
        per_s, per_cpu_s, assigned = in_process(rules, roster, events)
        stored = asyncio.run(through_store(rules, roster, events[: args.stored_tickets], args.batch))
    print(
        json.dumps(
            {
                "rules": len(policy.priority_rules) + len(policy.queue_rules),
                "agents": len(roster),
                "tickets": args.tickets,
                "assigned": assigned,
                "decisions_per_s": round(per_s, 1),
                "decisions_per_cpu_s": round(per_cpu_s, 1),  # the same, free of other processes on a busy machine
                "stored_decisions_per_s": round(stored, 1),
                "target_per_s": 5000,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
