"""Bulk import of customers from CSV and JSON: valid rows stored, the others reported by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from contracts.incidents import ContactDetails
from services.intake.adapters.directory_store import DirectoryStore
from services.intake.directory_import import import_rows, rows

ROOT = Path(__file__).resolve().parents[2]

CSV = """user_id,name,email,phone,social_handles,department,vip,hardware
u-1,Ada Lovelace,ada@example.com,020 7946 0018,@ada_l;@ada@mastodon.example,Finance,yes,ThinkPad X1;Dell monitor
u-2,,nameless@example.com,,,,,
u-3,Grace Hopper,grace@example.com,call reception,,,,
u-4,Copy Cat,ADA@example.com,,,,,
u-5,Alan Turing,alan@example.com,(0161) 496-0742,,Research,no,
"""


async def test_a_csv_import_stores_the_valid_rows_and_reports_the_others_by_line(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    store = DirectoryStore(database_url, "GB")
    await store.create_tables()
    try:
        imported, rejected = await import_rows(store, rows(path), "GB")
        assert imported == 2 and await store.count() == 2
        reasons = {r.line: (r.user_id, r.reason) for r in rejected}
        assert set(reasons) == {3, 4, 5}
        assert "name" in reasons[3][1] and "not a phone number" in reasons[4][1]
        assert reasons[5] == ("u-4", "email 'ada@example.com' is already used by customer 'u-1'")
        ada = await store.get("u-1")
        assert ada is not None and ada.vip and ada.hardware == ("ThinkPad X1", "Dell monitor")
        assert ada.phone == "+442079460018" and ada.social_handles == ("@ada_l", "@ada@mastodon.example")
        assert len(await store.directory_for([ContactDetails(phone="0161 496 0742")])) == 1
    finally:
        await store.close()


def test_the_import_command_reads_json_and_writes_the_rejected_rows(tmp_path: Path) -> None:
    path = tmp_path / "customers.json"
    path.write_text(json.dumps({"customers": [{"user_id": "u-1", "name": "Ada"}, {"user_id": "u-2", "nme": "typo"}]}))
    report = tmp_path / "rejected.csv"
    env = {"INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "services.intake.directory_import", str(path), "--rejected", str(report)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "file": str(path),
        "imported": 1,
        "rejected": 1,
        "dry_run": False,
    }
    assert "1 imported, 1 rejected" in done.stderr
    assert f"{path}:2: u-2: " in done.stderr and "nme: Extra inputs are not permitted" in done.stderr
    assert report.read_text().splitlines()[0] == "line,user_id,reason"
