"""Who may do what on the broker: one SCRAM principal per service, ACLs for each (KRaft StandardAuthorizer).

`admin` is the broker's super user (topic creation, these ACLs, tests). Every other principal gets
exactly what its code does: `python -m shared.kafka.acls apply` creates the ACLs (idempotent),
`python -m shared.kafka.acls list` prints them. An app's SDK (`app`) may produce telemetry, read
flags and the recovery commands (its own: the listener keeps those for its service/instance), and
use consumer groups named `sdk.*`; nothing else, so it cannot forge a trigger or a command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from enum import IntEnum

from shared import topics as t
from shared.settings import KafkaSettings

__all__ = ["ADMIN", "PRINCIPALS", "SDK_GROUP_PREFIX", "Acl", "acls", "apply_acls"]

ADMIN = "admin"
PRINCIPALS = ("flags", "health", "sla", "recovery", "notifier", "app", "intake")
SDK_GROUP_PREFIX = "sdk."  # consumer groups of the SDK (sdk/commands.py)


class Resource(IntEnum):  # Kafka's ResourceType codes
    TOPIC = 2
    GROUP = 3


class Pattern(IntEnum):  # Kafka's PatternType codes
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):  # Kafka's AclOperation codes (READ and WRITE imply DESCRIBE)
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11


@dataclass(frozen=True)
class Acl:
    principal: str
    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = Pattern.LITERAL

    def __str__(self) -> str:
        star = "*" if self.pattern is Pattern.PREFIXED else ""
        return f"User:{self.principal:<9} {self.operation.name:<16} {self.resource.name.lower()} {self.name}{star}"


def _grants(*, produce: tuple[str, ...] = (), consume: tuple[str, ...] = (),
            groups: tuple[str, ...] = (), dead_letters: bool = True) -> list[tuple[Resource, str, Operation, Pattern]]:
    out = [(Resource.TOPIC, name, Operation.WRITE, Pattern.LITERAL) for name in produce]
    out += [(Resource.TOPIC, name, Operation.READ, Pattern.LITERAL) for name in consume]
    if dead_letters:  # a consumer sends what it cannot handle to <topic>.dlq
        out += [(Resource.TOPIC, t.dlq(name), Operation.WRITE, Pattern.LITERAL) for name in consume]
    out += [(Resource.GROUP, g.rstrip("*"), Operation.READ, Pattern.PREFIXED if g.endswith("*") else Pattern.LITERAL)
            for g in groups]
    return out


def acls(*, prefix: str = "", sla_app_id: str = "safeguard-sla") -> list[Acl]:
    """Every ACL of the stack; `prefix` is KAFKA_TOPIC_PREFIX (topics and service groups carry it)."""
    table = {
        "flags": _grants(produce=(t.FLAGS_CHANGES, t.FLAGS_STATE)),
        "health": _grants(produce=(t.HEALTH_CHECKS, t.SLA_TRIGGERS),  # its watchdog's `unresponsive` trigger
                          dead_letters=False,  # no group: reads the feed
                          consume=(t.FLAGS_STATE, t.INCIDENTS_EVENTS, t.SLA_TRIGGERS, t.SLA_BUDGETS, t.HEALTH_CHECKS)),
        "sla": _grants(produce=(t.SLA_TRIGGERS, t.SLA_BUDGETS),
                       consume=(t.TELEMETRY_REQUESTS, t.TELEMETRY_PAGELOADS, t.HEALTH_CHECKS, t.FLAGS_CHANGES,
                                t.MAINTENANCE_WINDOWS)),
        "recovery": _grants(produce=(t.RECOVERY_COMMANDS, t.RECOVERY_ACTIONS), consume=(t.SLA_TRIGGERS, t.HEALTH_CHECKS),
                            groups=("safeguard-recovery",)),
        "notifier": _grants(produce=(t.INCIDENTS_EVENTS, t.NOTIFIER_DELIVERIES, t.MAINTENANCE_WINDOWS),
                            consume=(t.SLA_TRIGGERS, t.RECOVERY_ACTIONS, t.DEPLOY_EVENTS), groups=("safeguard-notifier",)),
        "app": _grants(produce=(t.TELEMETRY_REQUESTS, t.TELEMETRY_PAGELOADS, t.HEALTH_CHECKS),
                       consume=(t.FLAGS_STATE, t.FLAGS_CHANGES, t.RECOVERY_COMMANDS)),
        # OTLP metrics and page-load beacons of any app, as the events an app's SDK would send
        "intake": _grants(produce=(t.TELEMETRY_REQUESTS, t.TELEMETRY_PAGELOADS, t.HEALTH_CHECKS)),
    }
    out = [Acl(p, res, prefix + name, op, pat) for p, grants in table.items() for res, name, op, pat in grants]
    # the SDK's groups are not under the topic prefix; Faust (the SLA processor) owns its group and
    # its internal topics (changelogs, repartitions, the assignor's), all named after its app id
    out.append(Acl("app", Resource.GROUP, SDK_GROUP_PREFIX, Operation.READ, Pattern.PREFIXED))
    out.append(Acl("sla", Resource.GROUP, sla_app_id, Operation.READ, Pattern.PREFIXED))
    out += [Acl("sla", Resource.TOPIC, sla_app_id, op, Pattern.PREFIXED)
            for op in (Operation.CREATE, Operation.READ, Operation.WRITE, Operation.DESCRIBE_CONFIGS,
                       Operation.ALTER_CONFIGS)]  # its changelogs' compaction (services/sla/tables.py)
    return out


async def apply_acls(settings: KafkaSettings, entries: list[Acl]) -> int:
    """Create `entries` on the broker as the admin principal in `settings` (existing ones stay). Returns how many."""
    from aiokafka.protocol.admin import CreateAclsRequest

    from shared.kafka.admin import kafka_admin

    async with kafka_admin(settings.client_kwargs()) as admin:
        for acl in entries:
            request = CreateAclsRequest(acl.resource, acl.name, acl.pattern, f"User:{acl.principal}", "*",
                                        acl.operation, 3)  # 3: ALLOW
            response = await admin._send_request(request)  # noqa: SLF001 - aiokafka has the request, not the call
            for code, message in response.creation_responses:
                if code:
                    raise RuntimeError(f"CreateAcls {acl}: error {code} {message}")
        return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.kafka.acls")
    parser.add_argument("command", choices=["apply", "list"])
    args = parser.parse_args(argv)
    settings = KafkaSettings()
    entries = acls(prefix=settings.topic_prefix)
    if args.command == "list":
        print("\n".join(str(a) for a in entries))
        return 0
    count = asyncio.run(apply_acls(settings, entries))
    print(f"acls: {count} in place for {', '.join(PRINCIPALS)} (super user: {ADMIN})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
