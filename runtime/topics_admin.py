"""Create the registry's topics on a cluster: ``python -m runtime.topics_admin``.

Run by the local infrastructure script, by tests for their own prefix, and by
the Kubernetes Job. Existing topics are left alone (their partition count is
checked and a mismatch reported, never silently changed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts.topics import ALL_TOPICS, Topic


async def _until_listed(admin: AIOKafkaAdminClient, names: set[str], timeout_s: float = 30.0) -> None:
    """Return once the broker's metadata lists every topic just created.

    The controller acknowledges a creation before every broker's metadata cache
    has it; a service started in that gap would find its topics "missing".
    """
    deadline = time.monotonic() + timeout_s
    while missing := names - set(await admin.list_topics()):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"topics created but still not listed after {timeout_s:.0f}s: {', '.join(sorted(missing))}"
            )
        await asyncio.sleep(0.1)


async def ensure_topics(
    bootstrap_servers: str,
    prefix: str = "",
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    topics: tuple[Topic, ...] = ALL_TOPICS,
    security: Mapping[str, Any] | None = None,
    partitions: int | None = None,
) -> list[str]:
    """Create missing topics; return the names created.

    ``security`` holds aiokafka's TLS/SASL arguments (``runtime.kafka.client_security_options``).
    ``partitions`` overrides the registry's counts (tests use few, to keep a
    shared broker's open files down).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), client_id="helpdesk-topics-admin", **(security or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t.qualified(prefix) not in existing]
        new = [
            NewTopic(
                t.qualified(prefix),
                num_partitions=partitions or t.partitions,
                replication_factor=replication_factor,
                topic_configs={"min.insync.replicas": str(min_insync_replicas), **t.config},
            )
            for t in wanted
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another replica created it between our list and create
            await _until_listed(admin, {t.name for t in new})
        return [t.name for t in new]
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the help desk's Kafka topics.")
    parser.add_argument("--bootstrap-servers", default=None, help="defaults to $KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--prefix", default=None, help="defaults to $KAFKA_TOPIC_PREFIX")
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--min-insync-replicas", type=int, default=1)
    args = parser.parse_args(argv)
    from runtime.kafka import client_security_options
    from runtime.settings import CommonSettings, ConfigError, load

    try:
        common = load(CommonSettings)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    servers = args.bootstrap_servers or common.kafka_bootstrap_servers
    prefix = common.kafka_topic_prefix if args.prefix is None else args.prefix
    created = asyncio.run(
        ensure_topics(
            servers,
            prefix,
            replication_factor=args.replication_factor,
            min_insync_replicas=args.min_insync_replicas,
            security=client_security_options(common),
        )
    )
    for name in created:
        print(f"created {name}")
    print(f"{len(ALL_TOPICS)} topics present ({len(created)} created) on {servers}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
