"""Reading a text/event-stream the way the HTML specification says."""

from __future__ import annotations

from helpdesk_client.sse import EventStreamParser


def feed(parser: EventStreamParser, text: str) -> list:  # type: ignore[type-arg]
    return [e for line in text.split("\n") if (e := parser.feed(line)) is not None]


def test_an_event_is_its_id_type_and_json_data_dispatched_on_a_blank_line() -> None:
    parser = EventStreamParser()
    events = feed(
        parser,
        'id: 7\nevent: ticket.claimed\ndata: {"type": "ticket.claimed", "data": {"number": "HD-1"}}\n\n',
    )
    assert [(e.id, e.type, e.number) for e in events] == [("7", "ticket.claimed", "HD-1")]
    assert parser.last_event_id == "7"


def test_comments_are_keep_alives_and_dispatch_nothing() -> None:
    parser = EventStreamParser()
    assert feed(parser, ": keep-alive\n\n: keep-alive\n\n") == []
    assert parser.last_event_id is None


def test_data_lines_join_with_newlines_and_a_leading_space_is_dropped_once() -> None:
    events = feed(EventStreamParser(), 'data: {"a":\ndata:  1}\n\n')
    assert events[0].data == {"a": 1} and events[0].type == "message"


def test_the_last_id_carries_over_to_events_without_one_and_retry_is_kept() -> None:
    parser = EventStreamParser()
    events = feed(
        parser,
        'retry: 2500\nid: 3\ndata: {}\n\ndata: {"x": 1}\n\nid: bad\x00id\ndata: {}\n\n',
    )
    assert [e.id for e in events] == ["3", "3", "3"]  # an id with NUL is ignored
    assert parser.retry_ms == 2500


def test_an_event_without_data_is_not_dispatched_and_text_data_is_kept() -> None:
    parser = EventStreamParser()
    assert feed(parser, "id: 9\nevent: ping\n\n") == [] and parser.last_event_id == "9"
    assert feed(parser, "data: hello\n\n")[0].data == {"text": "hello"}
