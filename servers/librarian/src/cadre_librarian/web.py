"""Documentation pages: fetch a URL (llms.txt, a README, a docs page) within size and time limits, as Markdown.

HTML becomes Markdown (markdownify) from the page's `<main>`/`<article>` when it has one, without scripts,
styles, navigation, sidebars, footers and images; headings and code blocks are kept and links made
absolute. Plain text and Markdown pass through; PDFs, images and other binaries are refused. Every fetch
has one overall deadline (`timeout`), the body stops at `max_bytes` and the text at `max_chars` (the page
says `truncated`). Pages are kept in memory per `Web` instance, so checking a citation does not refetch.
The HTML conversion runs in a worker thread, so the deadline also bounds it.

By default only public addresses are read (`allow_private=False`): the client's own connection backend
resolves each host, refuses it when any address is not globally routable (loopback, private, link-local,
CGNAT, multicast, and IPv6 forms that embed such an IPv4 address: mapped, 6to4, Teredo, NAT64), and
connects to the address it checked (TLS still verifies the host name), so a DNS answer that changes
between check and connect cannot reach an internal host. Proxies from the environment are not used then
(`trust_env=False`), since a proxy would connect on our behalf unchecked.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import socket
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio

from cadre_librarian.locks import KeyedLocks
from cadre_librarian.sources import Excerpt, NetworkError, NotFoundError, SourceError, slice_lines
from cadre_librarian.windows import FENCE, HEADING, score_windows

if TYPE_CHECKING:
    import httpx2

MAX_REDIRECTS = 5
MAX_PAGES = 64
USER_AGENT = "cadre-librarian/0.1 (documentation reader)"
ACCEPT = "text/markdown, text/html;q=0.9, text/plain;q=0.8, */*;q=0.1"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-yaml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_STRIP_TAGS = (
    "script",
    "style",
    "noscript",
    "svg",
    "template",
    "iframe",
    "nav",
    "aside",
    "form",
    "button",
    "img",
    "picture",
    "video",
    "audio",
    "canvas",
    "footer",
)


class _StatusError(SourceError):
    """The server answered with an error status (other than 404/410)."""


class _ServerError(_StatusError, NetworkError):
    """The server failed (5xx)."""


@dataclass(frozen=True)
class Page:
    """A fetched page as text: Markdown for HTML, the body itself for text and Markdown."""

    url: str
    final_url: str
    title: str | None
    text: str
    truncated: bool
    content_type: str
    notes: tuple[str, ...] = ()


class Web:
    """Fetches documentation pages; pages are cached in memory for the life of the instance."""

    def __init__(
        self,
        *,
        client: httpx2.AsyncClient | None = None,
        timeout: float = 15.0,
        max_bytes: int = 2_000_000,
        max_chars: int = 400_000,
        allow_private: bool = False,
        max_pages: int = MAX_PAGES,
    ):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.allow_private = allow_private
        self.max_pages = max_pages
        self._client = client
        self._owns_client = client is None
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._locks = KeyedLocks()
        """url -> (lock, how many callers hold or wait for it); dropped at zero."""

    async def __aenter__(self) -> Web:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this instance made it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            import httpx2

            options: dict[str, Any] = {}
            if not self.allow_private:
                options = {"transport": _public_transport(), "trust_env": False}
            self._client = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self.timeout),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
                **options,
            )
        return self._client

    # ---- fetching --------------------------------------------------------------------------------

    async def fetch(self, url: str) -> Page:
        """The page at `url` (cached): redirects followed (≤ 5), body capped, one deadline for all of it."""
        url = check_url(url)
        if (page := self._cached(url)) is not None:
            return page
        async with self._locks.hold(url):
            if (page := self._cached(url)) is not None:
                return page
            try:
                with anyio.fail_after(self.timeout):
                    page = await self._fetch(url)
            except TimeoutError:
                raise NetworkError(
                    f"fetching {url} took over {self.timeout:g} s; try another page of these docs (or its llms.txt)"
                ) from None
            self._remember(url, page)
        return page

    def _cached(self, url: str) -> Page | None:
        page = self._pages.get(url)
        if page is not None:
            self._pages.move_to_end(url)
        return page

    def _remember(self, url: str, page: Page) -> None:
        for key in dict.fromkeys((url, page.final_url)):
            self._pages[key] = page
            self._pages.move_to_end(key)
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)

    async def _fetch(self, url: str) -> Page:
        import httpx2

        client = self._http()
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            await self._check_host(current)
            try:
                async with client.stream(
                    "GET", current, headers={"Accept": ACCEPT}, follow_redirects=False
                ) as response:
                    if response.is_redirect:
                        current = check_url(urljoin(current, response.headers["location"]))
                        continue
                    _check_status(response.status_code, current)
                    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    _check_type(mime, current)
                    body, truncated = await self._read_body(response)
                    charset = response.charset_encoding
                    final = str(response.url)
            except httpx2.TimeoutException:
                raise TimeoutError from None
            except httpx2.HTTPError as exc:
                raise NetworkError(
                    f"cannot fetch {current}: {exc or type(exc).__name__}; check the URL and the network"
                ) from exc
            # BeautifulSoup on a 2 MB page takes seconds: off the event loop, and the deadline can cut it off
            return await anyio.to_thread.run_sync(
                self._page, url, final, mime, body, charset, truncated, abandon_on_cancel=True
            )
        raise SourceError(f"{url} redirects more than {MAX_REDIRECTS} times; pass the page's final address")

    async def _read_body(self, response: Any) -> tuple[bytes, bool]:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                return bytes(body[: self.max_bytes]), True
        return bytes(body), False

    async def _check_host(self, url: str) -> None:
        """For a client passed in (whose connections we do not make): refuse non-public hosts up front.

        Our own client checks at connect time instead (see `_public_transport`), which also holds against
        a DNS answer that changes between this check and the connection.
        """
        if self.allow_private or self._owns_client:
            return
        parts = urlsplit(url)
        try:
            await public_addresses(parts.hostname or "", parts.port or 443)
        except OSError:
            return  # unresolvable: the request itself will say so

    def _page(self, url: str, final: str, mime: str, body: bytes, charset: str | None, truncated: bool) -> Page:
        notes = []
        if truncated:
            notes.append(f"the page is larger than {self.max_bytes:,} bytes; only its beginning was read")
        is_html = mime in _HTML_TYPES or (not mime and body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")))
        if not is_html and b"\x00" in body[:4096]:
            raise SourceError(f"{final} is a binary file, not a page; look for an HTML or Markdown version")
        text = body.decode(_encoding(charset, body if is_html else b""), errors="replace")
        title = None
        if is_html:
            title, text = html_to_markdown(text, final)
        else:
            text = collapse_blank_lines(text.replace("\r\n", "\n"))
        if len(text) > self.max_chars:
            text = text[: text.rfind("\n", 0, self.max_chars) if "\n" in text[: self.max_chars] else self.max_chars]
            truncated = True
            notes.append(f"the text is longer than {self.max_chars:,} characters; only its beginning is kept")
        if not text.strip():
            notes.append("the page has no text (it may be built by JavaScript); try the site's llms.txt or README")
        return Page(
            url, final, title, text, truncated, mime or ("text/html" if is_html else "text/plain"), tuple(notes)
        )

    # ---- reading ---------------------------------------------------------------------------------

    async def read(self, url: str, start_line: int = 1, end_line: int | None = None) -> Excerpt:
        """Lines of the page's text (at most 400); line numbers are those of the converted text."""
        page = await self.fetch(url)
        start, end, text = slice_lines(page.text, start_line, end_line)
        return _excerpt(page, start, end, text)

    async def search(self, url: str, query: str, limit: int = 5) -> list[Excerpt]:
        """The page's best windows for `query`, best first (see `score_windows`)."""
        page = await self.fetch(url)
        lines = page.text.split("\n")
        out = []
        for score, start, end in score_windows(lines, query)[: max(1, limit)]:
            excerpt = _excerpt(page, start, end, "\n".join(lines[start - 1 : end]))
            out.append(replace(excerpt, score=round(score, 3)))
        return out

    async def llms_txt(self, site: str, *, full: bool = False) -> Page | None:
        """The site's llms.txt (llms-full.txt first when `full`), under its path then at the origin; None if absent."""
        parts = urlsplit(site if "://" in site else f"https://{site}")
        origin = check_url(urlunsplit((parts.scheme, parts.netloc, "", "", ""))).rstrip("/")
        path = parts.path
        if "." in path.rsplit("/", 1)[-1]:
            path = path.rsplit("/", 1)[0]
        path = path.rstrip("/")
        names = ("llms-full.txt", "llms.txt") if full else ("llms.txt",)
        for base in dict.fromkeys((f"{origin}{path}", origin)):
            for name in names:
                try:
                    page = await self.fetch(f"{base}/{name}")
                except (NotFoundError, _StatusError):
                    continue
                if page.content_type not in _HTML_TYPES and page.text.strip():
                    return page
        return None


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address, IPv4 addresses embedded in IPv6 forms included."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if not all(is_public_address(v4) for v4 in embedded):
            return False
    return address.is_global and not address.is_multicast


async def public_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, when all are public; a SourceError naming the first that is not.

    OSError when the name does not resolve.
    """
    addresses = await _resolve(host, port)
    for text in addresses:
        if not is_public_address(ipaddress.ip_address(text)):
            raise SourceError(
                f"refusing to fetch from {host}: it is a local or private address ({text}); "
                "only public documentation pages are read"
            )
    return addresses


async def _resolve(host: str, port: int) -> list[str]:
    """IP addresses of `host` (itself when it is one), in the resolver's order, without duplicates."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [str(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos]
    if not found:
        raise OSError(f"{host} has no address")
    return list(dict.fromkeys(found))


class _PublicOnlyBackend:
    """An httpcore network backend that connects only to public addresses, to the very address it checked."""

    def __init__(self) -> None:
        import httpcore2

        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        import httpcore2

        try:
            addresses = await public_addresses(host, port)
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host} ({exc})") from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore2.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:  # noqa: ASYNC109
        raise SourceError("refusing to fetch over a Unix socket; only public documentation pages are read")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _public_transport() -> httpx2.AsyncHTTPTransport:
    """An httpx transport whose connections go through `_PublicOnlyBackend` (no proxies, no env settings)."""
    import httpcore2
    import httpx2

    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    # httpx2 takes no network backend, so its pool is replaced by an equal one that uses ours
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=httpx2.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_PublicOnlyBackend(),  # type: ignore[arg-type]  # duck-typed: httpcore2 is imported lazily
    )
    return transport


def check_url(url: str) -> str:
    """`url` without its fragment if it is an http(s) URL with a host; otherwise a SourceError."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise SourceError(f"'{url}' is not an http(s) URL; pass a web address such as https://docs.example.com/page")
    if not parts.hostname:
        raise SourceError(f"'{url}' has no host; pass a full address such as https://docs.example.com/page")
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))


def _check_status(status: int, url: str) -> None:
    if status in (404, 410):
        raise NotFoundError(f"{url} does not exist (HTTP {status}); check the address or search the docs site")
    if status in (401, 403):
        raise _StatusError(f"{url} refused access (HTTP {status}); it may need a login; try a public page")
    if status == 429:
        raise _StatusError(f"{url} is rate limited (HTTP 429); wait a minute or read another page")
    if status >= 500:
        raise _ServerError(f"{url} answered HTTP {status}; try again later or read another page")
    if status >= 400:
        raise _StatusError(f"{url} answered HTTP {status}; try again later or read another page")


def _check_type(mime: str, url: str) -> None:
    if not mime or mime.startswith("text/") or mime in _HTML_TYPES or mime in _TEXT_TYPES:
        return
    if mime.endswith(("+json", "+xml")):
        return
    raise SourceError(
        f"{url} is {mime}, not a text page; Cadre reads HTML, Markdown and plain text, so look for an HTML version"
    )


def _encoding(declared: str | None, html: bytes) -> str:
    candidates = [declared]
    if not declared and (found := _META_CHARSET.search(html[:4096])):
        candidates.append(found.group(1).decode("ascii"))
    for name in candidates:
        if not name:
            continue
        try:
            return codecs.lookup(name).name
        except LookupError:
            continue
    return "utf-8"


def html_to_markdown(html: str, base_url: str) -> tuple[str | None, str]:
    """(title, Markdown) of an HTML page: main content only, links absolute, blank-line runs collapsed."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(list(_STRIP_TAGS)):
        tag.decompose()
    articles = soup.find_all("article")
    root = soup.find("main") or soup.find(None, {"role": "main"}) or (articles[0] if len(articles) == 1 else None)
    if root is None:
        root = soup.body or soup
        for tag in root.find_all("header"):
            tag.decompose()
    for anchor in root.find_all("a"):
        href = anchor.get("href")
        text = anchor.get_text(strip=True)
        classes: Sequence[str] | str = anchor.get("class") or []
        if "headerlink" in classes or text in ("¶", "#", "§", "🔗") or (not text and not anchor.find(True)):
            anchor.decompose()
        elif not href or str(href).lower().startswith("javascript:"):
            anchor.unwrap()
        else:
            anchor["href"] = urljoin(base_url, str(href))
    converter = MarkdownConverter(
        heading_style="ATX",
        bullets="-",
        code_language_callback=_code_language,
        escape_underscores=False,
        escape_asterisks=False,
        escape_misc=False,
    )
    return title or None, collapse_blank_lines(converter.convert_soup(root))


def _code_language(pre: Any) -> str | None:
    """The language of a `<pre>` from `language-x`/`lang-x`/`highlight-x` classes on it, its code or parents."""
    elements = [pre, pre.find("code"), pre.parent, pre.parent.parent if pre.parent else None]
    for element in elements:
        for cls in (element.get("class") or []) if element is not None and hasattr(element, "get") else []:
            for prefix in ("language-", "lang-", "highlight-"):
                language: str = cls[len(prefix) :]
                if cls.startswith(prefix) and language and language != "default":
                    return language
    return None


def collapse_blank_lines(text: str) -> str:
    """Trailing spaces removed and runs of blank lines made one, except inside fenced code blocks."""
    out: list[str] = []
    fenced = False
    for line in text.split("\n"):
        line = line.rstrip()
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _excerpt(page: Page, start: int, end: int, text: str) -> Excerpt:
    parts = urlsplit(page.final_url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    heading = next((line for line in text.split("\n") if HEADING.match(line)), None)
    return Excerpt(
        source="web",
        package_or_repo=parts.hostname or "",
        version_or_ref=None,
        path=path,
        start_line=start,
        end_line=end,
        text=text,
        url=page.final_url,
        extra={"title": page.title, "heading": heading, "truncated": page.truncated},
    )
