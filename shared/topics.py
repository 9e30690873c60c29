"""Every Kafka topic Safeguard uses, in one place.

`python -m shared.topics create` creates them all idempotently (and the `.dlq` twin of
each consumed topic) under the deployment's `KAFKA_TOPIC_PREFIX`; `python -m shared.topics list` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Collection
from dataclasses import dataclass, field

from shared.settings import KafkaSettings

__all__ = [
    "TELEMETRY_REQUESTS", "TELEMETRY_PAGELOADS", "HEALTH_CHECKS", "FLAGS_CHANGES", "FLAGS_STATE",
    "SLA_TRIGGERS", "SLA_BUDGETS", "RECOVERY_COMMANDS", "RECOVERY_ACTIONS", "INCIDENTS_EVENTS",
    "NOTIFIER_DELIVERIES", "DEPLOY_EVENTS", "MAINTENANCE_WINDOWS", "TopicSpec", "TOPICS", "dlq", "all_topic_names",
    "create_topics",
]

TELEMETRY_REQUESTS = "telemetry.requests"
TELEMETRY_PAGELOADS = "telemetry.pageloads"
HEALTH_CHECKS = "health.checks"
FLAGS_CHANGES = "flags.changes"
FLAGS_STATE = "flags.state"
SLA_TRIGGERS = "sla.triggers"
SLA_BUDGETS = "sla.budgets"
RECOVERY_COMMANDS = "recovery.commands"
RECOVERY_ACTIONS = "recovery.actions"
INCIDENTS_EVENTS = "incidents.events"
NOTIFIER_DELIVERIES = "notifier.deliveries"
DEPLOY_EVENTS = "deploy.events"
MAINTENANCE_WINDOWS = "maintenance.windows"

DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return topic + DLQ_SUFFIX


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    key: str
    producer: str
    partitions: int = 3
    config: dict[str, str] = field(default_factory=dict)


_WEEK_MS = str(7 * 24 * 3600 * 1000)

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(TELEMETRY_REQUESTS, "Per instance per second request outcomes and latency sketch.",
              "service", "sdk middleware", config={"retention.ms": _WEEK_MS}),
    TopicSpec(TELEMETRY_PAGELOADS, "Browser navigation timing beacons.", "service", "sdk / pages",
              config={"retention.ms": _WEEK_MS}),
    TopicSpec(HEALTH_CHECKS, "Probe results and process stats.", "service", "health, sdk",
              config={"retention.ms": _WEEK_MS}),
    TopicSpec(FLAGS_CHANGES, "Every change to a flag: who, what, before, after, why.", "flag_key", "flags"),
    TopicSpec(FLAGS_STATE, "Compacted: the current definition of every flag (tombstone on delete).",
              "flag_key", "flags", config={"cleanup.policy": "compact"}),
    TopicSpec(SLA_TRIGGERS, "Trigger episodes: fired and cleared.", "service", "sla"),
    TopicSpec(SLA_BUDGETS, "Availability, error budget left, burn rates.", "service", "sla"),
    TopicSpec(RECOVERY_COMMANDS, "Commands to protected apps: restart pool, open breaker, exit.",
              "service", "recovery"),
    TopicSpec(RECOVERY_ACTIONS, "What recovery did and how it went.", "service", "recovery"),
    TopicSpec(INCIDENTS_EVENTS, "Incident life cycle.", "service", "notifier"),
    TopicSpec(NOTIFIER_DELIVERIES, "Each notification sent or failed.", "service", "notifier"),
    TopicSpec(DEPLOY_EVENTS, "Deployments: started, finished, rolled back (safeguard deploy).", "service",
              "safeguard CLI"),
    TopicSpec(MAINTENANCE_WINDOWS, "Compacted: each maintenance window scheduled or cancelled through the notifier's API "
              "(its last state per window).", "window_id", "notifier", config={"cleanup.policy": "compact"}),
)


def all_topic_names(prefix: str = "") -> list[str]:
    """Every topic and its DLQ, under a deployment's topic prefix (`KafkaSettings.topic_prefix`)."""
    return [prefix + t.name for t in TOPICS] + [dlq(prefix + t.name) for t in TOPICS]


async def create_topics(settings: KafkaSettings, *, timeout_s: float = 60.0, partitions: int | None = None,
                        names: Collection[str] | None = None) -> list[str]:
    """Create every topic and its DLQ when missing (as the admin principal), under `settings.topic_prefix`: where
    the services read and write (a topic the broker auto-creates has neither the partitions nor the configs, e.g.
    `flags.state` would not be compacted). Tests and benches may override each topic's `partitions` and make only
    some topics (`names`, unprefixed). Returns the names it created."""
    from aiokafka.admin import NewTopic

    from shared.kafka.admin import kafka_admin

    prefix = settings.topic_prefix
    specs = [t for t in TOPICS if names is None or t.name in names]
    if names is not None and len(specs) < len(set(names)):
        raise ValueError(f"unknown topic(s): {sorted(set(names) - {t.name for t in TOPICS})}")
    async with kafka_admin(settings.client_kwargs(), start_within_s=timeout_s) as admin:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(prefix + t.name, partitions or t.partitions, 1, topic_configs=t.config) for t in specs]
        wanted += [NewTopic(dlq(prefix + t.name), 1, 1) for t in specs]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            await admin.create_topics(missing)
        return [t.name for t in missing]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.topics")
    parser.add_argument("command", choices=["create", "list"])
    parser.add_argument("--bootstrap-servers", default=None)
    args = parser.parse_args(argv)
    settings = KafkaSettings(**({"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}))
    names = all_topic_names(settings.topic_prefix)
    if args.command == "list":
        for name in names:
            print(name)
        return 0
    created = asyncio.run(create_topics(settings))
    print(f"topics: {len(created)} created, {len(names) - len(created)} already there"
          + (f" (prefix {settings.topic_prefix!r})" if settings.topic_prefix else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
