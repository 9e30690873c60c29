"""`make chaos`: faults under steady load, measured (docs/chaos.md)."""

from chaos.faults import FAULTS, Fault
from chaos.result import FaultResult
from chaos.runner import Runner
from chaos.stack import Stack, StackError

__all__ = ["FAULTS", "Fault", "FaultResult", "Runner", "Stack", "StackError"]
