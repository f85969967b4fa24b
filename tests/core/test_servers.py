"""The one list of servers: what each server's entry point advertises matches the server it builds."""

from importlib.metadata import EntryPoint

import pytest
from mcp import Client

from cadre_core.config import ROLES
from cadre_core.errors import CadreError
from cadre_core.servers import GROUP, installed, lookup

pytestmark = pytest.mark.anyio


async def test_every_advertised_server_builds_and_has_its_tools(tmp_path):
    servers = installed()
    assert list(servers) == ["librarian", "oracle", "search", "vision"]
    for info in servers.values():
        assert info.distribution == info.script == f"cadre-{info.name}"
        assert set(info.roles) <= set(ROLES) and next(iter(info.roles)) == info.role
        module = __import__(info.module, fromlist=["create_server"])
        async with Client(module.create_server(root=tmp_path)) as client:
            listed = (await client.list_tools()).tools
            assert client.server_info.name == info.script
            instructions = client.instructions or ""
        tools = {t.name for t in listed}
        assert set(info.roles.values()) <= tools, info.name
        # Claude Code keeps only tools marked `anthropic/alwaysLoad` out of its tool search (codegraph#1696):
        # the primary tool, and only it, so the rest stay cheap
        always = {t.name for t in listed if (t.meta or {}).get("anthropic/alwaysLoad") is True}
        assert always == {info.tool}, info.name
        # two sentences for a tool search to match: what the server is, then when to use it
        assert instructions.count(". ") == 1 and instructions.endswith(".") and "Use it" in instructions, info.name
    assert servers["oracle"].roles == {"oracle": "consult_oracle", "review": "review_change"}
    assert servers["search"].package == "cadre_search"


def test_lookup_takes_either_name_and_names_the_choices():
    assert lookup("cadre-oracle") is lookup("oracle") is installed()["oracle"]
    choices = "librarian, oracle, search, vision"
    with pytest.raises(CadreError, match=rf"unknown server 'poet'; use one of {choices} \(or --url\)"):
        lookup("poet", hint=" (or --url)")


@pytest.mark.parametrize("value", ["json:dumps", "cadre_oracle.about:SERVER", "tests.core.test_servers:EXTRA"])
def test_an_entry_point_that_is_not_a_server_info_is_refused(monkeypatch, value):
    bad = EntryPoint("poet", value, GROUP)  # not a dict; another server's name; a field ServerInfo lacks
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [bad] if group == GROUP else [])
    installed.cache_clear()
    try:
        with pytest.raises(CadreError, match=rf"'poet = {value}' in group cadre.servers is not the fields of a"):
            installed()
    finally:
        installed.cache_clear()


EXTRA = {"name": "poet", "module": "m", "tool": "t", "role": "r", "script": "s", "description": "d", "colour": "red"}
