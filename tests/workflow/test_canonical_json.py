"""The fast writer of unit files and plan.json gives json's canonical bytes exactly."""

from __future__ import annotations

import json
import random

from jwpipe.workflow.generate import canonical_json, unit_text


def _json(data):
    return json.dumps(data, sort_keys=True, indent=1, separators=(",", ": ")) + "\n"


def _value(rnd: random.Random, depth: int):
    scalars = [lambda: rnd.choice(["", "a", "é\n\"\\\t", "x" * 5, "\u2603", "</"]),
               lambda: rnd.randint(-10**20, 10**20), lambda: rnd.uniform(-1e30, 1e30),
               lambda: rnd.choice([True, False, None, 1e-300, 0.0, -0.0, 5.0, 3]),
               lambda: rnd.choice([float("nan"), float("inf"), -float("inf")])]
    nested = [lambda: {rnd.choice("abcdéfg"): _value(rnd, depth + 1)
                       for _ in range(rnd.randrange(4))},
              lambda: [_value(rnd, depth + 1) for _ in range(rnd.randrange(4))],
              lambda: tuple(_value(rnd, depth + 1) for _ in range(rnd.randrange(3))),
              lambda: {rnd.choice([1, 2.5, True, None, "k"]): 1}]
    choices = scalars + (nested if depth < 4 else [])
    return rnd.choice(choices)()


def test_same_bytes_as_json_for_any_json_data():
    rnd = random.Random(13)
    for _ in range(3000):
        data = {k: _value(rnd, 0) for k in rnd.sample("abcdefghij", rnd.randrange(6))}
        if rnd.random() < 0.3:
            data["parameters"] = _value(rnd, 0)
        assert canonical_json(data) == _json(data)
        assert canonical_json([data, data]) == _json([data, data])
        assert unit_text(data, {}) == _json(data)


def test_shared_parameters_are_serialized_once_and_correctly():
    pars = {"rejection_threshold": 4.0, "pre_hooks": [], "nested": {"b": [1, {"c": None}]}}
    memo: dict = {}
    texts = [unit_text({"key": f"e{i}", "parameters": pars, "inputs": [{"path": f"p{i}"}]},
                       memo) for i in range(3)]
    assert len(memo) == 1
    assert texts == [_json({"key": f"e{i}", "parameters": pars, "inputs": [{"path": f"p{i}"}]})
                     for i in range(3)]
    other = dict(pars, rejection_threshold=5.0)  # a different dict: its own text
    assert unit_text({"parameters": other}, memo) == _json({"parameters": other})
