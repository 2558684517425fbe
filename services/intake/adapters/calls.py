"""Calls in progress, as the CTI system's events have described them so far.

A call's facts arrive one event at a time (started, IVR choices, answered,
ended); the incident is reported once they are known. Every event's effect
is an upsert, so an event the CTI system sends again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runtime.database import UtcDateTime, is_sqlite, make_engine

metadata = MetaData()
calls = Table(
    "intake_calls",
    metadata,
    Column("call_id", String(200), primary_key=True),
    Column("caller", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("facts", JSON, nullable=False),
)


@dataclass(frozen=True)
class Call:
    call_id: str
    caller: str
    started_at: datetime
    components: tuple[str, ...] = ()
    urgency: str | None = None
    impact: str | None = None
    agent_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        return {
            "components": list(self.components),
            "urgency": self.urgency,
            "impact": self.impact,
            "agent_id": self.agent_id,
        }

    @classmethod
    def of(cls, call_id: str, caller: str, started_at: datetime, facts: dict[str, Any]) -> Call:
        return cls(call_id, caller, started_at, tuple(facts.get("components") or ()), facts.get("urgency"),
                   facts.get("impact"), facts.get("agent_id"))  # fmt: skip

    def but(self, **changes: Any) -> Call:
        return replace(self, **changes)


class CallBook:
    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)

    async def create_tables(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self._engine.dispose()

    async def get(self, call_id: str) -> Call | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(calls).where(calls.c.call_id == call_id))).first()
        return Call.of(row.call_id, row.caller, row.started_at, row.facts) if row else None

    async def save(self, call: Call) -> None:
        insert = sqlite_insert if is_sqlite(self._engine) else pg_insert
        row = {"call_id": call.call_id, "caller": call.caller, "started_at": call.started_at, "facts": call.facts()}
        statement = insert(calls).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=["call_id"], set_={"facts": statement.excluded.facts}
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement)
