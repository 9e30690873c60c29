"""Flag evaluation with flagd's semantics, one implementation for the flags service and the SDK:
`evaluator` (a flag's variants, targeting and default) and `jsonlogic` (its rules, compiled once)."""

__all__: list[str] = []
