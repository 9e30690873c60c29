"""A RestartProcess for every instance rolls through them (issue 10, finding 11): real Kafka carries the command,
real Redis holds the turn, and the next instance goes only when the restarted one is listening again."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from sdk.commands import CommandHandlers, CommandListener, RedisRestartGate
from shared.events import RestartProcess
from shared.kafka import KafkaPublisher
from shared.settings import KafkaSettings
from shared.topics import create_topics


async def _until(cond: object, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_instances_restart_one_after_another(kafka_settings: KafkaSettings, redis_client: object,
                                                   unique: str) -> None:
    await create_topics(kafka_settings, partitions=1)
    service, exited = f"shop-{unique}", []
    gate = RedisRestartGate(redis_client, service=service)

    def handlers(instance: str) -> CommandHandlers:
        return CommandHandlers(service=service, instance=instance, restart_gate=gate, poll_s=0.05, exit_delay_s=0,
                               exit_process=lambda: exited.append(instance))

    async with AsyncExitStack() as stack:
        listeners = [await stack.enter_async_context(CommandListener(handlers=handlers(i), kafka=kafka_settings)
                                                     .running()) for i in ("blue", "green")]
        for lst in listeners:
            await lst.consumer.wait_assigned()
        await asyncio.sleep(1.0)  # 'latest' is resolved once partitions are assigned
        async with KafkaPublisher.start(kafka_settings, source="/tests") as pub:
            await pub.publish(RestartProcess(service=service, reason="memory_high on every instance"))
        await _until(lambda: len(exited) == 1)
        await asyncio.sleep(1.0)
        assert len(exited) == 1, "the second instance went before the first was back"
        # the first instance's new process starts its listener: the turn passes on
        async with CommandListener(handlers=handlers(exited[0]), kafka=kafka_settings).running():
            await _until(lambda: len(exited) == 2)
        assert sorted(exited) == ["blue", "green"]
    await redis_client.delete(gate.key)  # type: ignore[attr-defined]
