"""Templates and ``when:`` conditions: parsing, rendering, errors that name the key."""

from __future__ import annotations

import pytest

from cloverleaf.workflows.condition import Condition, ConditionError
from cloverleaf.workflows.template import Template, TemplateError

SCOPES = {"inputs": {"city": "Porto", "n": 3},
          "state": {"city": "Porto", "place": {"name": "Porto", "country": "Portugal", "tags": ["port", "wine"]},
                    "score": 0.75, "empty": ""}}


def test_templates_render_references_and_leave_other_braces_alone() -> None:
    t = Template.parse('About {state.place.name} ({inputs.n} facts), as JSON {"k": [1]} and {state.place.tags.1}')
    assert t.render(SCOPES) == 'About Porto (3 facts), as JSON {"k": [1]} and wine'
    assert [str(r) for r in t.refs] == ["state.place.name", "inputs.n", "state.place.tags.1"]
    assert Template.parse("{state.place}").value(SCOPES) == SCOPES["state"]["place"]     # a lone ref keeps its type
    assert Template.parse("{state.place}!").render(SCOPES).startswith('{"name": "Porto"')
    assert Template.parse("literal {{state.place}}").render(SCOPES) == "literal {state.place}"


def test_a_missing_key_names_the_key_and_what_is_there() -> None:
    with pytest.raises(TemplateError) as info:
        Template.parse("x {state.place.nam} y").render(SCOPES)
    assert info.value.key == "nam" and info.value.ref == "state.place.nam"
    assert "'nam' is not in state.place (it has: country, name, tags)" in str(info.value)
    with pytest.raises(TemplateError, match="is a list of 2"):
        Template.parse("{state.place.tags.5}").render(SCOPES)
    with pytest.raises(TemplateError, match="state.score is float"):
        Template.parse("{state.score.x}").render(SCOPES)


@pytest.mark.parametrize(("text", "expected"), [
    ("state.place.country == 'Portugal'", True),
    ('state.place.country != "Portugal"', False),
    ("state.score > 0.5 and inputs.n >= 3", True),
    ("state.score < 0.5 or not state.empty", True),
    ("'wine' in state.place.tags", True),
    ("state.city not in ['Lisbon', 'Faro']", True),
    ("state.missing", False),                    # a missing key is null, so "when there is one"
    ("not state.missing.deeper", True),
    ("(inputs.n == 3) and (state.place.name in 'Porto city')", True),
    ("true", True), ("null", False), ("-1 < 0", True),
])
def test_conditions_evaluate(text: str, expected: bool) -> None:
    assert Condition.parse(text).evaluate(SCOPES) is expected


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')", "state.x ==", "open(state.x)", "state.x = 1", "(state.x", "lambda: 1",
    "state.x + 1",
])
def test_conditions_reject_anything_outside_the_grammar(text: str) -> None:
    with pytest.raises(ConditionError):
        Condition.parse(text)


def test_ordering_mismatched_types_is_an_error_not_a_guess() -> None:
    with pytest.raises(ConditionError, match="both sides must be numbers or both strings"):
        Condition.parse("state.city > 3").evaluate(SCOPES)


def test_condition_mistakes_are_condition_errors_not_tracebacks() -> None:
    with pytest.raises(ConditionError, match=r'cannot read the string "C:\\Users".*write a backslash as \\\\'):
        Condition.parse('inputs.p == "C:\\Users"')
    assert Condition.parse('inputs.p == "C:\\\\Users"').evaluate({"inputs": {"p": "C:\\Users"}, "state": {}})
    with pytest.raises(ConditionError, match="'in' an object needs a string on the left, got list"):
        Condition.parse("[1] in state.place").evaluate(SCOPES)      # was TypeError: unhashable type
    assert Condition.parse("'name' in state.place").evaluate(SCOPES)


def test_a_field_of_null_is_null_as_when_reads_it() -> None:
    """A skipped step's output is null; so is any field of it, rendered as empty text."""
    scopes = {"inputs": {}, "state": {"skipped": None}}
    assert Template.parse("[{state.skipped}] [{state.skipped.name.0}]").render(scopes) == "[] []"
    assert Template.parse("{state.skipped.name}").value(scopes) is None
    with pytest.raises(TemplateError, match="'nope' is not in state"):
        Template.parse("{state.nope}").render(scopes)                # a key that is not there still is an error


@pytest.mark.parametrize(("text", "expected"), [
    ("inputs.flag == 0", False), ("inputs.ok == 1", False), ("inputs.ok != 1", True), ("inputs.zero == false", False),
    ("1 in [inputs.ok]", False), ("0 not in [inputs.flag]", True), ("inputs.flag in [0, 1]", False),
    ("[inputs.ok] == [1]", False), ("state.o == state.p", False),
    ("inputs.flag == false", True), ("inputs.ok in [true]", True), ("inputs.zero == 0.0", True),
    ("[1, 2] == [1, 2]", True), ("state.o == state.o", True),
])
def test_a_boolean_equals_only_a_boolean_as_in_json(text: str, expected: bool) -> None:
    """`when: inputs.retries == 0` must not run a step when retries is false (Python's False == 0)."""
    scopes = {"inputs": {"flag": False, "ok": True, "zero": 0},
              "state": {"o": {"a": True}, "p": {"a": 1}}}
    assert Condition.parse(text).evaluate(scopes) is expected


def test_a_key_is_any_text_but_a_dot_or_a_brace_and_near_misses_are_kept_for_the_check() -> None:
    scopes = {"inputs": {}, "state": {"place": {"città": "Porto", "first name": "Ada"}}}
    t = Template.parse("{state.place.città}/{state.place.first name} {{state.place.città}} {\"k\": 1}")
    assert t.render(scopes) == 'Porto/Ada {state.place.città} {"k": 1}' and t.unparsed == ()
    assert Template.parse("{ state.place.città } {state..x} {inputs.n").unparsed == (
        "{ state.place.città }", "{state..x}", "{inputs.n")
    assert Condition.parse("state.place.città == 'Porto'").evaluate(scopes) is True
