"""Every structured-output schema and every model-facing tool schema Cadre sends, checked as it goes out on
the wire (captured through httpx2.MockTransport) against each vendor's documented rules, and a round trip:
instances generated from the schema *as sent* must pass Cadre's validator for that answer.

The vendor rules below are the documented ones, each cited where it is written down:
- OpenAI strict structured outputs, "Supported schemas"
  (https://platform.openai.com/docs/guides/structured-outputs#supported-schemas): root is an object, not
  anyOf; every object sets additionalProperties false and lists every property in `required`; the
  supported keywords (strings: pattern, format, minLength, maxLength since May 2025; numbers: minimum,
  maximum, exclusiveMinimum, exclusiveMaximum, multipleOf; arrays: minItems, maxItems); not supported:
  allOf, not, dependentRequired, dependentSchemas, if/then/else; `default` is refused ("'default' is not
  permitted"); up to 5000 object properties and 10 levels of nesting; 120,000 characters of property
  names, definition names, enum and const values; 1000 enum values.
- Gemini `responseJsonSchema` / `parametersJsonSchema`: the google-genai SDK's own field docs
  (`GenerationConfig.response_json_schema`, installed google/genai/types.py) list the only supported
  properties: $id $defs $ref $anchor type format title description enum (strings and numbers) items
  prefixItems minItems maxItems minimum maximum anyOf oneOf properties additionalProperties required, and
  propertyOrdering; "If `$ref` is set on a sub-schema, no other properties, except for those starting
  as a `$`, may be set." A function name "must start with a letter or an underscore ... a-z, A-Z, 0-9,
  underscores, dots, colons and dashes, with a maximum length of 128" (`FunctionDeclaration.name`).
- Anthropic structured outputs, "JSON Schema limitations" (docs.claude.com/en/docs/build-with-claude/
  structured-outputs): supported are the basic types, enum, const, anyOf, allOf (not with $ref),
  $ref/$defs/definitions, default, required, additionalProperties false, string formats, minItems 0 or 1;
  numerical constraints (minimum, maximum, multipleOf) and string constraints (minLength, maxLength) are
  refused: "output_format.schema: For 'integer' type, property 'minimum' is not supported"
  (github.com/agentjido/req_llm/issues/302). The SDK's `transform_schema` moves them into `description`,
  as Cadre does. Tool `input_schema`: a JSON Schema whose `type` is "object" (anthropic/types/tool_param.py);
  a tool name matches ^[a-zA-Z0-9_-]{1,64}$ (tool-use docs; not in the SDK, so not confirmed here).
- OpenAI function names: "a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64"
  (openai/types/shared_params/function_definition.py).
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cadre_app.evals import judge
from cadre_core.errors import CadreError, OutputInvalidError
from cadre_core.models.anthropic import AnthropicModel
from cadre_core.models.base import Message, Model, ModelRequest, ModelResponse, ToolDefinition
from cadre_core.models.google import GoogleModel
from cadre_core.models.openai import OpenAIModel
from cadre_core.models.openai_compatible import OpenAICompatibleModel
from cadre_core.structured import close_schema, validator
from cadre_core.testing import RecordingHandler, mock_http_client
from cadre_librarian import research
from cadre_librarian.tools import DEFINITIONS as LIBRARIAN_TOOLS
from cadre_oracle import consult, review
from cadre_oracle.answers import Review, oracle_validator
from cadre_oracle.readonly import TOOLS as ORACLE_TOOLS
from cadre_search.deep import TOOLS as SEARCH_TOOLS
from cadre_vision import analyze as vision
from tests.core.wire import fixture

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]

# name -> (schema object, Cadre's validator for that answer)
STRUCTURED: dict[str, tuple[dict[str, Any], Any]] = {
    "oracle_answer": (consult.ANSWER_SCHEMA, oracle_validator()),
    "review": (review.REVIEW_SCHEMA, validator(Review)),
    "librarian_answer": (research.ANSWER_SCHEMA, validator(research.LibrarianAnswer)),
    "verdict": (judge.SCHEMA, judge._valid),
    "visual_answer": (vision.VISUAL_SCHEMA, vision.visual_validator()),
}
TOOLSETS: dict[str, list[ToolDefinition]] = {
    "oracle": ORACLE_TOOLS,
    "librarian": LIBRARIAN_TOOLS,
    "search": SEARCH_TOOLS,
}
KNOWN_SOURCES = {
    "output_schema=": {
        "servers/oracle/src/cadre_oracle/consult.py",
        "servers/oracle/src/cadre_oracle/review.py",
        "servers/librarian/src/cadre_librarian/research.py",
        "app/src/cadre_app/evals/judge.py",
        "servers/vision/src/cadre_vision/analyze.py",
    },
    "ToolDefinition(": {
        "servers/oracle/src/cadre_oracle/readonly.py",
        "servers/librarian/src/cadre_librarian/tools.py",
        "servers/search/src/cadre_search/deep.py",
    },
}


def test_every_schema_and_tool_set_cadre_sends_is_checked_here():
    # A new structured answer or model tool elsewhere must be added to STRUCTURED / TOOLSETS.
    for needle, known in KNOWN_SOURCES.items():
        found = {
            str(p.relative_to(REPO))
            for root in ("servers", "shared/src", "app/src")
            for p in (REPO / root).rglob("*.py")
            if "/models/" not in str(p) and "/testing/" not in str(p) and needle in p.read_text("utf-8")
        }
        assert found == known, f"{needle}: add {sorted(found - known)} to this test"


# --- what each provider module puts on the wire ------------------------------------------


def _models(handler: RecordingHandler) -> dict[str, Model]:
    client = mock_http_client(handler)
    return {
        "openai": OpenAIModel("gpt-test", api_key="k", http_client=client),
        "anthropic": AnthropicModel("claude-test", api_key="k", http_client=client),
        "google": GoogleModel("gemini-test", api_key="k", http_client=client),
        "openai_compatible": OpenAICompatibleModel(
            "local", api_key=None, base_url="http://127.0.0.1:9/v1", http_client=client, structured_output="json_schema"
        ),
    }


REPLIES = {
    "openai": "openai_message",
    "anthropic": "anthropic_text",
    "google": "google_text",
    "openai_compatible": "chat_text",
}


async def sent_body(vendor: str, request: ModelRequest) -> dict[str, Any]:
    """The JSON body `vendor`'s provider module sends for `request`."""
    handler = RecordingHandler((200, fixture(REPLIES[vendor])))
    # The canned reply need not match the schema; only the request matters here.
    with contextlib.suppress(CadreError):
        await _models(handler)[vendor].request(request)
    [body] = handler.bodies
    return body


def wire_output_schema(vendor: str, body: dict[str, Any]) -> dict[str, Any]:
    if vendor == "openai":
        fmt = body["text"]["format"]
        assert fmt["type"] == "json_schema" and fmt["strict"] is True
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", fmt["name"])
        return fmt["schema"]
    if vendor == "anthropic":
        assert body["output_config"]["format"]["type"] == "json_schema"
        return body["output_config"]["format"]["schema"]
    if vendor == "google":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        return body["generationConfig"]["responseJsonSchema"]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    return fmt["json_schema"]["schema"]


def wire_tools(vendor: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(name, parameters schema, strict) of each tool as sent."""
    if vendor == "openai":
        return [(t["name"], t["parameters"], t["strict"]) for t in body["tools"]]
    if vendor == "anthropic":
        return [(t["name"], t["input_schema"], t.get("strict", False)) for t in body["tools"]]
    if vendor == "google":
        [tool] = body["tools"]
        return [(f["name"], f["parameters_json_schema"], False) for f in tool["functionDeclarations"]]
    return [(t["function"]["name"], t["function"]["parameters"], t["function"].get("strict", False))
            for t in body["tools"]]  # fmt: skip


# --- the vendors' documented rules --------------------------------------------------------

OPENAI_STRICT_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$defs",
    "$ref", "description", "title", "pattern", "format", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
}  # fmt: skip
GEMINI_KEYWORDS = {
    "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items",
    "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties",
    "additionalProperties", "required", "propertyOrdering",
}  # fmt: skip
ANTHROPIC_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "allOf",
    "$defs", "definitions", "$ref", "description", "title", "default", "format", "minItems", "pattern",
}  # fmt: skip
GEMINI_PARAM = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,63}")
SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")


def walk(schema: dict[str, Any], depth: int = 0):
    """(node, object nesting depth) of every sub-schema."""
    yield schema, depth
    inner = depth + (1 if schema.get("type") == "object" else 0)
    for key in SUBSCHEMA_MAPS:
        for sub in (schema.get(key) or {}).values():
            yield from walk(sub, inner)
    for key in SUBSCHEMA_LISTS:
        for sub in schema.get(key) or []:
            yield from walk(sub, inner)
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], inner)


def common_problems(schema: dict[str, Any]) -> list[str]:
    """Rules every vendor shares: a `required` name must be a property."""
    out = []
    for node, _ in walk(schema):
        for name in node.get("required", []):
            if name not in node.get("properties", {}):
                out.append(f"required '{name}' is not among the properties")
    return out


def openai_strict_problems(schema: dict[str, Any]) -> list[str]:
    out = common_problems(schema)
    if schema.get("type") != "object" or "anyOf" in schema:
        out.append("the root must be an object, not anyOf")
    properties = enum_values = chars = 0
    for node, depth in walk(schema):
        out += [f"'{k}' is not supported in strict mode" for k in set(node) - OPENAI_STRICT_KEYWORDS]
        if node.get("type") == "object":
            if node.get("additionalProperties") is not False:
                out.append("an object lacks additionalProperties: false")
            if set(node.get("required", [])) != set(node.get("properties", {})):
                out.append(f"required {node.get('required')} must list every property {list(node['properties'])}")
            if depth >= 10:
                out.append("more than 10 levels of nesting")
        properties += len(node.get("properties", {}))
        enum_values += len(node.get("enum", []))
        chars += sum(map(len, node.get("properties", {}))) + sum(map(len, node.get("$defs", {})))
        chars += sum(len(str(v)) for v in node.get("enum", []))
    if properties > 5000 or enum_values > 1000 or chars > 120_000:
        out.append("over OpenAI's size limits")
    return out


def gemini_problems(schema: dict[str, Any]) -> list[str]:
    out = common_problems(schema)
    for node, _ in walk(schema):
        out += [f"'{k}' is not supported by Gemini" for k in set(node) - GEMINI_KEYWORDS]
        if "$ref" in node and any(not k.startswith("$") for k in node):
            out.append("a $ref has sibling keywords")
        if "enum" in node and not all(isinstance(v, str | int | float) for v in node["enum"]):
            out.append("enum values must be strings or numbers")
    return out


def anthropic_output_problems(schema: dict[str, Any]) -> list[str]:
    out = common_problems(schema)
    for node, _ in walk(schema):
        out += [f"'{k}' is not supported by Anthropic" for k in set(node) - ANTHROPIC_KEYWORDS]
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            out.append("an object lacks additionalProperties: false")
        if node.get("minItems", 0) not in (0, 1):
            out.append("minItems other than 0 or 1")
    return out


def tool_problems(vendor: str, name: str, parameters: dict[str, Any], strict: bool) -> list[str]:
    name_rule = {
        "openai": r"[a-zA-Z0-9_-]{1,64}",
        "openai_compatible": r"[a-zA-Z0-9_-]{1,64}",
        "anthropic": r"[a-zA-Z0-9_-]{1,64}",
        "google": r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}",
    }[vendor]
    out = [] if re.fullmatch(name_rule, name) else [f"tool name '{name}' breaks {name_rule}"]
    if parameters.get("type") != "object":
        out.append("tool parameters must be an object schema")
    out += common_problems(parameters)
    if vendor == "google":
        # FunctionDeclaration.parameters: "Parameter names must start with a letter or an underscore and must
        # only contain chars a-z, A-Z, 0-9, or underscores with a maximum length of 64". The keyword list above
        # is documented for responseJsonSchema only, so it is not applied to tools.
        out += [f"parameter name '{p}'" for p in parameters.get("properties", {}) if not GEMINI_PARAM.fullmatch(p)]
    if strict:
        out += openai_strict_problems(parameters) if vendor.startswith("openai") else []
        out += anthropic_output_problems(parameters) if vendor == "anthropic" else []
    return out


OUTPUT_RULES = {
    "openai": openai_strict_problems,
    "openai_compatible": openai_strict_problems,
    "anthropic": anthropic_output_problems,
    "google": gemini_problems,
}
VENDORS = list(OUTPUT_RULES)


def test_the_rules_catch_the_defects_they_exist_for():
    # The old strict_schema deleted the property `title` but kept it in `required`.
    dropped = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "title"],
               "additionalProperties": False}  # fmt: skip
    for rules in OUTPUT_RULES.values():
        assert "required 'title' is not among the properties" in rules(dropped)
    assert "'minimum' is not supported by Anthropic" in anthropic_output_problems(
        {
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1}},
            "required": ["n"],
            "additionalProperties": False,
        }
    )
    assert any("every property" in p for p in openai_strict_problems({**dropped, "required": []}))
    assert "'default' is not supported in strict mode" in openai_strict_problems(
        {**dropped, "required": ["a"], "properties": {"a": {"type": "string", "default": "x"}}}
    )
    assert "a $ref has sibling keywords" in gemini_problems({"$ref": "#/$defs/A", "description": "d"})
    assert tool_problems("openai", "read file", {"type": "object"}, False)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("name", list(STRUCTURED))
async def test_structured_output_schema_on_the_wire_meets_the_vendor_rules(vendor, name):
    schema, _ = STRUCTURED[name]
    body = await sent_body(vendor, ModelRequest([Message.user("q")], output_schema=schema, schema_name=name))

    assert OUTPUT_RULES[vendor](wire_output_schema(vendor, body)) == []


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("toolset", list(TOOLSETS))
async def test_tool_schemas_on_the_wire_meet_the_vendor_rules(vendor, toolset):
    tools = TOOLSETS[toolset]
    body = await sent_body(vendor, ModelRequest([Message.user("q")], tools=tools))

    sent = wire_tools(vendor, body)

    assert [name for name, _, _ in sent] == [t.name for t in tools]
    assert {name: tool_problems(vendor, name, p, strict) for name, p, strict in sent} == {t.name: [] for t in tools}


# --- round trip: instances of the schema as sent pass Cadre's validator ------------------


def instances(schema: dict[str, Any]) -> list[Any]:
    """Instances of `schema` read as sent: every property filled (empty and two-item arrays, each enum value
    in turn). Values are ordinary, not adversarial: a bound the vendor cannot take (told in `description`)
    is the validator's and the repair turn's job."""
    return [generate(schema, schema, variant) for variant in range(4)]


def generate(node: dict[str, Any], root: dict[str, Any], variant: int) -> Any:
    if "$ref" in node:
        *_, name = node["$ref"].split("/")
        return generate(root["$defs"][name], root, variant)
    if "enum" in node:
        return node["enum"][variant % len(node["enum"])]
    if "anyOf" in node:
        return generate(node["anyOf"][variant % len(node["anyOf"])], root, variant)
    kind = node.get("type")
    if kind == "object":
        return {k: generate(sub, root, variant) for k, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [generate(node["items"], root, variant + i) for i in range(2 * (variant % 2))]
    return {"string": "text", "integer": 3, "number": 2.5, "boolean": variant % 2 == 0, "null": None}[kind]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("name", list(STRUCTURED))
async def test_instances_of_the_schema_as_sent_pass_cadres_validator(vendor, name):
    schema, check = STRUCTURED[name]
    body = await sent_body(vendor, ModelRequest([Message.user("q")], output_schema=schema, schema_name=name))
    sent = json.loads(json.dumps(wire_output_schema(vendor, body)))

    for instance in instances(sent):
        check(ModelResponse(text=json.dumps(instance), output=instance, model=f"{vendor}:m"))


def test_a_review_finding_with_a_title_survives_the_round_trip():
    # The regression: `Finding.title` is a property named like the schema annotation `title`.
    [finding] = instances(review.REVIEW_SCHEMA)[1]["findings"][:1]
    assert "title" in finding
    assert review.REVIEW_SCHEMA["$defs"]["Finding"]["properties"]["title"] == {"type": "string"}


def test_closing_moves_bounds_into_the_description_and_keeps_every_property():
    closed = close_schema(
        {
            "type": "object",
            "title": "T",
            "properties": {
                "title": {"type": "string", "title": "Title", "minLength": 1, "description": "Heading"},
                "default": {"type": "integer", "minimum": 0, "default": 3},
            },
        }
    )
    assert closed == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "Heading (minLength: 1)"},
            "default": {"type": "integer", "description": "(minimum: 0)"},
        },
        "additionalProperties": False,
        "required": ["title", "default"],
    }


def test_a_generated_instance_that_breaks_a_told_bound_is_refused_by_the_validator():
    # The bound is gone from the schema as sent, so Cadre's validator must still hold it.
    schema, check = STRUCTURED["oracle_answer"]
    answer = generate(schema, schema, 0) | {"answer": ""}
    with pytest.raises(OutputInvalidError, match="answer"):
        check(ModelResponse(text=json.dumps(answer), output=answer, model="openai:m"))
