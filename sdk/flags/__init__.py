"""Safeguard flag client: local evaluation (flagd semantics), live updates over SSE, OpenFeature provider."""

from sdk.flags.client import FlagClient
from sdk.flags.provider import SafeguardProvider
from shared.flags.evaluator import CODE_DEFAULT, CompiledFlag, FlagSpec, Resolution, compile_flag, evaluate

__all__ = ["FlagClient", "SafeguardProvider", "FlagSpec", "CompiledFlag", "Resolution", "compile_flag", "evaluate",
           "CODE_DEFAULT"]
