"""Every tool of every server: input and output schemas are valid JSON Schema 2020-12, and tools/list is small."""

import json

import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from cadre_librarian.server import create_server as librarian
from cadre_oracle.server import create_server as oracle
from cadre_search.server import create_server as search
from cadre_vision.server import create_server as vision

pytestmark = pytest.mark.anyio
BUDGETS = {"oracle": (oracle, 900), "librarian": (librarian, 900), "search": (search, 600), "vision": (vision, 600)}


@pytest.mark.parametrize("name", sorted(BUDGETS))
async def test_schemas_are_valid_and_the_list_fits_its_token_budget(name, tmp_path):
    create, budget = BUDGETS[name]
    async with Client(create(root=tmp_path)) as client:
        tools = (await client.list_tools()).tools
    assert tools  # an empty list would pass every check below
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        if tool.output_schema is not None:
            Draft202012Validator.check_schema(tool.output_schema)
        assert tool.description and len(tool.description) <= 200
    size = len(json.dumps([t.model_dump(mode="json", exclude_none=True, by_alias=True) for t in tools])) / 4
    assert size <= budget


def unbounded(schema, where: str = "") -> list[str]:
    """Where a schema takes a string without maxLength, a list without maxItems or an unbounded number."""
    found = []
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "string" and "maxLength" not in schema and "enum" not in schema:
            found.append(f"{where}: string without maxLength")
        if kind == "array" and "maxItems" not in schema:
            found.append(f"{where}: list without maxItems")
        if kind in ("integer", "number") and not {"minimum", "maximum"} <= schema.keys():
            found.append(f"{where}: number without minimum and maximum")
        for key, value in schema.items():
            found += unbounded(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += unbounded(value, f"{where}[{i}]")
    return found


@pytest.mark.parametrize("name", sorted(BUDGETS))
async def test_every_argument_is_bounded(name, tmp_path):
    async with Client(BUDGETS[name][0](root=tmp_path)) as client:
        tools = (await client.list_tools()).tools
    assert [f"{t.name}{w}" for t in tools for w in unbounded(t.input_schema)] == []
