"""OpenFeature provider over a `FlagClient`: local evaluation, no network per call.

It needs only something that evaluates (`Evaluator`), so it imports nothing from the client
(`FlagClient.provider()` builds one; the import runs client -> provider, never back)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from shared.flags.evaluator import Resolution

__all__ = ["SafeguardProvider", "Evaluator"]

_KINDS: dict[str, tuple[type, ...]] = {"bool": (bool,), "str": (str,), "int": (int,), "float": (int, float),
                                       "object": (dict, list)}


def _context(ctx: EvaluationContext | None) -> dict[str, Any]:
    if ctx is None:
        return {}
    out = dict(ctx.attributes)
    if ctx.targeting_key is not None:
        out["targetingKey"] = ctx.targeting_key
    return out


class Evaluator(Protocol):
    """What the provider needs from a `FlagClient`: a local evaluation of one flag."""

    def evaluate(self, key: str, context: Mapping[str, Any] | None = None) -> Resolution: ...


class SafeguardProvider(AbstractProvider):
    def __init__(self, client: Evaluator) -> None:
        self.client = client

    def get_metadata(self) -> Metadata:
        return Metadata(name="safeguard")

    def _resolve(self, key: str, default: Any, ctx: EvaluationContext | None, kind: str) -> FlagResolutionDetails[Any]:
        r = self.client.evaluate(key, _context(ctx))
        if r.error_code is not None:
            return FlagResolutionDetails(default, reason=Reason.ERROR, error_code=ErrorCode(r.error_code),
                                         error_message=r.error_message)
        if r.is_code_default:
            return FlagResolutionDetails(default, reason=Reason(r.reason), variant=None)
        v: Any = r.value
        if not isinstance(v, _KINDS[kind]) or (kind != "bool" and isinstance(v, bool)):
            return FlagResolutionDetails(default, reason=Reason.ERROR, error_code=ErrorCode.TYPE_MISMATCH,
                                         error_message=f"flag {key!r} is not of type {kind}")
        if kind == "float":
            v = float(cast(float, v))
        return FlagResolutionDetails(v, reason=Reason(r.reason), variant=r.variant,
                                     flag_metadata=dict(r.metadata))

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, "bool")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, "str")

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, "int")

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, "float")

    def resolve_object_details(self, flag_key: str, default_value: Sequence[Any] | Mapping[str, Any],
                               evaluation_context: EvaluationContext | None = None,
                               ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._resolve(flag_key, default_value, evaluation_context, "object")
