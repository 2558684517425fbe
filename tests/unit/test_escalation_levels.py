"""The levels file: the shipped one is valid; a wrong one stops start-up naming file, line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.settings import ConfigError
from services.escalation.config import SHIPPED_LEVELS, Settings
from services.escalation.domain.policy import Level
from services.escalation.levels import LevelsFileError, load_levels, parse_levels

GOOD = """\
levels:
  - level: 1
    name: L1
    queue: null
    email: l1@helpdesk.example
  - level: 2
    name: L2
    queue: L2-specialists
    email: l2@helpdesk.example
"""


def problem(text: str) -> str:
    with pytest.raises(LevelsFileError) as caught:
        parse_levels(text, "levels.yaml")
    return caught.value.message


def test_the_shipped_levels_file_holds_three_levels_with_their_queues_and_addresses() -> None:
    assert Settings().levels_file == SHIPPED_LEVELS
    levels = load_levels(SHIPPED_LEVELS)
    assert [(lvl.number, lvl.queue) for lvl in levels] == [(1, None), (2, "L2-specialists"), (3, "L3-engineering")]
    assert levels[1].email == "l2-oncall@helpdesk.example"


def test_a_valid_file_gives_its_levels_in_order() -> None:
    assert parse_levels(GOOD, "x") == (
        Level(1, "L1", None, "l1@helpdesk.example"),
        Level(2, "L2", "L2-specialists", "l2@helpdesk.example"),
    )


def test_broken_yaml_names_the_file_and_line() -> None:
    assert problem("levels:\n  - level: 1\n    name: [L1\n").startswith("levels.yaml:4: not valid YAML")


def test_a_file_without_levels_is_rejected() -> None:
    assert "non-empty list 'levels'" in problem("tiers: []\n")
    assert "non-empty list 'levels'" in problem("")


def test_levels_out_of_order_name_the_line_of_the_wrong_entry() -> None:
    text = GOOD.replace("level: 2", "level: 3")
    assert problem(text) == (
        "levels.yaml:6: expected level 2 here, found level 3 (levels are numbered 1, 2, 3... in order)"
    )


def test_a_higher_level_without_a_queue_is_rejected() -> None:
    assert problem(GOOD.replace("queue: L2-specialists", "queue: null")) == (
        "levels.yaml:6: level 2 needs a queue or an on-call agent (only level 1 uses the routed queue)"
    )


def test_a_higher_level_may_be_only_its_on_call_agent() -> None:
    levels = parse_levels(GOOD.replace("queue: L2-specialists", "queue: null\n    agent: alice"), "levels.yaml")
    assert (levels[1].queue, levels[1].agent) == (None, "alice")


def test_a_bad_email_address_names_the_field() -> None:
    message = problem(GOOD.replace("l2@helpdesk.example", "l2-oncall"))
    assert message == "levels.yaml:6: level entry, email: 'l2-oncall' is not an e-mail address"


def test_an_unknown_key_in_an_entry_is_rejected_not_ignored() -> None:
    message = problem(GOOD.replace("    name: L2\n", "    name: L2\n    pager: 555\n"))
    assert message.startswith("levels.yaml:6: level entry, pager:")


def test_two_levels_on_one_queue_are_rejected() -> None:
    text = GOOD + "  - level: 3\n    name: L3\n    queue: L2-specialists\n    email: l3@helpdesk.example\n"
    assert problem(text) == "levels.yaml:10: queue 'L2-specialists' is used by two levels"


def test_a_missing_file_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_levels(missing)
    assert str(missing) in caught.value.message and caught.value.code == 2


def test_a_level_may_name_more_contacts_and_an_on_call_agent() -> None:
    text = GOOD + """\
  - level: 3
    name: L3
    queue: L3-engineering
    email: l3@helpdesk.example
    agent: alice
    notify:
      - {method: sms, phone: "+4930123456"}
      - {method: pager, id: l3-pager}
      - {method: alarm}
      - {method: flag}
"""
    level = parse_levels(text, "levels.yaml")[2]
    assert level.agent == "alice"
    assert [c.method for c in level.notify] == ["sms", "pager", "alarm", "flag"]
    assert level.notify[0].phone == "+4930123456"


@pytest.mark.parametrize(("contact", "says"), [
    ('{method: sms}', "a sms contact needs phone"),
    ('{method: pager}', "a pager contact needs id or phone"),
    ('{method: sms, phone: "030 1234"}', "not a phone number in international form"),
    ('{method: carrier-pigeon}', "notify.0.method"),
])
def test_a_contact_that_cannot_be_reached_names_its_line(contact: str, says: str) -> None:
    message = problem(GOOD + f"    notify:\n      - {contact}\n")
    assert message.startswith("levels.yaml:6:") and says in message, message
