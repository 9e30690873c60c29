"""How recovery restarts a process, the way an operator would: one port, four implementations.

    RECOVERY_EXECUTOR=supervisord   restart the program through supervisord's XML-RPC (native stack)
    RECOVERY_EXECUTOR=docker        restart the compose container through the Docker Engine API
    RECOVERY_EXECUTOR=kubernetes    delete the pod; its Deployment starts a new one
    RECOVERY_EXECUTOR=sdk           (default) RestartProcess on Kafka: the SDK in the app exits cleanly

`RECOVERY_TARGETS` names each service's instances (JSON, see `Target`). A service without targets falls
back to the SDK. Several instances restart one at a time: the next only after the previous one answers.
"""

from __future__ import annotations

from services.recovery.executors.base import (
    Executor, ExecutorError, Restarted, Target, answers, restart_in_turn,
)

__all__ = ["Executor", "ExecutorError", "Restarted", "Target", "answers", "restart_in_turn"]
