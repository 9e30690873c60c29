"""Safeguard flag client: local evaluation (flagd semantics), live updates over SSE, OpenFeature provider."""

from sdk.flags.client import FlagClient
from sdk.flags.evaluator import CODE_DEFAULT, CompiledFlag, FlagSpec, Resolution, compile_flag, evaluate
from sdk.flags.provider import SafeguardProvider

__all__ = ["FlagClient", "SafeguardProvider", "FlagSpec", "CompiledFlag", "Resolution", "compile_flag", "evaluate",
           "CODE_DEFAULT"]
