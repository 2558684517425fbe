"""Assignment strategies: who may get a ticket, and fairness over thousands of tickets with agents coming and going."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from services.routing.assignment import Agent, Assignment, Roster, Unassigned, assign

NET = "L2-network"


def agent(agent_id: str, **kw: object) -> Agent:
    defaults: dict[str, object] = {
        "skills": frozenset({"vpn"}),
        "languages": frozenset({"en"}),
        "queues": frozenset({NET}),
    }
    return Agent(agent_id, **{**defaults, **kw})  # type: ignore[arg-type]


def test_a_pull_queue_assigns_nobody() -> None:
    outcome = assign(Roster({"a": agent("a")}), "pull", uuid.uuid4(), NET)
    assert outcome == Unassigned("queue 'L2-network' is pull: agents take the next ticket")


def test_only_available_members_with_the_skills_and_the_language_are_eligible() -> None:
    roster = Roster(
        {
            "away": agent("away", available=False),
            "other-queue": agent("other-queue", queues=frozenset({"L1"})),
            "no-skill": agent("no-skill", skills=frozenset({"wifi"})),
            "english-only": agent("english-only", skills=frozenset({"vpn", "cisco"})),
            "fit": agent("fit", skills=frozenset({"vpn", "cisco"}), languages=frozenset({"en", "de"})),
        }
    )
    for strategy in ("round_robin", "least_loaded"):
        outcome = assign(roster, strategy, uuid.uuid4(), NET, frozenset({"cisco"}), "de")
        assert isinstance(outcome, Assignment) and outcome.agent_id == "fit"
    nobody = assign(roster, "least_loaded", uuid.uuid4(), NET, frozenset({"cisco"}), "fr")
    assert nobody == Unassigned(
        "no available agent of 'L2-network' with skills cisco and language fr: left in the queue"
    )


def test_an_agent_who_speaks_a_language_takes_its_regional_forms_but_not_the_reverse() -> None:
    roster = Roster(
        {
            "german": agent("german", languages=frozenset({"de"})),
            "swiss": agent("swiss", languages=frozenset({"de-ch"})),
        }
    )
    eligible = {a.agent_id for a in roster.eligible(NET, frozenset(), "de-at")}
    assert eligible == {"german"}
    assert {a.agent_id for a in roster.eligible(NET, frozenset(), "de-ch")} == {"german", "swiss"}
    assert {a.agent_id for a in roster.eligible(NET, frozenset(), "de")} == {"german"}


def test_round_robin_gives_every_agent_its_turn_while_agents_come_and_go() -> None:
    rng = random.Random(5)
    agents = {f"a{i:02d}": agent(f"a{i:02d}") for i in range(20)}
    given: Counter[str] = Counter()
    fair: Counter[str] = Counter()  # each ticket owed 1/k to each of the k agents present
    roster = Roster(agents)
    for n in range(6000):
        if n % 200 == 0:  # every 200 tickets, a few agents leave or come back
            for agent_id in rng.sample(sorted(agents), 4):
                agents[agent_id] = Agent(**{**agents[agent_id].__dict__, "available": not agents[agent_id].available})
            roster = Roster(agents, last_given=roster.last_given)
        present = [a for a in agents.values() if a.available]
        outcome = assign(roster, "round_robin", uuid.uuid4(), NET)
        assert isinstance(outcome, Assignment)
        assert agents[outcome.agent_id].available
        given[outcome.agent_id] += 1
        for a in present:
            fair[a.agent_id] += 1 / len(present)  # type: ignore[assignment]
    assert sum(given.values()) == 6000
    for agent_id, owed in fair.items():
        assert abs(given[agent_id] - owed) <= 0.05 * owed + 2, (agent_id, given[agent_id], owed)


def test_round_robin_turns_are_exact_when_nobody_comes_or_goes() -> None:
    roster = Roster({f"a{i}": agent(f"a{i}") for i in range(7)})
    given = Counter(
        outcome.agent_id
        for outcome in (assign(roster, "round_robin", uuid.uuid4(), NET) for _ in range(7000))
        if isinstance(outcome, Assignment)
    )
    assert set(given.values()) == {1000}


def test_least_loaded_always_picks_a_least_loaded_present_agent_while_tickets_are_resolved_and_agents_come_and_go() -> (
    None
):
    rng = random.Random(7)
    agents = {f"a{i:02d}": agent(f"a{i:02d}") for i in range(25)}
    roster = Roster(agents)
    held: dict[str, list[int]] = {a: [] for a in agents}
    for n in range(8000):
        if n % 250 == 0:
            for agent_id in rng.sample(sorted(agents), 3):
                agents[agent_id] = Agent(**{**agents[agent_id].__dict__, "available": not agents[agent_id].available})
            roster = Roster(agents, loads=roster.loads, last_given=roster.last_given)
        fewest = min(roster.loads.get(a, 0) for a, ag in agents.items() if ag.available)
        outcome = assign(roster, "least_loaded", uuid.uuid4(), NET)
        assert isinstance(outcome, Assignment)
        assert agents[outcome.agent_id].available
        assert roster.loads.get(outcome.agent_id, 0) == fewest
        roster.hold(outcome.agent_id, +1)
        held[outcome.agent_id].append(n)
        if rng.random() < 0.5:  # someone resolves their oldest ticket
            resolver = rng.choice([a for a, tickets in held.items() if tickets])
            held[resolver].pop(0)
            roster.hold(resolver, -1)
    # Among the agents present at the end, nobody holds more than one ticket above the least loaded,
    # except agents just back (they hold what they held when they left, which can only be less).
    assert all(roster.loads.get(a, 0) == len(tickets) for a, tickets in held.items())


def test_least_loaded_shares_ties_evenly_and_picks_the_same_agent_for_the_same_ticket() -> None:
    roster = Roster({f"a{i}": agent(f"a{i}") for i in range(10)})
    tickets = [uuid.uuid4() for _ in range(10_000)]
    given = Counter(
        outcome.agent_id
        for outcome in (assign(roster, "least_loaded", t, NET) for t in tickets)
        if isinstance(outcome, Assignment)
    )
    assert min(given.values()) > 800 and max(given.values()) < 1200  # 1,000 each, give or take chance
    again = assign(roster, "least_loaded", tickets[0], NET)
    first = assign(roster, "least_loaded", tickets[0], NET)
    assert again == first


def test_least_loaded_prefers_the_agent_with_fewest_open_tickets() -> None:
    roster = Roster({"a": agent("a"), "b": agent("b"), "c": agent("c")}, loads={"a": 3, "b": 1, "c": 2})
    outcome = assign(roster, "least_loaded", uuid.uuid4(), NET)
    assert isinstance(outcome, Assignment)
    assert (outcome.agent_id, outcome.reason) == ("b", "least loaded (1 open) of 3 agents of 'L2-network'")
