"""The fake's deterministic content: schema-valid JSON, PNGs, vectors, sentences, directives."""

from __future__ import annotations

import math
import struct
import zlib

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf.providers.fake.content import count_tokens, image_size, png, schema_instance, sentence, vector
from cloverleaf.providers.fake.script import Fault, parse_model

SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18,
                                                                          "maximum": 99}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
     "minItems": 3, "maxItems": 5},
    {"enum": ["red", "green", "blue"]},
    {"const": 42},
    {"type": ["string", "null"], "minLength": 12, "maxLength": 20},
    {"anyOf": [{"type": "integer", "multipleOf": 5, "minimum": 11}, {"type": "null"}]},
    {"oneOf": [{"type": "boolean"}, {"type": "string", "format": "date-time"}]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": "string", "format": "email"}}, "required": ["b"]}]},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "uri"},
    {"type": "string", "format": "date"},
    # $ref + $defs, nested, recursive (a tree)
    {"$defs": {"node": {"type": "object", "properties": {
        "label": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["label", "children"]}},
     "$ref": "#/$defs/node"},
    # pydantic-style: definitions, anyOf with null, nested object
    {"title": "Person", "type": "object", "definitions": {"Pet": {"type": "object", "properties": {
        "kind": {"enum": ["cat", "dog"]}, "legs": {"type": "integer", "minimum": 0, "maximum": 4}},
        "required": ["kind", "legs"]}},
     "properties": {"pet": {"anyOf": [{"$ref": "#/definitions/Pet"}, {"type": "null"}]},
                    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "score": {"type": "number", "minimum": -1.5, "maximum": -0.5}},
     "required": ["pet", "tags", "score"]},
    {"type": "object", "minProperties": 2, "additionalProperties": {"type": "integer"}},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "minItems": 2, "maxItems": 2},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instances_validate(schema):
    for seed in range(5):
        jsonschema.validate(schema_instance(schema, seed), schema)
    assert schema_instance(schema, 3) == schema_instance(schema, 3)


def leaf_schemas() -> st.SearchStrategy[dict]:
    ints = st.integers(-50, 50)
    return st.one_of(
        st.builds(lambda a, b: {"type": "integer", "minimum": min(a, b), "maximum": max(a, b)}, ints, ints),
        st.builds(lambda a, b: {"type": "number", "minimum": min(a, b), "maximum": max(a, b)}, ints, ints),
        st.builds(lambda lo, extra: {"type": "string", "minLength": lo, "maxLength": lo + extra},
                  st.integers(0, 30), st.integers(0, 10)),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True).map(lambda xs: {"enum": xs}),
    )


schemas = st.recursive(
    leaf_schemas(),
    lambda inner: st.one_of(
        st.builds(lambda items, lo: {"type": "array", "items": items, "minItems": lo, "maxItems": lo + 2},
                  inner, st.integers(0, 3)),
        st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6), inner, max_size=4).flatmap(
            lambda props: st.builds(
                lambda req: {"type": "object", "properties": props, "required": sorted(req)},
                st.sets(st.sampled_from(sorted(props)) if props else st.nothing(), max_size=len(props)))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"anyOf": xs}),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(schema=schemas, seed=st.integers(0, 2**32))
def test_random_schemas_get_valid_instances(schema, seed):
    jsonschema.validate(schema_instance(schema, seed), schema)


def test_png_is_valid_and_deterministic():
    data = png("a red fox", 8, 5)
    assert data == png("a red fox", 8, 5) and data != png("a blue fox", 8, 5)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, colour) == (8, 5, 8, 2)
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)
    assert b"IEND" in chunks


def test_image_size_scales_down():
    assert image_size("1024x1024") == (64, 64)
    assert image_size("1792x1024") == (64, 37)
    assert image_size("32x16") == (32, 16)
    assert image_size(None) == (16, 16) and image_size("auto") == (16, 16)


def test_vectors_are_unit_and_stable():
    a, b = vector("same text", 256), vector("same text", 256)
    assert a == b and len(a) == 256 and math.fsum(x * x for x in a) == pytest.approx(1.0)
    assert len(vector("x", 12)) == 12 and vector("other", 256) != a


def test_sentence_and_tokens():
    assert sentence("abc") == sentence("abc") != sentence("abd")
    assert sentence("abc").endswith(").")
    assert count_tokens("") == 1 and count_tokens("abcd") == 1 and count_tokens("abcde") == 2


def test_directive_grammar():
    d = parse_model("echo+slow-200ms+drip-1s")
    assert d.echo and d.latency == pytest.approx(0.2) and d.chunk_delay == 1.0 and d.fault is None
    d = parse_model("fail-429x2")
    assert d.fault == Fault("fail", 429) and d.times == 2
    assert parse_model("fail-500").times is None
    assert parse_model("reset-after-3").fault == Fault("reset", after_chunks=3)
    assert parse_model("hang").fault == Fault("hang")
    assert parse_model("garbage").fault == Fault("garbage")
    assert parse_model("truncatex1").times == 1
    d = parse_model("gpt-4o-mini")
    assert d.name == "gpt-4o-mini" and d.fault is None and not d.echo
