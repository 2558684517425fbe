"""Create the registry's topics on a cluster and keep their configs: ``python -m runtime.topics_admin``.

Run by the local infrastructure script, by tests for their own prefix, and by
the Kubernetes Job. Missing topics are created with the registry's config.
Existing topics keep their partitions, but the command brings their config in
line with the registry (:func:`align_configs`): a release that changes a
topic's retention (the ticket events topic's became infinite) changes it on
clusters made by an older release too.

aiokafka 0.14's admin client has no IncrementalAlterConfigs (KIP-339), only
AlterConfigs, which replaces a topic's whole set of dynamic configs: so the
topic's current dynamic configs are read first and written back with the
registry's, and a config nobody asked to change (``min.insync.replicas``, one
an operator set) is kept. Only the topics Job does this (services that make a
topic at start-up, like intake, only create), and only for topics that differ.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

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


# DescribeConfigs v1+ says where each value comes from; 1 is a config set on the topic itself.
DYNAMIC_TOPIC_CONFIG = 1


async def align_configs(
    bootstrap_servers: str,
    prefix: str = "",
    *,
    topics: tuple[Topic, ...] = ALL_TOPICS,
    security: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, str]]:
    """Set the registry's config on existing topics whose config differs; returns {topic: what was changed}.

    Needs DescribeConfigs and AlterConfigs on the topics (the topics Job's grants).
    """
    wanted = {t.qualified(prefix): t.config for t in topics if t.config}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), client_id="helpdesk-topics-admin", **(security or {})
    )
    await admin.start()
    try:
        present = set(await admin.list_topics())
        current = await _dynamic_configs(admin, [name for name in wanted if name in present])
        changes = {
            name: differing
            for name, config in current.items()
            if (differing := {k: v for k, v in wanted[name].items() if config.get(k) != v})
        }
        if changes:
            # AlterConfigs replaces the topic's dynamic configs: send what it has, with the registry's on top.
            resources = [
                ConfigResource(ConfigResourceType.TOPIC, name, {**current[name], **wanted[name]}) for name in changes
            ]
            for response in await admin.alter_configs(resources):
                _raise_errors(response.resources)
        return changes
    finally:
        await admin.close()


async def _dynamic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The configs set on each topic itself (not the broker's defaults)."""
    if not names:
        return {}
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    _raise_errors(response.resources)
    configs: dict[str, dict[str, str]] = {}
    for _error, _message, _type, name, entries in response.resources:
        if response.API_VERSION == 0:  # (name, value, read_only, is_default, is_sensitive)
            configs[name] = {e[0]: e[1] for e in entries if not e[3]}
        else:  # (name, value, read_only, config_source, is_sensitive, synonyms)
            configs[name] = {e[0]: e[1] for e in entries if e[3] == DYNAMIC_TOPIC_CONFIG}
    return configs


def _raise_errors(resources: list[Any]) -> None:
    for error_code, message, _type, name, *_rest in resources:
        if error_code:
            raise for_code(error_code)(f"topic {name}: {message or 'config refused'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create the help desk's Kafka topics and keep their configs.")
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
    security = client_security_options(common)
    created = asyncio.run(
        ensure_topics(
            servers,
            prefix,
            replication_factor=args.replication_factor,
            min_insync_replicas=args.min_insync_replicas,
            security=security,
        )
    )
    aligned = asyncio.run(align_configs(servers, prefix, security=security))
    for name in created:
        print(f"created {name}")
    for name, changes in aligned.items():
        print(f"config of {name} brought in line: {', '.join(f'{k}={v}' for k, v in sorted(changes.items()))}")
    print(f"{len(ALL_TOPICS)} topics present ({len(created)} created, {len(aligned)} reconfigured) on {servers}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
