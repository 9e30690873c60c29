"""The executor chosen by `RECOVERY_EXECUTOR` (None: the SDK's clean exit, sent as RestartProcess), and the
operator of the running service around it."""

from __future__ import annotations

from contextlib import AsyncExitStack


from services.recovery.executors.base import Executor
from services.recovery.health_watch import HealthWatch
from services.recovery.operator import Operator
from services.recovery.settings import RecoverySettings
from services.recovery.verify import EffectChecks, OfrepProbe
from shared.http import upstream_client

__all__ = ["make_executor", "open_operator"]


def make_executor(settings: RecoverySettings) -> Executor | None:
    timeout = settings.restart_ready_timeout_s
    if settings.executor == "supervisord":
        from services.recovery.executors.supervisord import SupervisordExecutor

        return SupervisordExecutor(socket=settings.supervisor_socket, ready_timeout_s=timeout)
    if settings.executor == "docker":
        from deploy.docker_instances import DockerEngine, docker_socket
        from services.recovery.executors.docker import DockerExecutor

        engine = DockerEngine(socket=settings.docker_socket or docker_socket(), project=settings.compose_project)
        return DockerExecutor(engine=engine, ready_timeout_s=timeout)
    if settings.executor == "kubernetes":
        from services.recovery.executors.kubernetes import KubernetesExecutor

        return KubernetesExecutor(namespace=settings.kube_namespace, kubeconfig=settings.kubeconfig,
                                  context=settings.kube_context, ready_timeout_s=timeout)
    return None


async def open_operator(stack: AsyncExitStack, settings: RecoverySettings, *, watch_kafka: bool) -> Operator:
    """The operator of the running service: its executor and targets, dry-run, and (with `verify_effects`)
    the health.checks watch (`watch_kafka`) and the OFREP probe that verify each action's effect."""
    watch = None
    if settings.verify_effects and watch_kafka:
        watch = await stack.enter_async_context(HealthWatch().reading(settings.kafka))
    http = await stack.enter_async_context(upstream_client(timeout=5.0))
    verifier = EffectChecks(watch=watch, timeout_s=settings.verify_timeout_s, flags=OfrepProbe(
        http, flags_url=settings.flags_url, token=settings.auth.admin_token)) if settings.verify_effects else None
    operator = Operator(executor=make_executor(settings), targets=settings.targets, verifier=verifier, watch=watch,
                        dry_run=settings.dry_run)
    stack.push_async_callback(operator.aclose)
    return operator
