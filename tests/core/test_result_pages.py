"""Large tool results: page 1 inline, the rest read back through `cadre://results/` resource links."""

import json
import time
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceLink, TextContent

from cadre_core.accounting import tool_errors
from cadre_core.mcp_server import build_server
from cadre_core.result_pages import ResultStore, UnknownResultError, split_pages

pytestmark = pytest.mark.anyio


def big_server(rows: int):
    server = build_server("test", "cadre-test", "A test server.")

    @server.tool()
    @tool_errors
    async def dump() -> dict[str, Any]:
        """Many rows."""
        return {"status": "ok", "rows": [f"row {i}: " + "x" * 200 for i in range(rows)]}

    return server


async def read_all(client, result) -> str:
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    first = result.content[0].text
    body = first[: first.index("\n\n[Cadre: this result is")]
    for link in links:
        read = await client.read_resource(str(link.uri))
        body += read.contents[0].text
    return body


async def test_a_result_over_the_default_limit_pages_and_reads_back_exactly():
    server = big_server(400)  # ~86k characters of JSON: over 20k tokens at 3.5 characters a token
    async with Client(server) as client:
        result = await client.call_tool("dump", {})
        links = [b for b in result.content if isinstance(b, ResourceLink)]
        assert isinstance(result.content[0], TextContent) and len(links) >= 1
        assert len(result.content[0].text) < 20_000 * 3.5
        paged = result.structured_content["paged"]
        assert result.structured_content["status"] == "ok" and "rows" not in result.structured_content
        assert paged["pages"] == len(links) + 1 and paged["next"] == str(links[0].uri)
        assert str(links[0].uri) == f"cadre://results/{paged['id']}?page=2"
        assert f"{len(links)} more page" in result.content[0].text
        full = await read_all(client, result)
    original = json.loads(full)
    assert original["rows"] == [f"row {i}: " + "x" * 200 for i in range(400)]
    assert original["status"] == "ok" and "cost_usd" in original


async def test_the_limit_comes_from_config_and_small_results_are_untouched(monkeypatch):
    monkeypatch.setenv("CADRE_SERVER__MAX_RESULT_TOKENS", "1000")
    async with Client(big_server(40)) as client:
        paged = await client.call_tool("dump", {})
        pages = paged.structured_content["paged"]["pages"]
        assert pages >= 3
        assert json.loads(await read_all(client, paged))["rows"][-1].startswith("row 39: ")
    async with Client(big_server(5)) as client:
        small = await client.call_tool("dump", {})
    assert "paged" not in small.structured_content and len(small.structured_content["rows"]) == 5


async def test_an_unknown_id_or_page_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CADRE_SERVER__MAX_RESULT_TOKENS", "1000")
    async with Client(big_server(40)) as client:
        result = await client.call_tool("dump", {})
        rid = result.structured_content["paged"]["id"]
        with pytest.raises(MCPError, match="no stored result 'nope'.*Call the tool again"):
            await client.read_resource("cadre://results/nope?page=2")
        with pytest.raises(MCPError, match="has pages 1 to"):
            await client.read_resource(f"cadre://results/{rid}?page=99")
        with pytest.raises(MCPError, match="page must be a whole number"):
            await client.read_resource(f"cadre://results/{rid}?page=two")


def test_expired_results_are_gone_and_pruned(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.sqlite", keep_s=60)
    old = store.put(["a", "b"])
    assert store.page(old, 2) == ("b", 2)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(UnknownResultError, match="kept for"):
        store.page(old, 1)
    store.put(["c"])  # a write prunes expired rows
    assert store._conn.execute("SELECT count(*) FROM result_pages WHERE id = ?", (old,)).fetchone() == (0,)


def test_two_stores_on_one_file_share_results(tmp_path):
    one, two = ResultStore(tmp_path / "r.sqlite"), ResultStore(tmp_path / "r.sqlite")
    ids = [one.put([f"p{i}"]) for i in range(5)] + [two.put([f"q{i}"]) for i in range(5)]
    assert len(set(ids)) == 10
    assert two.page(ids[0], 1) == ("p0", 1) and one.page(ids[9], 1) == ("q4", 1)


@pytest.mark.parametrize("text", ["", "abc", "line\n" * 1000, "x" * 5000, "a\nb" * 999])
def test_pages_join_to_the_text_and_respect_the_size(text):
    pages = split_pages(text, 700)
    assert "".join(pages) == text and all(len(p) <= 700 for p in pages)


async def test_concurrent_large_results_each_read_back_their_own_pages(monkeypatch):
    import anyio

    monkeypatch.setenv("CADRE_SERVER__MAX_RESULT_TOKENS", "1000")
    server = build_server("test", "cadre-test", "A test server.")

    @server.tool()
    @tool_errors
    async def dump(n: int) -> dict[str, Any]:
        """Rows tagged with n."""
        return {"n": n, "rows": [f"call {n} row {i}: " + "y" * 100 for i in range(60)]}

    bodies: dict[int, dict] = {}
    async with Client(server) as client:

        async def one(n: int) -> None:
            bodies[n] = json.loads(await read_all(client, await client.call_tool("dump", {"n": n})))

        async with anyio.create_task_group() as tg:
            for n in range(6):
                tg.start_soon(one, n)
    assert {n: b["rows"][-1] for n, b in bodies.items()} == {n: f"call {n} row 59: " + "y" * 100 for n in range(6)}


async def test_read_result_reads_the_pages_for_hosts_that_skip_resource_links(monkeypatch):
    # Hosts that never dereference resource_link blocks (anthropics/claude-code#74712) can call a tool.
    monkeypatch.setenv("CADRE_SERVER__MAX_RESULT_TOKENS", "1000")
    server = big_server(40)
    server.add_result_reader()
    async with Client(server) as client:
        assert "read_result" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("dump", {})
        paged = result.structured_content["paged"]
        first = result.content[0].text
        assert f"(or call read_result with id '{paged['id']}' and page 2 to {paged['pages']})" in first
        body = first[: first.index("\n\n[Cadre: this result is")]
        for page in range(2, paged["pages"] + 1):
            read = await client.call_tool("read_result", {"id": paged["id"], "page": page})
            assert not read.is_error and read.structured_content is None  # the page once, as text
            body += read.content[0].text
        gone = await client.call_tool("read_result", {"id": "nope", "page": 2})
        past = await client.call_tool("read_result", {"id": paged["id"], "page": paged["pages"] + 1})
    assert json.loads(body)["rows"][-1].startswith("row 39: ")
    assert (
        gone.is_error and "no stored result 'nope'" in gone.content[0].text and "Traceback" not in gone.content[0].text
    )
    assert past.is_error and f"has pages 1 to {paged['pages']}; ask for one of those" in past.content[0].text


async def test_without_a_reader_the_note_names_only_resource_links(monkeypatch):
    monkeypatch.setenv("CADRE_SERVER__MAX_RESULT_TOKENS", "1000")
    async with Client(big_server(40)) as client:
        assert "read_result" not in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("dump", {})
    assert "with resources/read;" in result.content[0].text and "read_result" not in result.content[0].text
