"""`python -m shared.contract`: rewrite the event schema snapshots and docs/asyncapi.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from shared import asyncapi
from shared.events import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    snapshots = ROOT / "tests" / "contract" / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    for old in snapshots.glob("*.json"):
        old.unlink()
    for type_, cls in EVENT_TYPES.items():
        (snapshots / f"{type_}.json").write_text(json.dumps(cls.model_json_schema(), indent=2, sort_keys=True) + "\n")
    (ROOT / "docs" / "asyncapi.yaml").write_text(asyncapi.render())
    print(f"wrote {len(EVENT_TYPES)} snapshots and docs/asyncapi.yaml")


if __name__ == "__main__":
    main()
