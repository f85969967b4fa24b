"""Documentation pages against a loopback HTTP server: conversion, limits, errors, search and the page cache."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import pytest

import cadre_librarian.web as web_module
from cadre_librarian.sources import NetworkError, NotFoundError, SourceError
from cadre_librarian.web import Web, collapse_blank_lines, html_to_markdown, is_public_address
from cadre_librarian.windows import sections

pytestmark = pytest.mark.anyio

FILLER = "\n".join(f"<p>Background paragraph {i} about sessions and pools.</p>" for i in range(30))

GUIDE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Guide — Widgets 2.0 documentation</title>
  <style>body {{ color: red; }}</style>
  <script>window.analytics = "TRACKING_SNIPPET";</script>
</head>
<body>
  <header class="site-header"><a href="/">Widgets home</a> SITE_HEADER_TEXT</header>
  <nav class="sidebar"><ul><li><a href="/docs/a.html">NAV_LINK_ONE</a></li><li>NAV_LINK_TWO</li></ul></nav>
  <main>
    <h1>Widgets guide<a class="headerlink" href="#widgets-guide">¶</a></h1>
    <p>Widgets is a client for the <a href="/docs/api.html">widget API</a>.</p>
    <h2>Installation</h2>
    <p>Install it with pip.</p>
    <h2>Sessions</h2>
    {FILLER}
    <h2>Configuring retries</h2>
    <p>Pass <code>max_retries</code> and <code>backoff_factor</code> to the client to retry failed requests.</p>
    <div class="highlight-python notranslate"><div class="highlight"><pre><span class="n">client</span> = Client(
    max_retries=3,
    backoff_factor=0.5,
)
</pre></div></div>
    <p>Retries apply to idempotent methods only.</p>
    <h2>Logging</h2>
    <p>Enable debug logging to see each request.</p>
    <noscript>NOSCRIPT_TEXT</noscript>
    <svg><text>SVG_TEXT</text></svg>
  </main>
  <aside>ASIDE_TEXT</aside>
  <footer>FOOTER_TEXT</footer>
  <script>console.log("SCRIPT_AT_END")</script>
</body>
</html>
"""

LLMS = "# Widgets\n\n> A client for the widget API.\n\n- [Guide](https://widgets.example/docs/guide.html)\n"


class Handler(BaseHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        path = self.path
        if path == "/docs/guide.html":
            self.send(200, "text/html; charset=utf-8", GUIDE.encode())
        elif path == "/llms.txt":
            self.send(200, "text/plain; charset=utf-8", LLMS.encode())
        elif path == "/llms-full.txt":
            self.send(200, "text/html", b"<html><body><div id=app></div></body></html>")
        elif path == "/old":
            self.send(301, "text/plain", b"", {"Location": "/docs/guide.html"})
        elif path == "/loop":
            self.send(302, "text/plain", b"", {"Location": "/loop"})
        elif path == "/latin1.txt":
            self.send(200, "text/plain; charset=iso-8859-1", "café\n\n\n\nend\n".encode("latin-1"))
        elif path == "/notes.md":
            self.send(200, "text/markdown", b"# Notes\n\nkeep *this* as is\n")
        elif path == "/broken":
            self.send(503, "text/plain", b"down for maintenance")
        elif path == "/paper.pdf":
            self.send(200, "application/pdf", b"%PDF-1.7 binary")
        elif path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            line = b"x" * 99 + b"\n"
            for _ in range(50_000):  # 5 MB
                try:
                    self.wfile.write(line * 100)
                except OSError:
                    return
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(200):  # a byte every 0.1 s: no single read ever times out
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
        else:
            self.send(404, "text/plain", b"not found")


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def base(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
async def web():
    async with Web(allow_private=True, timeout=5) as made:
        yield made


async def test_docs_html_becomes_markdown_of_the_main_content(web: Web, base: str):
    page = await web.fetch(f"{base}/docs/guide.html")
    assert page.title == "Guide — Widgets 2.0 documentation"
    assert page.content_type == "text/html"
    assert not page.truncated
    text = page.text
    assert text.startswith("# Widgets guide\n")
    assert "## Configuring retries" in text
    assert "```python\nclient = Client(\n    max_retries=3,\n    backoff_factor=0.5,\n)\n```" in text
    assert "`max_retries`" in text
    assert f"[widget API]({base}/docs/api.html)" in text, "links are made absolute"
    for noise in ("TRACKING", "SCRIPT_AT_END", "color: red", "NAV_LINK", "SITE_HEADER", "ASIDE_TEXT", "FOOTER_TEXT"):
        assert noise not in text
    assert "NOSCRIPT_TEXT" not in text
    assert "SVG_TEXT" not in text
    assert "¶" not in text
    assert "\n\n\n" not in text


async def test_plain_text_and_markdown_pass_through_with_their_charset(web: Web, base: str):
    llms = await web.fetch(f"{base}/llms.txt")
    assert llms.text == LLMS.rstrip("\n")
    assert llms.title is None
    notes = await web.fetch(f"{base}/notes.md")
    assert notes.text == "# Notes\n\nkeep *this* as is"
    latin = await web.fetch(f"{base}/latin1.txt")
    assert latin.text == "café\n\nend"


async def test_redirect_is_followed_and_the_final_url_reported(web: Web, base: str, server):
    page = await web.fetch(f"{base}/old")
    assert page.url == f"{base}/old"
    assert page.final_url == f"{base}/docs/guide.html"
    again = await web.read(f"{base}/docs/guide.html", 1, 1)
    assert again.text == "# Widgets guide"
    assert server.requests == ["/old", "/docs/guide.html"], "the final address is cached too"
    assert not web._locks, "a URL's lock is dropped once nobody holds or waits for it"
    with pytest.raises(SourceError, match="redirects more than 5 times"):
        await web.fetch(f"{base}/loop")
    assert server.requests.count("/loop") == 6


async def test_huge_body_is_cut_at_max_bytes(base: str):
    async with Web(allow_private=True, max_bytes=100_000) as web:
        started = time.monotonic()
        page = await web.fetch(f"{base}/huge")
    assert page.truncated
    assert len(page.text) <= 100_000
    assert len(page.text) > 90_000
    assert any("larger than 100,000 bytes" in note for note in page.notes)
    assert time.monotonic() - started < 5


@pytest.mark.slow
async def test_slow_page_hits_the_overall_deadline(base: str):
    async with Web(allow_private=True, timeout=1.0) as web:
        started = time.monotonic()
        with pytest.raises(NetworkError, match=r"took over 1 s"):
            await web.fetch(f"{base}/slow")
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.5


async def test_binary_missing_and_non_http_are_refused(web: Web, base: str):
    with pytest.raises(SourceError, match="application/pdf, not a text page"):
        await web.fetch(f"{base}/paper.pdf")
    with pytest.raises(NotFoundError, match="HTTP 404"):
        await web.fetch(f"{base}/nothing-here")
    for bad in ("file:///etc/passwd", "ftp://example.com/x", "javascript:alert(1)", "docs.example.com/page"):
        with pytest.raises(SourceError, match="not an http"):
            await web.fetch(bad)


async def test_local_addresses_are_refused_by_default(base: str, server):
    async with Web() as web:
        with pytest.raises(SourceError, match="local or private address"):
            await web.fetch(f"{base}/llms.txt")
    assert server.requests == []


async def test_search_picks_the_window_with_the_query_terms(web: Web, base: str, server):
    url = f"{base}/docs/guide.html"
    hits = await web.search(url, "how to configure max_retries and backoff", limit=3)
    top = hits[0]
    assert top.text.startswith("## Configuring retries")
    assert "backoff_factor=0.5" in top.text
    assert (top.source, top.package_or_repo, top.version_or_ref, top.path) == (
        "web",
        "127.0.0.1",
        None,
        "/docs/guide.html",
    )
    assert top.url == url
    assert top.extra["heading"] == "## Configuring retries"
    assert all(h.score is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert await web.search(url, "zebra xylophone") == []
    page = await web.fetch(url)
    lines = page.text.split("\n")
    assert top.text == "\n".join(lines[top.start_line - 1 : top.end_line])
    assert server.requests == ["/docs/guide.html"]


async def test_read_returns_numbered_lines_and_never_refetches(web: Web, base: str, server):
    url = f"{base}/docs/guide.html"
    page = await web.fetch(url)
    lines = page.text.split("\n")
    at = lines.index("## Configuring retries") + 1
    excerpt = await web.read(url, at, at + 2)
    assert (excerpt.start_line, excerpt.end_line) == (at, at + 2)
    assert excerpt.text == "\n".join(lines[at - 1 : at + 2])
    assert excerpt.text.startswith("## Configuring retries\n")
    assert excerpt.numbered().startswith(f"{at}  ## Configuring retries")
    await web.read(url + "#configuring-retries", at, at)
    assert server.requests == ["/docs/guide.html"]


async def test_llms_txt_is_found_under_the_path_or_origin(web: Web, base: str, server):
    page = await web.llms_txt(f"{base}/docs/guide.html")
    assert page is not None
    assert page.final_url == f"{base}/llms.txt"
    assert server.requests == ["/docs/llms.txt", "/llms.txt"]
    full = await web.llms_txt(base, full=True)
    assert full is not None and full.final_url == f"{base}/llms.txt", "an HTML answer is not an llms-full.txt"
    assert "/llms-full.txt" in server.requests


async def test_llms_txt_absent_is_none():
    import httpx2

    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        if request.url.path == "/llms-full.txt":
            return httpx2.Response(403)
        return httpx2.Response(404)

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    async with client, Web(client=client, allow_private=True) as web:
        assert await web.llms_txt("docs.example/guide/", full=True) is None
    assert seen == [
        "https://docs.example/guide/llms-full.txt",
        "https://docs.example/guide/llms.txt",
        "https://docs.example/llms-full.txt",
        "https://docs.example/llms.txt",
    ]


def test_sections_follow_headings_and_cut_long_ones():
    text = "\n".join(
        ["# Title", "## Intro", "one", "two", "## Long", *[f"line {i}" for i in range(100)], "## End", "x"]
    )
    lines = text.split("\n")
    spans = sections(lines)
    assert spans[0] == (1, 4), "a heading-only section joins the next"
    assert all(e - s + 1 <= 40 for s, e in spans)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    assert spans[-1] == (len(lines) - 1, len(lines))
    covered = [n for s, e in spans for n in range(s, e + 1)]
    assert covered == list(range(1, len(lines) + 1))
    small = ["## A", "a", "### A.1", "b", "## B", "c", "```", "# not a heading", "```"]
    assert sections(small) == [(1, 4), (5, 9)], "a short section takes its subsections, not its siblings"


def test_blank_runs_collapse_outside_code_fences_only():
    assert collapse_blank_lines("a  \n\n\n\nb\n```\nx\n\n\ny\n```\n\n") == "a\n\nb\n```\nx\n\n\ny\n```"


def test_page_without_main_drops_header_and_footer():
    title, text = html_to_markdown(
        "<html><body><header>TOP</header><h2>Only</h2><p>body <a href='x.html'>link</a></p>"
        "<footer>BOTTOM</footer></body></html>",
        "https://docs.example/a/b.html",
    )
    assert title is None
    assert text == "## Only\n\nbody [link](https://docs.example/a/x.html)"


async def test_slow_conversion_runs_off_the_event_loop_within_the_deadline(base: str, monkeypatch):
    def slow_convert(html: str, base_url: str):
        time.sleep(3)  # BeautifulSoup on a very large page
        return None, "late"

    monkeypatch.setattr(web_module, "html_to_markdown", slow_convert)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.05)
            ticks += 1

    async with Web(allow_private=True, timeout=0.5) as web, anyio.create_task_group() as tg:
        tg.start_soon(tick)
        started = time.monotonic()
        with pytest.raises(NetworkError, match=r"took over 0.5 s"):
            await web.fetch(f"{base}/docs/guide.html")
        assert time.monotonic() - started < 2
        assert ticks >= 5, "the event loop kept running during the conversion"
        tg.cancel_scope.cancel()


async def test_network_trouble_is_a_network_error(base: str, web: Web):
    with pytest.raises(NetworkError, match="HTTP 503"):
        await web.fetch(f"{base}/broken")
    with socket_closed() as port, pytest.raises(NetworkError, match="cannot fetch"):
        await web.fetch(f"http://127.0.0.1:{port}/docs")
    with pytest.raises(NotFoundError) as missing:
        await web.fetch(f"{base}/nothing-here")
    assert not isinstance(missing.value, NetworkError)


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield port


def test_only_globally_routable_addresses_are_public():
    refused = [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",  # CGNAT (cloud metadata on some providers)
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "ff02::1",
    ]
    allowed = ["93.184.216.34", "8.8.8.8", "2606:4700::6810:84e5", "::ffff:8.8.8.8", "64:ff9b::808:808"]
    assert [a for a in refused if is_public_address(ipaddress.ip_address(a))] == []
    assert [a for a in allowed if not is_public_address(ipaddress.ip_address(a))] == []


async def test_connection_goes_to_the_checked_address_only(server, monkeypatch):
    """The name is resolved once, at connect time, and the checked address is the one connected to."""
    port = server.server_address[1]
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]  # docs.example.test "rebinds" to loopback

    monkeypatch.setattr(web_module, "_resolve", resolve)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # an environment proxy would bypass the check
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with Web() as web:
        with pytest.raises(SourceError, match=r"docs.example.test: it is a local or private address \(127.0.0.1\)"):
            await web.fetch(f"http://docs.example.test:{port}/llms.txt")
    assert server.requests == []
    assert lookups == ["docs.example.test"]
    monkeypatch.setattr(web_module, "is_public_address", lambda address: True)
    async with Web() as web:
        page = await web.fetch(f"http://docs.example.test:{port}/llms.txt")
    assert page.text == LLMS.rstrip("\n"), "fetched from the address our resolver gave, with no proxy"
    assert server.requests == ["/llms.txt"]
