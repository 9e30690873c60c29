"""Flag API models (flagd definition format + Safeguard fields) and the domain record."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.flags.evaluator import off_variant_of
from shared.flags.jsonlogic import MAX_DEPTH, LogicError, compile_rule, resolve_refs

__all__ = [
    "KEY_RE", "FlagKey", "FlagRecord", "FlagCreate", "FlagUpdate", "FlagRead", "RolloutRequest", "ReasonBody",
    "ScheduleCreate", "ScheduleRead", "AuditEntry", "SystemStatusRequest", "ImportRequest", "validate_definition",
    "DefinitionError",
]

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
FlagKey = Annotated[str, StringConstraints(pattern=KEY_RE.pattern)]
Reason = Annotated[str, StringConstraints(max_length=500)]
Metadata = dict[str, bool | int | float | str]
IMPORT_MAX_NODES = 200_000  # all flags of one import together, `$ref`s resolved


class DefinitionError(ValueError):
    """A definition that is not valid; `field` names the part (variants, defaultVariant, targeting...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_definition(definition: dict[str, Any], off_variant: str | None, *, strict: bool = True) -> None:
    """flagd rules plus ours. `strict=False` (flagd import) lets a rule that cannot compile through:
    it then evaluates to PARSE_ERROR, as in flagd."""
    variants = definition.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise DefinitionError("variants", "must be a non-empty object of variant name -> value")
    if definition.get("state") not in ("ENABLED", "DISABLED"):
        raise DefinitionError("state", "must be ENABLED or DISABLED")
    default = definition.get("defaultVariant")
    if default not in (None, "") and (not isinstance(default, str) or default not in variants):
        raise DefinitionError("defaultVariant", f"{default!r} is not one of the variants {sorted(variants)}")
    if off_variant is not None and off_variant not in variants:
        raise DefinitionError("offVariant", f"{off_variant!r} is not one of the variants {sorted(variants)}")
    if strict and off_variant_of(definition, off_variant) is None:
        raise DefinitionError("offVariant", "required for a non-boolean flag: the variant a killed flag serves")
    targeting = definition.get("targeting")
    if targeting is not None and not isinstance(targeting, dict):
        raise DefinitionError("targeting", "must be a JsonLogic object")
    if strict and targeting:
        try:
            compile_rule(targeting)
        except LogicError as exc:
            raise DefinitionError("targeting", str(exc)) from None
    metadata = definition.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or not all(
            isinstance(v, (bool, int, float, str)) for v in metadata.values())):
        raise DefinitionError("metadata", "must be an object of string, number or boolean values")


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_nul(x) for x in v)
    return False


def _refuse_nul(data: Any) -> Any:
    if _has_nul(data):
        raise ValueError("strings must not contain NUL (\\u0000) characters")
    return data


class _Api(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    _nul = model_validator(mode="before")(staticmethod(_refuse_nul))


class FlagCreate(_Api):
    """A new flag: off (DISABLED) and marked `new` unless said otherwise. Variants default to on/off."""

    key: FlagKey
    state: Literal["ENABLED", "DISABLED"] = "DISABLED"
    variants: dict[str, Any] = Field(default_factory=lambda: {"on": True, "off": False}, min_length=1)
    default_variant: str | None = Field(default="on", alias="defaultVariant")
    targeting: dict[str, Any] | None = None
    metadata: Metadata | None = None
    off_variant: str | None = Field(default=None, alias="offVariant")
    new: bool = True
    description: str = Field(default="", max_length=2000)
    reason: Reason = ""

    @model_validator(mode="after")
    def _valid(self) -> FlagCreate:
        validate_definition(self.definition(), self.off_variant)
        return self

    def definition(self) -> dict[str, Any]:
        d: dict[str, Any] = {"state": self.state, "variants": self.variants, "defaultVariant": self.default_variant}
        if self.targeting:
            d["targeting"] = self.targeting
        if self.metadata:
            d["metadata"] = self.metadata
        return d


class FlagUpdate(_Api):
    """Partial update: only the given fields change."""

    state: Literal["ENABLED", "DISABLED"] | None = None
    variants: dict[str, Any] | None = Field(default=None, min_length=1)
    default_variant: str | None = Field(default=None, alias="defaultVariant")
    targeting: dict[str, Any] | None = None
    metadata: Metadata | None = None
    off_variant: str | None = Field(default=None, alias="offVariant")
    new: bool | None = None
    description: str | None = Field(default=None, max_length=2000)
    reason: Reason = ""


class RolloutRequest(_Api):
    percent: float = Field(ge=0, le=100, description="Share of targeting keys served the on variant (sticky).")
    reason: Reason = ""


class ReasonBody(_Api):
    reason: Reason = ""


class ScheduleCreate(_Api):
    action: Literal["enable", "disable", "kill", "rollout"]
    at: datetime = Field(validation_alias=AliasChoices("at", "runAt"))
    percent: float | None = Field(default=None, ge=0, le=100)
    reason: Reason = ""

    @model_validator(mode="after")
    def _percent(self) -> ScheduleCreate:
        if (self.action == "rollout") != (self.percent is not None):
            raise ValueError("percent is required for a rollout and only for a rollout")
        if self.at.tzinfo is None:
            raise ValueError("at must carry a time zone (e.g. 2030-01-01T10:00:00Z)")
        return self


class ScheduleRead(BaseModel):
    id: int
    flag_key: str
    action: str
    percent: float | None
    run_at: datetime
    reason: str
    requested_by: str
    status: str
    done_at: datetime | None = None
    error: str | None = None


class AuditEntry(BaseModel):
    id: int
    flag_key: str
    action: str
    actor: str
    reason: str
    version: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: datetime


class SystemStatusRequest(BaseModel):
    """The runbook's body: `{"feature": "gamification", "enabled": false}`."""

    model_config = ConfigDict(extra="ignore")
    _nul = model_validator(mode="before")(staticmethod(_refuse_nul))
    feature: FlagKey
    enabled: bool
    reason: Reason = ""

    @field_validator("enabled", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v


class ImportRequest(BaseModel):
    """A flagd flag file: `{"flags": {...}, "$evaluators": {...}, "metadata": {...}}`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    _nul = model_validator(mode="before")(staticmethod(_refuse_nul))
    flags: dict[str, dict[str, Any]]
    evaluators: dict[str, Any] = Field(default_factory=dict, alias="$evaluators")
    metadata: Metadata = Field(default_factory=dict, description="Flag-set metadata (flagSetId, version...).")

    @model_validator(mode="after")
    def _refs_resolve(self) -> ImportRequest:
        """A `$ref` cycle, or `$evaluators` that expand past IMPORT_MAX_NODES in all, is refused here."""
        try:
            resolve_refs(self.flags, self.evaluators, max_depth=MAX_DEPTH + 2, max_nodes=IMPORT_MAX_NODES)
        except LogicError as exc:
            raise ValueError(f"$evaluators: {exc}") from None
        return self


class FlagRecord(BaseModel):
    """One stored flag: the flagd definition plus Safeguard's fields."""

    key: str
    definition: dict[str, Any]
    off_variant: str | None = None
    new: bool = True
    killed: bool = False
    rollout_percent: float | None = None
    description: str = ""
    version: int = 1
    revision: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    def audit_view(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"created_at", "updated_at", "revision"})

    def client_view(self) -> dict[str, Any]:
        """What SDKs receive: enough to evaluate locally."""
        return {"key": self.key, "version": self.version, "definition": self.definition,
                "offVariant": self.off_variant}


class FlagRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    key: str
    state: str
    variants: dict[str, Any]
    default_variant: str | None = Field(alias="defaultVariant")
    targeting: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    off_variant: str | None = Field(alias="offVariant")
    new: bool
    killed: bool
    rollout_percent: float | None = Field(alias="rolloutPercent")
    description: str
    version: int
    created_at: datetime | None = Field(alias="createdAt")
    updated_at: datetime | None = Field(alias="updatedAt")

    @classmethod
    def of(cls, r: FlagRecord) -> FlagRead:
        d = r.definition
        return cls.model_validate({
            "key": r.key, "state": d["state"], "variants": d["variants"], "defaultVariant": d.get("defaultVariant"),
            "targeting": d.get("targeting"), "metadata": d.get("metadata"),
            "offVariant": off_variant_of(d, r.off_variant), "new": r.new, "killed": r.killed,
            "rolloutPercent": r.rollout_percent, "description": r.description, "version": r.version,
            "createdAt": r.created_at, "updatedAt": r.updated_at})
