"""One service process: HTTP (health, readiness, metrics, the service's API),
the Kafka broker and its consumers, and supervised background workers.

Start-up order: the service's own start-up hooks (open and migrate its
database), then Kafka (consumers begin), then workers. Shut-down on SIGTERM
is the reverse: readiness turns 503, consumers stop taking messages and the
in-flight batch finishes and commits, workers are cancelled, then the hooks
close storage. Nothing half-done is committed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from fastapi import FastAPI

from contracts.envelope import Envelope
from contracts.topics import Topic
from runtime import problems
from runtime.auth import Authenticator, AuthSettings, TokenVerifier
from runtime.consumer import Handler, RetryPolicy, Subscription, subscribe
from runtime.health import Readiness, health_router
from runtime.http import Guard, RequestGuard
from runtime.kafka import Publisher, client_security_options, make_broker
from runtime.logs import configure_logging, get_logger, kafka_outage
from runtime.metrics import router as metrics_router
from runtime.settings import CommonSettings, HttpSettings, load

Hook = Callable[[], Awaitable[None]]
Worker = Callable[[], Awaitable[None]]
AUTHENTICATION_ERRORS = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    UnsupportedSaslMechanismError,
)

TOPIC_LOOKS = 10  # × 0.5 s before start-up fails naming the missing topics

log = get_logger("runtime.service")


class Service:
    def __init__(
        self,
        name: str,
        common: CommonSettings,
        http: HttpSettings,
        *,
        description: str,
        version: str = "0.1.0",
    ) -> None:
        self.name = name
        self.common = common
        self.http = http
        self.broker = make_broker(name, common, description=description)
        self.publisher = Publisher(self.broker, name, common.kafka_topic_prefix)
        self.readiness = Readiness()
        self.readiness.add("kafka", self._kafka_ready)
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._stopping: list[Callable[[], None]] = []
        self._workers: dict[str, Worker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._subscribed: list[Topic] = []
        self._retry = RetryPolicy(
            max_attempts=common.kafka_max_attempts,
            first_backoff_s=common.kafka_retry_backoff_ms / 1000,
        )
        self.app = FastAPI(
            title=f"helpdesk {name}",
            description=description,
            version=version,
            lifespan=self._lifespan,
        )
        self.app.include_router(health_router(self.readiness))
        self.app.include_router(metrics_router)
        # Every request passes the guard: bodies capped, credentials checked before anything is parsed.
        self.guard = Guard(max_body_bytes=http.max_request_bytes)
        self.app.add_middleware(RequestGuard, guard=self.guard)
        problems.install(self.app)

    # --- wiring -------------------------------------------------------------

    def subscribe(
        self,
        topic: Topic,
        handler: Handler,
        *,
        accepts: Sequence[type[Envelope[Any]]],
        group: str | None = None,
        max_records: int = 500,
    ) -> None:
        sub = Subscription(
            topic=topic,
            # Groups carry the deployment's prefix like topics do: two environments
            # sharing a cluster must not share consumer offsets.
            group=self.common.kafka_topic_prefix + (group or f"helpdesk-{self.name}"),
            handler=handler,
            accepts=tuple(accepts),
            max_records=max_records,
            policy=self._retry,
        )
        subscribe(self.broker, self.publisher, self.name, sub)
        self._subscribed.append(topic)

    def require_credentials(
        self, *, api_keys: dict[str, str] | None = None, auth: AuthSettings | None = None
    ) -> Authenticator:
        """Every path but the operational ones needs a person's token (or one of ``api_keys``).

        Tokens are checked as ``AUTH_*`` says (``auth`` when given, else the environment);
        without a key set or secret this raises ConfigError unless HELPDESK_DEVELOPMENT is on.
        """
        verifier = TokenVerifier(auth or load(AuthSettings), development=self.common.helpdesk_development)
        self.guard.authenticate = Authenticator(verifier, api_keys)
        self.on_startup(verifier.start)
        self.readiness.add("identity-keys", verifier.ready)
        return self.guard.authenticate

    def on_startup(self, hook: Hook) -> None:
        self._startup.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        self._shutdown.append(hook)

    def on_stopping(self, callback: Callable[[], None]) -> None:
        """Called in the event loop the moment SIGTERM/SIGINT arrives, before open HTTP
        connections are drained: for what keeps a connection open (a live stream) and must end
        for the drain to finish. (Shut-down hooks run only after the drain.)"""
        self._stopping.append(callback)

    def add_worker(self, name: str, worker: Worker) -> None:
        """A background loop, restarted with backoff if it fails; readiness reports it."""
        self._workers[name] = worker

        async def alive() -> bool:
            task = self._tasks.get(name)
            return task is not None and not task.done()

        self.readiness.add(f"worker:{name}", alive)

    # --- lifecycle ----------------------------------------------------------

    async def _kafka_ready(self) -> bool:
        return await self.broker.ping(1.0)

    async def _check_topics(self) -> None:
        """Fail start-up with the names of missing topics, rather than wait on them forever."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.common.kafka_bootstrap_servers.split(","),
            client_id=f"helpdesk-{self.name}-startup",
            **client_security_options(self.common),
        )
        try:
            await admin.start()
        except Exception:  # noqa: BLE001 - unreachable or refused: _start_broker tells which
            return
        wanted = {self.publisher.topic_name(t) for t in self._subscribed}
        try:
            # A few looks, not one: topics created a moment ago (by the topics Job) may not be listed yet.
            for _look in range(TOPIC_LOOKS):
                missing = sorted(wanted - set(await admin.list_topics()))
                if not missing:
                    return
                await asyncio.sleep(0.5)
        finally:
            await admin.close()
        if missing:
            raise RuntimeError(
                f"topics missing on {self.common.kafka_bootstrap_servers}: {', '.join(missing)}; create them with "
                "`python -m runtime.topics_admin` (the topics Job in Kubernetes, the init service in compose)"
            )

    async def _start_broker(self) -> None:
        deadline = time.monotonic() + self.common.kafka_connect_timeout_s
        while True:
            try:
                await self.broker.start()
                return
            except Exception as exc:
                await self._refuse_bad_credentials()
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"cannot reach Kafka at {self.common.kafka_bootstrap_servers} "
                        f"(KAFKA_BOOTSTRAP_SERVERS) after {self.common.kafka_connect_timeout_s:.0f}s: {exc}"
                    ) from exc
                log.warning("kafka not reachable yet, retrying", error=str(exc))
                await asyncio.sleep(1.0)

    async def _refuse_bad_credentials(self) -> None:
        """Wrong credentials do not get better by waiting: say so at once, not "cannot reach Kafka" later.

        aiokafka's bootstrap logs the broker's authentication error and raises a plain
        connection error, so one connection of our own learns the real cause.
        """
        host, _, port = self.common.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    int(port),
                    client_id=f"helpdesk-{self.name}-probe",
                    **client_security_options(self.common),
                ),
                10,
            )
        except AUTHENTICATION_ERRORS as exc:
            raise RuntimeError(
                f"Kafka at {self.common.kafka_bootstrap_servers} refused our credentials "
                f"(KAFKA_SASL_MECHANISM / KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD): {type(exc).__name__}: {exc}"
            ) from exc
        except Exception:  # noqa: BLE001 - not an authentication problem: the caller reports and retries
            return
        conn.close()

    async def _supervise(self, name: str, worker: Worker) -> None:
        backoff = 0.5
        while True:
            try:
                await worker()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker failed, restarting", worker=name, backoff_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        if self.common.helpdesk_development:
            log.warning("HELPDESK_DEVELOPMENT is on: development credentials are accepted; never in a deployment")
        for hook in self._startup:
            await hook()
        await self._check_topics()
        await self._start_broker()
        for name, worker in self._workers.items():
            self._tasks[name] = asyncio.create_task(self._supervise(name, worker), name=name)
        # A Kafka outage is logged once, when the readiness probe confirms it, and once when it ends.
        self._tasks["kafka-outage"] = asyncio.create_task(kafka_outage.watch(self._kafka_ready), name="kafka-outage")
        self.readiness.started = True
        log.info("service started", http_port=self.http.http_port)
        try:
            yield
        finally:
            self.readiness.stopping = True
            log.info("service stopping")
            # Workers first (they may publish through the broker), then the consumers,
            # which finish and commit their in-flight batch before the broker closes.
            await self._stop_workers()
            await self.broker.stop()
            for hook in reversed(self._shutdown):
                await hook()
            log.info("service stopped")

    async def _stop_workers(self) -> None:
        """Cancel the workers and wait for them, at most the shutdown timeout: a worker that does not
        stop when cancelled is a bug, logged by name, and must not keep the whole service from stopping."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=self.http.shutdown_timeout_s)
        if stuck:
            log.error(
                "workers did not stop when cancelled; leaving them behind",
                workers=sorted(t.get_name() for t in stuck),
                waited_s=self.http.shutdown_timeout_s,
            )

    def run(self) -> None:
        configure_logging(self.name, self.common.log_level, self.common.log_format)
        config = uvicorn.Config(
            self.app,
            host=self.http.http_host,
            port=self.http.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(self.http.shutdown_timeout_s),
            lifespan="on",
        )
        # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a completed drain
        # is a clean exit (status 0), which is what an orchestrator should see.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_cleanly)
        _Server(config, self._signalled).run()

    def _signalled(self) -> None:
        self.readiness.stopping = True
        for callback in self._stopping:
            callback()


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service the moment a shut-down signal arrives."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_signal = on_signal
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._loop is not None and not self.should_exit:
            # A signal handler interrupts the loop's thread anywhere: hand the work to the loop.
            self._loop.call_soon_threadsafe(self._on_signal)
        super().handle_exit(sig, frame)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
