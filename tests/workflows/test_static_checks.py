"""What the pre-run check (``--dry-run``, and every run before its first call) must catch, so a
mistake fails before the steps ahead of it are paid for: values JSON cannot hold, fields of
values that have none, references the template grammar could not read, and what it must not
refuse (an ``additionalProperties`` schema)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Client, WorkflowError
from cloverleaf._config import Settings
from cloverleaf.workflows import load_workflow, plan_workflow, run_workflow


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(env={"XDG_DATA_HOME": str(tmp_path / "data")}, max_retries=0, gateway=True,
                        store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    with Client(settings) as c:
        yield c


def _refused(flow: dict[str, Any], client: Client) -> str:
    """The problems a run of ``flow`` is refused with; nothing was sent."""
    sent = len(client.fake.requests)
    with pytest.raises(WorkflowError) as info:
        run_workflow(flow, client=client)
    assert len(client.fake.requests) == sent
    return str(info.value)


def _structured(fmt: dict[str, Any]) -> dict[str, Any]:
    return {"steps": [{"id": "s1", "type": "llm_call", "model": "fake/echo", "prompt": "one", "output": "o1"},
                      {"id": "s2", "type": "llm_call", "model": "fake/chat", "prompt": "two", "response_format": fmt,
                       "output": "o2"}]}


# --------------------------------------------------------------------------- values JSON cannot hold


def test_an_unquoted_yaml_date_in_a_response_format_is_refused_before_any_call(tmp_path: Path,
                                                                                 client: Client) -> None:
    path = tmp_path / "dated.yaml"
    path.write_text("steps:\n"
                    "  - {id: s1, type: llm_call, model: fake/echo, prompt: one, output: o1}\n"
                    "  - id: s2\n    type: llm_call\n    model: fake/chat\n    prompt: when?\n"
                    "    response_format:\n      type: object\n"
                    "      properties:\n        day: {type: string, format: date, examples: [2024-01-31]}\n"
                    "    output: o2\n", encoding="utf-8")
    message = ("steps[1] (s2).response_format.properties.day.examples[0]: date 2024-01-31 is not a JSON value "
               "(YAML reads an unquoted date or time as one: quote it, e.g. '2024-01-31')")
    with pytest.raises(WorkflowError, match=re.escape(message)):
        load_workflow(path)
    with pytest.raises(WorkflowError, match=re.escape(message)):
        plan_workflow(path, client=client)                                   # --dry-run
    with pytest.raises(WorkflowError, match=re.escape(message)):
        run_workflow(path, client=client)
    assert client.fake.requests == []


@pytest.mark.parametrize("odd, message", [
    (datetime.datetime(2024, 1, 31, 12, 0), "response_format.default: datetime 2024-01-31 12:00:00 is not a JSON"),
    ({"a", "b"} , "write a list instead"),
    (float("nan"), "JSON has no NaN or infinity"),
])
def test_any_value_json_cannot_hold_is_refused_at_its_path(odd: Any, message: str, client: Client) -> None:
    text = _refused(_structured({"type": "object", "properties": {"x": {"type": "string"}}, "default": odd}), client)
    assert message in text


def test_an_object_inputs_default_json_cannot_hold_is_refused(client: Client) -> None:
    flow = {"inputs": {"o": {"type": "object", "default": {"when": datetime.date(2024, 1, 31)}}},
            "steps": [{"id": "a", "type": "llm_call", "model": "fake/echo", "prompt": "{inputs.o}"}]}
    assert "inputs.o.default.when: date 2024-01-31 is not a JSON value" in _refused(flow, client)


# --------------------------------------------------------------------------- fields of values without fields

NAMED = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {
    "$ref": "#/$defs/Tag"}}}, "required": ["name", "tags"], "$defs": {"Tag": {"type": ["string", "null"]}}}


@pytest.mark.parametrize("ref, message", [
    ("{state.city.name}", "{state.city.name}: state.city is a string input, so it has no field 'name'"),
    ("{inputs.city.name}", "{inputs.city.name}: inputs.city is a string input, so it has no field 'name'"),
    ("{inputs.n.value}", "{inputs.n.value}: inputs.n is an integer input, so it has no field 'value'"),
    ("{inputs.flags.first}", "{inputs.flags.first}: inputs.flags is a list input; use an index (inputs.flags.0), not 'first'"),
    ("{state.a.name.first}", "{state.a.name.first}: the response_format of state.a makes state.a.name a string, "
                             "so it has no field 'first'"),
    ("{state.a.tags.0.x}", "{state.a.tags.0.x}: the response_format of state.a makes state.a.tags.0 a string, so it has no field 'x'"),
])
def test_a_field_of_a_value_that_has_no_fields_is_refused_before_any_call(ref: str, message: str,
                                                                          client: Client) -> None:
    flow = {"inputs": {"city": {"type": "string", "default": "Porto"}, "n": {"type": "integer", "default": 3},
                       "flags": {"type": "array", "default": []}},
            "steps": [{"id": "a", "type": "llm_call", "model": "fake/chat", "prompt": "x", "response_format": NAMED,
                       "output": "a"},
                      {"id": "b", "type": "llm_call", "model": "fake/echo", "prompt": ref, "output": "b"}]}
    assert f"steps[1] (b).prompt: {message}" in _refused(flow, client)


def test_fields_that_may_exist_are_not_refused(client: Client) -> None:
    """An object input, an index into a list, a $ref to an object, a when: (missing reads as null)."""
    schema = {"type": "object", "properties": {"place": {"$ref": "#/$defs/Place"}}, "required": ["place"],
              "$defs": {"Place": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}
    flow = {"inputs": {"o": {"type": "object", "default": {"k": "v"}}, "l": {"type": "array", "default": ["x"]},
                       "s": {"type": "string", "default": "s"}},
            "steps": [{"id": "a", "type": "llm_call", "model": "fake/chat", "prompt": "x", "response_format": schema,
                       "output": "a"},
                      {"id": "b", "type": "llm_call", "model": "fake/echo", "when": "inputs.s.x == null",
                       "prompt": "{inputs.o.k} {inputs.l.0} {state.a.place.name}", "output": "b"}],
            "outputs": {"b": "{state.b}"}}
    client.fake.script.reply(text='{"place": {"name": "Porto"}}')
    assert run_workflow(flow, client=client).outputs == {"b": "v x Porto"}


# --------------------------------------------------------------------------- additionalProperties: {schema}


def test_an_additional_properties_schema_is_an_open_map_walked_with_that_schema(client: Client) -> None:
    counts = {"type": "object", "properties": {"total": {"type": "integer"}},
              "additionalProperties": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
              "required": ["total"]}
    flow = {"steps": [
        {"id": "a", "type": "llm_call", "model": "fake/chat", "prompt": "count fruit", "response_format": counts,
         "output": "c"},
        {"id": "b", "type": "llm_call", "model": "fake/echo", "prompt": "apples: {state.c.apples.n}", "output": "b"}],
        "outputs": {"b": "{state.b}"}}
    client.fake.script.reply(text='{"total": 3, "apples": {"n": 3}}')
    assert run_workflow(flow, client=client).outputs == {"b": "apples: 3"}
    flow["steps"][1]["prompt"] = "apples: {state.c.apples.weight}"          # the map's values are still checked
    assert ("the response_format of state.c.apples has no property 'weight' (it has: n)"
            in _refused(flow, client))


# --------------------------------------------------------------------------- references the grammar cannot read


def test_a_key_in_any_script_is_a_reference_and_the_brace_escape_stays_text(client: Client) -> None:
    schema = {"type": "object", "properties": {"città": {"type": "string"}, "first name": {"type": "string"}},
              "required": ["città", "first name"]}
    flow = {"steps": [
        {"id": "a", "type": "llm_call", "model": "fake/chat", "prompt": "x", "response_format": schema,
         "output": "place"},
        {"id": "b", "type": "llm_call", "model": "fake/echo", "when": "state.place.città != ''",
         "prompt": "A={state.place.città} B={state.place.first name} C={{state.place.città}}", "output": "sent"}],
        "outputs": {"sent": "{state.sent}"}}
    client.fake.script.reply(text='{"città": "Porto", "first name": "Ada"}')
    assert run_workflow(flow, client=client).outputs == {"sent": "A=Porto B=Ada C={state.place.città}"}


@pytest.mark.parametrize("prompt, message", [
    ("B={ state.place.name }", "{ state.place.name } looks like a reference but is not one, so it would be sent "
                               "as text: write {state.place.name}; to send the braces as text, double them"),
    ("B={{ state.place.name }}", "{ state.place.name } looks like a reference but is not one"),
    ("B={state.place.name }", "{state.place.name } looks like a reference but is not one, so it would be sent as "
                              "text: write {state.place.name}"),
    ("B={state..name}", "{state..name} looks like a reference but is not one, so it would be sent as text: a "
                        "reference is {state.NAME.FIELD...} or {inputs.NAME...}, with no spaces inside the braces"),
    ("B={inputs.who", "{inputs.who looks like a reference"),
])
def test_text_that_looks_like_a_reference_but_is_not_one_is_refused_before_any_call(prompt: str, message: str,
                                                                                      client: Client) -> None:
    flow = {"inputs": {"who": {"type": "string", "default": "x"}}, "steps": [
        {"id": "a", "type": "llm_call", "model": "fake/chat", "prompt": "x", "output": "place",
         "response_format": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        {"id": "b", "type": "llm_call", "model": "fake/echo", "prompt": prompt, "output": "sent"}]}
    assert f"steps[1] (b).prompt: {message}" in _refused(flow, client)
    with pytest.raises(WorkflowError, match=re.escape(message)):
        plan_workflow(flow, client=client)                                  # --dry-run says so too
