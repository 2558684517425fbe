"""Consumer lag: how far behind the end of its topics a consumer group's commits are."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def groups_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    """Lag of every consumer group whose name starts with ``prefix``, over all partitions it committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(prefix)]
        lag: dict[str, int] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                lag[group] = 0
                continue
            ends = await consumer.end_offsets(list(committed))
            lag[group] = sum(max(0, ends[tp] - max(meta.offset, 0)) for tp, meta in committed.items())
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """How many records of ``topic`` the consumer group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        # The admin's metadata, not consumer.partitions_for_topic: a consumer that subscribed
        # to nothing knows no partitions, which made every lag 0.
        (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        if not partitions:
            raise LookupError(f"topic {topic} has no partitions (does it exist?)")
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return sum(
            ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp in partitions
        )
    finally:
        await consumer.stop()
        await admin.close()
