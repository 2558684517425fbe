"""Wiring: intake's database, its channels (HTTP, SMTP, webhooks, chat), and its three consumers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError

import services.intake
from contracts.incidents import DIRECTORY_MESSAGES, IncidentReported
from contracts.tickets import TICKET_EVENTS
from contracts.topics import INCIDENTS_REPORTED, TICKET_EVENTS_TOPIC, Topic
from runtime.kafka import client_security_options
from runtime.logs import get_logger
from runtime.service import Service
from runtime.settings import CommonSettings, ConfigError
from runtime.topics_admin import ensure_topics
from services.intake.adapters.calls import CallBook
from services.intake.adapters.directory_file import load_directory
from services.intake.adapters.directory_store import DirectoryStore
from services.intake.adapters.flooded_incidents import FloodedIncidents
from services.intake.adapters.ticket_threads import TicketThreads
from services.intake.api import Rejected, incidents_router
from services.intake.api_keys import READ_DIRECTORY, REPORT, WRITE_DIRECTORY, ApiKeys
from services.intake.channels.chat import chat_router
from services.intake.channels.mail_authentication import MailTrust
from services.intake.channels.phone_api import phone_router
from services.intake.channels.sms_api import sms_router
from services.intake.channels.smtp import MailReceiver, serve_smtp
from services.intake.channels.social_api import social_router
from services.intake.config import Settings
from services.intake.customers_api import customers_router
from services.intake.domain import Directory, DuplicateCustomer
from services.intake.flood import FloodGuard, TopicFloodGuard
from services.intake.handlers import (
    FloodControl,
    IdentifyIncidents,
    KeepDirectory,
    LearnTicketThreads,
)
from services.intake.reporting import Reporter

log = get_logger("intake")
IDENTIFY_GROUP = "helpdesk-intake"  # the consumer group identifying reported incidents


@dataclass(frozen=True)
class _Storage:
    directory: DirectoryStore
    threads: TicketThreads
    calls: CallBook


def build(common: CommonSettings, settings: Settings) -> Service:
    """The intake service; raises DirectoryFileError (naming file and line) if the directory file is invalid,
    ConfigError if a setting is."""
    seed = load_directory(settings.directory_file, settings.default_region)
    keys = _api_keys(settings, common)
    service = Service("intake", common, settings, description=(services.intake.__doc__ or "").strip())
    storage = _storage(service, settings, seed)
    _channels(service, common, settings, storage, keys)
    _consumers(service, common, settings, storage)
    return service


def _storage(service: Service, settings: Settings, seed: Directory) -> _Storage:
    storage = _Storage(
        DirectoryStore(settings.database_url, settings.default_region),
        TicketThreads(settings.database_url),
        CallBook(settings.database_url),
    )

    async def open_storage() -> None:
        await storage.threads.create_tables()
        await storage.calls.create_tables()
        await _seed_directory(storage.directory, seed, settings)

    async def close_storage() -> None:
        for store in (storage.directory, storage.threads, storage.calls):
            await store.close()

    service.on_startup(open_storage)
    service.on_shutdown(close_storage)
    service.readiness.add("database", storage.directory.ping)
    return storage


async def _seed_directory(directory: DirectoryStore, seed: Directory, settings: Settings) -> None:
    """Write the directory file's customers into the directory (at every start-up)."""
    await directory.create_tables()
    for attempt in range(3):
        try:
            await directory.put_many(seed.customers(), source="file")
            break
        except IntegrityError:  # another replica seeding the same rows at the same moment
            if attempt == 2:
                raise
            await asyncio.sleep(0.5 + attempt)
        except DuplicateCustomer as exc:
            raise RuntimeError(f"INTAKE_DIRECTORY_FILE {settings.directory_file}: {exc} in the directory") from None
    customers = await directory.count()
    log.info("customer directory ready", file=str(settings.directory_file), seeded=len(seed), customers=customers)


def _channels(service: Service, common: CommonSettings, settings: Settings, storage: _Storage, keys: ApiKeys) -> None:
    """Every way in: the HTTP API, the webhooks, the chat socket, the SMTP receiver."""
    guard = FloodGuard(settings.flood_window_s, settings.flood_max_per_sender)
    reporter = Reporter(service.publisher, settings.publish_timeout_s, guard, _flooded_incidents(service, common))
    wait_s = settings.wait_for_ticket_s
    reporting = Depends(keys.require(REPORT))
    app = service.app
    app.add_exception_handler(Rejected, _answer_rejected)  # type: ignore[arg-type]
    app.include_router(incidents_router(service.publisher, settings, guard), dependencies=[reporting])
    directory = storage.directory, settings.default_region
    app.include_router(customers_router(*directory, keys.require(READ_DIRECTORY), keys.require(WRITE_DIRECTORY)))
    app.include_router(sms_router(reporter, settings))  # signed by Twilio
    app.include_router(social_router(reporter, settings, reporting, storage.threads))  # Meta's webhook is signed by Meta
    app.include_router(phone_router(reporter, storage.calls, storage.threads, reporting, wait_s))
    app.include_router(chat_router(reporter, storage.threads, wait_s))  # the public widget: contacts unverified
    if keys.open:
        service.on_startup(_warn_open_endpoints)
    if settings.smtp_enabled:
        _smtp(service, settings, MailReceiver(reporter, storage.threads, _mail_trust(settings)))


def _smtp(service: Service, settings: Settings, receiver: MailReceiver) -> None:
    async def smtp() -> None:
        host, port = settings.smtp_host, settings.smtp_port
        await serve_smtp(
            receiver, host, port, settings.smtp_max_message_bytes, settings.smtp_hostname, settings.smtp_max_sessions
        )

    service.add_worker("smtp", smtp)  # a worker starts after Kafka: no 250 before we can publish


def _mail_trust(settings: Settings) -> MailTrust:
    trust = MailTrust(settings.trusted_authserv_ids, settings.mail_require_authentication)
    if trust.required and not trust.trusted_authserv_ids:
        log.warning(
            "INTAKE_MAIL_TRUSTED_AUTHSERV_IDS is not set: every mail is an unverified contact (a new ticket, "
            "its sender not identified); name your relay's authserv-id, or set INTAKE_MAIL_REQUIRE_AUTHENTICATION=false"
        )
    return trust


def _consumers(service: Service, common: CommonSettings, settings: Settings, storage: _Storage) -> None:
    """Reported incidents to identify; ticket events to learn ticket numbers from; the directory topic."""
    service.subscribe(
        INCIDENTS_REPORTED,
        IdentifyIncidents(
            storage.directory, settings.default_region, service.publisher, _topic_floods(service, common, settings)
        ),
        accepts=[IncidentReported],
        group=IDENTIFY_GROUP,
    )
    service.subscribe(
        TICKET_EVENTS_TOPIC, LearnTicketThreads(storage.threads), accepts=TICKET_EVENTS, group="helpdesk-intake-tickets"
    )
    customers_topic = directory_topic(settings.directory_topic)

    async def create_directory_topic() -> None:
        # Not in the registry (contracts/topics.py) yet, so not created with the others.
        security = client_security_options(common)
        prefix = common.kafka_topic_prefix
        await ensure_topics(common.kafka_bootstrap_servers, prefix, topics=(customers_topic,), security=security)

    service.on_startup(create_directory_topic)
    service.subscribe(
        customers_topic,
        KeepDirectory(storage.directory, settings.default_region),
        accepts=DIRECTORY_MESSAGES,
        group="helpdesk-intake-directory",
    )


def _topic_floods(service: Service, common: CommonSettings, settings: Settings) -> FloodControl | None:
    """The flood guard of the topic path, with where it sets flooded incidents aside (None: off, the default).

    Off unless configured: integrations publishing onto the topic are authenticated producers, and the
    loops the guard is for (an auto-responder, a spam burst) come in through SMTP and HTTP, guarded there.
    """
    limit = settings.flood_topic_max_per_sender
    if limit <= 0:
        return None
    guard = TopicFloodGuard(FloodGuard(settings.flood_window_s, limit))
    return FloodControl(guard, _flooded_incidents(service, common))


def _flooded_incidents(service: Service, common: CommonSettings) -> FloodedIncidents:
    return FloodedIncidents(service.publisher, service.name, common.kafka_topic_prefix + IDENTIFY_GROUP)


def _api_keys(settings: Settings, common: CommonSettings) -> ApiKeys:
    """The integrations' keys; without any, intake refuses to start unless HELPDESK_DEVELOPMENT is on (then open)."""
    try:
        keys = ApiKeys(settings.api_keys.get_secret_value() if settings.api_keys else "")
    except ValueError as exc:
        raise ConfigError(f"invalid configuration for Settings:\n  INTAKE_API_KEYS: {exc}") from None
    if keys.configured:
        return keys
    if common.helpdesk_development:
        return ApiKeys.open_to_anyone()
    raise ConfigError(
        "invalid configuration for Settings:\n  INTAKE_API_KEYS: required: without keys anyone could report "
        "incidents and read or change the customer directory. Give each integration a key "
        "(python -m services.intake.api_keys NAME --scopes report+write-directory), or set "
        "HELPDESK_DEVELOPMENT=true on a development machine to run open"
    )


async def _answer_rejected(_request: Request, rejected: Rejected):  # type: ignore[no-untyped-def]
    return rejected.response()


async def _warn_open_endpoints() -> None:
    log.warning(
        "HELPDESK_DEVELOPMENT is on and INTAKE_API_KEYS is not set: /v1/incidents, /v1/customers, "
        "the generic social and the phone endpoints accept any caller; never run so in a deployment"
    )


def directory_topic(name: str) -> Topic:
    """The directory topic (named in INTAKE_DIRECTORY_TOPIC until the registry has it)."""
    return Topic(
        name=name,
        partitions=3,
        key="user_id",
        description="Customers and their assets, published by a directory/CMDB integration (compacted).",
        messages=DIRECTORY_MESSAGES,
        config={"cleanup.policy": "compact"},
    )
