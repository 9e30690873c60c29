"""flagd targeting in one line: what is served to whom."""

from __future__ import annotations

import pytest

from services.console.targeting import describe


@pytest.mark.parametrize(("rule", "text"), [
    (None, ""),
    ({}, ""),
    ({"fractional": [["on", 1000], ["off", 9000]]}, "10 % on, 90 % off"),
    ({"fractional": [["on", 1], ["off", 2]]}, "33.33 % on, 66.67 % off"),
    ({"fractional": [{"var": "email"}, ["a", 50], ["b", 50]]}, "by email: 50 % a, 50 % b"),
    ({"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]},
     'email ends with "@example.com" -> on; otherwise off'),
    ({"if": [{"in": [{"var": "country"}, ["NL", "BE"]]}, "on", {"fractional": [["on", 5000], ["off", 5000]]}]},
     'country in "NL", "BE" -> on; otherwise (50 % on, 50 % off)'),
    ({"if": [{"in": ["@corp", {"var": "email"}]}, "on"]}, 'email contains "@corp" -> on'),
    ({"if": [{"and": [{"==": [{"var": "plan"}, "pro"]}, {"or": [{">=": [{"var": "age"}, 18]},
                                                                 {"!": {"var": "minor"}}]}]}, "on", "off"]},
     'plan = "pro" and (age ≥ 18 or not minor) -> on; otherwise off'),
    ({"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}, "new", "old"]},
     'version >= "1.2.0" (semver) -> new; otherwise old'),
    ({"if": [{"==": [{"var": "$flagd.flagKey"}, "x"]}, "on", "off"]}, 'flag key = "x" -> on; otherwise off'),
    ({"if": [{"starts_with": [{"var": "targetingKey"}, "beta-"]}, "on", None]},
     'user key starts with "beta-" -> on; otherwise the default variant'),
])
def test_rules_read_as_one_line(rule: dict[str, object] | None, text: str) -> None:
    assert describe(rule) == text


def test_an_unknown_operator_is_shown_as_json_not_dropped() -> None:
    assert describe({"if": [{"weird": [1, 2]}, "on", "off"]}) == '{"weird":[1,2]} -> on; otherwise off'
    assert describe({"cat": ["a", "b"]}) == '{"cat":["a","b"]}'


def test_malformed_rules_do_not_raise() -> None:
    rules: list[dict[str, object]] = [{"if": []}, {"fractional": []}, {"fractional": [["on", 0]]}, {"if": [{}, "on"]},
                                      {"if": [{"a": 1, "b": 2}, "on"]}, {"==": "x"}, {"in": [1]}]
    for rule in rules:
        assert isinstance(describe(rule), str)


def test_a_long_rule_is_cut_with_an_ellipsis() -> None:
    rule = {"if": [{"in": [{"var": "user"}, [f"user-{i}" for i in range(100)]]}, "on", "off"]}
    text = describe(rule, limit=60)
    assert len(text) == 60 and text.endswith("…") and text.startswith('user in "user-0"')
