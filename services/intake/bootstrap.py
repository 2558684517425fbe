"""Wiring: the directory file, the HTTP channel, and the reported-topic consumer."""

from __future__ import annotations

import services.intake
from contracts.incidents import IncidentReported
from contracts.topics import INCIDENTS_REPORTED
from runtime.logs import get_logger
from runtime.service import Service
from runtime.settings import CommonSettings
from services.intake.adapters.directory_file import load_directory
from services.intake.api import incidents_router
from services.intake.config import Settings
from services.intake.handlers import IdentifyIncidents

log = get_logger("intake")


def build(common: CommonSettings, settings: Settings) -> Service:
    """The intake service; raises DirectoryFileError (naming file and line) if the directory is invalid."""
    directory = load_directory(settings.directory_file, settings.default_region)
    service = Service("intake", common, settings, description=(services.intake.__doc__ or "").strip())
    service.app.include_router(incidents_router(service.publisher, settings))
    service.subscribe(
        INCIDENTS_REPORTED,
        IdentifyIncidents(directory, settings.default_region, service.publisher),
        accepts=[IncidentReported],
        group="helpdesk-intake",
    )

    async def announce() -> None:
        log.info("customer directory loaded", file=str(settings.directory_file), customers=len(directory))

    service.on_startup(announce)
    return service
