"""The ``helpdesk`` command line driven as an agent would, against the real ticket service.

Each command's output is checked as people see it (tables) and as scripts
read it (--json), and each expected failure by its exit code and message.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpdesk_client.cli import app
from typer.testing import CliRunner, Result

from tests.support.ticket_service_http import (
    TicketService,
    free_port,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


class Agent:
    """Runs ``helpdesk`` commands as one agent, with a config dir of its own."""

    def __init__(self, service: TicketService, home: Path, token: str | None) -> None:
        self.service, self.home, self.token = service, home, token

    def env(self) -> dict[str, str]:
        env = {
            "HELPDESK_URL": self.service.url,
            "XDG_CONFIG_HOME": str(self.home),
            "COLUMNS": "200",
        }
        env["HELPDESK_TOKEN"] = self.token or ""
        return env

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input, env={**self.env(), **(env or {})})

    def json(self, *args: str, input: str | None = None) -> Any:
        result = self(*args, "--json", input=input)
        assert result.exit_code == 0, result.output + result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def alice(ticket_service: TicketService, home: Path) -> Agent:
    return Agent(ticket_service, home, ticket_service.token("alice"))


def a_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stdout}{result.stderr}"
    return result.stdout


def test_login_stores_the_token_readable_only_by_its_owner_and_later_commands_use_it(
    ticket_service: TicketService,
    home: Path,
) -> None:
    nobody = Agent(ticket_service, home, None)
    token = ticket_service.token("alice", ("agent", "lead"))
    said = ok(nobody("login", "--url", ticket_service.url, input=token + "\n"))
    assert "alice" in said and "agent, lead" in said
    stored = home / "helpdesk" / "credentials"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert json.loads(stored.read_text()) == {"url": ticket_service.url, "token": token}
    queues = nobody("queues", "--json", env={"HELPDESK_URL": ""})  # URL and token both from the file
    assert queues.exit_code == 0 and isinstance(json.loads(queues.stdout), list)
    assert "Logged out" in ok(nobody("logout"))
    assert not stored.exists()


def test_login_refuses_a_bad_token_without_saving_it(ticket_service: TicketService, home: Path) -> None:
    nobody = Agent(ticket_service, home, None)
    result = nobody("login", "--token", "not-a-token")
    assert result.exit_code == 5 and "refused the token" in result.stderr
    assert not (home / "helpdesk" / "credentials").exists()
    assert "Traceback" not in result.output + result.stderr


def test_without_credentials_or_with_bad_ones_commands_exit_5(ticket_service: TicketService, home: Path) -> None:
    unknown = Agent(ticket_service, home, None)
    result = unknown("queues")
    assert result.exit_code == 5 and "not logged in" in result.stderr
    expired = Agent(ticket_service, home, ticket_service.token("alice", ttl_s=-120))
    result = expired("tickets", "list")
    assert result.exit_code == 5 and "helpdesk login" in result.stderr


def test_an_agents_day_queues_next_note_resolve(ticket_service: TicketService, alice: Agent) -> None:
    queue = a_queue()
    first, second = ticket_service.open_tickets(2, queue=queue, subject="Printer jammed")

    table = ok(alice("queues"))
    assert queue in table and "Waiting" in table
    listed = {q["queue"]: q for q in alice.json("queues")}
    assert listed[queue]["depth"] == 2

    taken = ok(alice("next", queue))
    assert first in taken and "Printer jammed 1" in taken and "Timeline" in taken
    taken_json = alice.json("next", queue)
    assert taken_json["number"] == second and taken_json["assignee"] == "alice"
    assert "Nobody is waiting" in ok(alice("next", queue))
    assert alice.json("next", queue) is None

    assert "noted" in ok(alice("note", first, "Called back, no answer"))
    noted = alice.json("note", first, "--public", "--stdin", input="We are on it\n")
    notes = [h["data"] for h in noted["history"] if h["type"] == "ticket.note_added"]
    assert [(n["text"], n["visibility"]) for n in notes] == [
        ("Called back, no answer", "internal"),
        ("We are on it", "public"),
    ]
    resolved = ok(alice("resolve", first, "Replaced the toner"))
    assert first in resolved and "resolved" in resolved
    shown = ok(alice("tickets", "show", first))
    assert "Replaced the toner" in shown and "note_added" in shown and "Called back, no answer" in shown


def test_a_note_can_be_written_in_the_agents_editor(
    ticket_service: TicketService,
    alice: Agent,
    tmp_path: Path,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "body = open(path).read()\n"
        "open(path, 'w').write('Checked the logs\\n' + body)\n"
    )
    result = alice(
        "note",
        number,
        "--json",
        env={"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""},
    )
    history = json.loads(ok(result))["history"]
    assert history[-1]["data"]["text"] == "Checked the logs"  # the instructions left out
    empty = alice("note", number, env={"EDITOR": "true", "VISUAL": ""})
    assert empty.exit_code == 2 and "empty note" in empty.stderr


def test_listing_searching_and_showing_in_tables_and_json(
    ticket_service: TicketService,
    alice: Agent,
) -> None:
    queue, word = a_queue(), f"fax{uuid.uuid4().hex[:6]}"
    numbers = ticket_service.open_tickets(7, queue=queue, subject=f"Broken {word}")
    table = ok(alice("tickets", "list", "--queue", queue, "--limit", "5"))
    assert len(set(re.findall(r"HD-\d+", table)) & set(numbers)) == 5 and "Subject" in table
    everything = alice.json("tickets", "list", "--queue", queue, "--limit", "0")
    assert sorted(t["number"] for t in everything) == sorted(numbers)
    found = alice.json("tickets", "search", word)
    assert sorted(t["number"] for t in found) == sorted(numbers)
    alice("claim", numbers[0])
    mine = alice.json("tickets", "list", "--mine", "--queue", queue)
    assert [t["number"] for t in mine] == [numbers[0]]
    shown = alice.json("tickets", "show", numbers[1])
    assert shown["number"] == numbers[1] and shown["history"][0]["type"] == "ticket.opened"
    old = alice.json("tickets", "show", numbers[1], "--as-of", shown["history"][0]["occurred_at"])
    assert old["version"] == 1
    line = ok(alice("line", queue))
    assert numbers[1] in line and numbers[0] not in line  # claimed: no longer waiting


def test_every_change_command_works_and_says_what_it_did(
    ticket_service: TicketService,
    alice: Agent,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    new_queue = a_queue()
    assert "claimed" in ok(alice("claim", number, "--expect-version", "3"))
    assert alice.json("status", number, "waiting_on_customer")["status"] == "waiting_on_customer"
    assert alice.json("priority", number, "1", "--reason", "CEO's laptop")["priority"] == 1
    assert alice.json("move", number, new_queue, "--reason", "hardware")["queue"] == new_queue
    assert "released" in ok(alice("release", number))
    alice("claim", number)
    assert alice.json("resolve", number, "--stdin", input="Swapped the disk\n")["resolution"] == "Swapped the disk"
    assert "reopened" in ok(alice("reopen", number, "--reason", "still clicking"))
    alice("resolve", number, "Swapped the controller")
    closed = ok(alice("close", number))
    assert "closed" in closed and number in closed


def test_deadlines_show_as_a_table_and_as_json(ticket_service: TicketService, alice: Agent) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    assert "no SLA deadlines yet" in ok(alice("deadlines", number))
    ticket_service.publish_deadlines(number)
    table = ok(alice("deadlines", number))
    assert "standard" in table and "resolution" in table and "running" in table
    assert alice.json("deadlines", number)["deadlines"][0]["kind"] == "resolution"


def test_expected_failures_exit_with_their_code_and_no_traceback(
    ticket_service: TicketService,
    alice: Agent,
    home: Path,
) -> None:
    number = ticket_service.open_ticket(queue=a_queue())
    bob = Agent(ticket_service, home, ticket_service.token("bob"))
    cases = {
        3: alice("tickets", "show", "HD-999999"),
        4: alice("claim", number, "--expect-version", "1"),
        2: alice("move", number, "", "--reason", "x"),  # the API refuses a blank queue
        6: (bob("claim", number), alice("resolve", number, "done"))[1],
        7: Agent(ticket_service, home, "t")("queues", env={"HELPDESK_URL": f"http://127.0.0.1:{free_port()}"}),
    }
    for code, result in cases.items():
        assert result.exit_code == code, (code, result.stdout, result.stderr)
        assert result.stderr.startswith("error:") and "Traceback" not in result.output + result.stderr
    assert "version 3" in cases[4].stderr and "only_owner_can_resolve" in cases[6].stderr
    for usage in (
        ("status", number, "sleeping"),
        ("priority", number, "9", "--reason", "x"),
        ("claim",),
    ):
        assert alice(*usage).exit_code == 2, usage


def test_the_installed_helpdesk_command_runs(ticket_service: TicketService, alice: Agent) -> None:
    command = Path(sys.executable).parent / "helpdesk"
    env = {**os.environ, **alice.env()}
    result = subprocess.run(
        [str(command), "queues", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    completion = subprocess.run(
        [str(command), "--show-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completion.returncode == 0 and "complete" in completion.stdout
