"""Bulk import of customers into intake's directory: ``python -m services.intake.directory_import FILE``.

    python -m services.intake.directory_import customers.csv [--rejected rejected.csv] [--dry-run]

CSV (a header row; list columns ``social_handles``, ``hardware``, ``software``
separated by ``;``; ``vip`` is true/false/yes/no/1/0) or JSON (a list of
customers, or ``{"customers": [...]}``). Each valid row adds or replaces the
customer with that user id. Rows that cannot be stored (a missing name, a
phone number that is none, an e-mail another customer holds) are rejected
with the row's line and the reason; the others are imported. Progress goes to
stderr; the last line on stdout is a JSON summary. The database is
``INTAKE_DATABASE_URL``; exit status 0 when no row was rejected, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.settings import ConfigError, load
from services.intake.adapters.directory_store import DirectoryStore
from services.intake.config import Settings
from services.intake.customer_entry import CustomerEntry
from services.intake.domain import Customer, DuplicateCustomer

CHUNK = 500
LIST_COLUMNS = ("social_handles", "hardware", "software")


@dataclass(frozen=True)
class Row:
    line: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    line: int
    user_id: str
    reason: str


def rows(path: Path) -> Iterator[Row]:
    """The rows of a CSV or JSON file, each with the line it starts on."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        document = json.loads(text)
        entries = document.get("customers") if isinstance(document, dict) else document
        if not isinstance(entries, list):
            raise ValueError('expected a JSON list of customers or {"customers": [...]}')
        for index, entry in enumerate(entries):
            yield Row(index + 1, entry if isinstance(entry, dict) else {"(entry)": entry})
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for record in reader:
        fields: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in record.items() if k is not None and v}
        if None in record:
            fields["(extra columns)"] = record[None]  # type: ignore[index]
        for column in LIST_COLUMNS:
            if column in fields:
                fields[column] = [item.strip() for item in fields[column].split(";") if item.strip()]
        yield Row(reader.line_num, fields)


def validate(row: Row, region: str) -> Customer:
    try:
        return CustomerEntry.model_validate(row.fields).customer(region)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        ) from None


async def import_rows(
    store: DirectoryStore, source: Iterator[Row], region: str, *, dry_run: bool = False
) -> tuple[int, list[Rejected]]:
    """Import every valid row; (customers imported, rejected rows)."""
    imported, rejected, chunk = 0, [], []
    started = time.monotonic()
    for row in source:
        try:
            chunk.append((row, validate(row, region)))
        except ValueError as exc:
            rejected.append(Rejected(row.line, str(row.fields.get("user_id", "")), str(exc)))
        if len(chunk) >= CHUNK:
            imported += await _store(store, chunk, rejected, dry_run)
            chunk = []
            _progress(imported, len(rejected), started)
    imported += await _store(store, chunk, rejected, dry_run)
    _progress(imported, len(rejected), started)
    return imported, rejected


async def _store(
    store: DirectoryStore, chunk: list[tuple[Row, Customer]], rejected: list[Rejected], dry_run: bool
) -> int:
    if not chunk or dry_run:
        return len(chunk)
    try:
        await store.put_many([customer for _, customer in chunk], source="import")
        return len(chunk)
    except DuplicateCustomer:
        pass  # find which rows: one by one
    stored = 0
    for row, customer in chunk:
        try:
            await store.put(customer, source="import")
            stored += 1
        except DuplicateCustomer as exc:
            rejected.append(Rejected(row.line, customer.user_id, str(exc)))
    return stored


def _progress(imported: int, rejected: int, started: float) -> None:
    rate = imported / max(time.monotonic() - started, 1e-9)
    print(f"[directory import] {imported} imported, {rejected} rejected ({rate:.0f}/s)", file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    store = DirectoryStore(settings.database_url, settings.default_region)
    try:
        await store.create_tables()
        imported, rejected = await import_rows(store, rows(args.file), settings.default_region, dry_run=args.dry_run)
    finally:
        await store.close()
    for r in rejected:
        print(f"{args.file}:{r.line}: {r.user_id or '(no user_id)'}: {r.reason}", file=sys.stderr)
    if args.rejected:
        with args.rejected.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "user_id", "reason"])
            writer.writerows((r.line, r.user_id, r.reason) for r in sorted(rejected, key=lambda r: r.line))
    summary = {"file": str(args.file), "imported": imported, "rejected": len(rejected), "dry_run": args.dry_run}
    print(json.dumps(summary))
    return 1 if rejected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import customers (CSV or JSON) into intake's directory.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--rejected", type=Path, help="write the rejected rows (line, user_id, reason) to this CSV")
    parser.add_argument("--dry-run", action="store_true", help="validate only; store nothing")
    args = parser.parse_args(argv)
    try:
        settings = load(Settings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args, settings))
    except (OSError, ValueError, csv.Error) as exc:
        print(f"cannot import {args.file}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
