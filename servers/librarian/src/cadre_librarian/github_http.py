"""GitHub REST transport: token discovery, rate limits, the on-disk cache, retries, errors, pagination.

Every request goes through `GitHubHTTP.get`. The token goes only into the Authorization header of
requests to `base_url`; it never appears in logs, errors or the cache. Bodies are streamed and cut off
at `max_bytes` (`ReplyTooLarge`), and the SQLite cache is used from worker threads, never the event loop.
Timeouts, connection failures and 5xx after the retry raise `NetworkError`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import httpx2
import structlog

from cadre_librarian.github_cache import Cached, ResponseCache, token_identity
from cadre_librarian.sources import NetworkError, NotFoundError, RateLimitedError, SourceError

log = structlog.get_logger("cadre.librarian.github")

JSON = "application/vnd.github+json"
RAW = "application/vnd.github.raw+json"
TEXT_MATCH = "application/vnd.github.text-match+json"
API_VERSION = "2022-11-28"
AUTH_FIX = "set GITHUB_TOKEN (or GH_TOKEN) or run `gh auth login`"
KEPT_HEADERS = ("content-type", "etag", "link", "last-modified")
MAX_SECONDARY_WAIT_S = 5.0
NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
MAX_REPLY_BYTES = 32_000_000
"""The largest reply read at all (a recursive tree of a huge repository is ~7 MB)."""
MAX_ERROR_BYTES = 64_000


class ReplyTooLarge(SourceError):
    """The reply's body is over the caller's `max_bytes`; `size` is its length when the server said it."""

    def __init__(self, message: str, *, limit: int, size: int | None):
        self.limit = limit
        self.size = size
        super().__init__(message)


@dataclass(frozen=True)
class Answer:
    """Status, headers and (capped) body of one response."""

    status_code: int
    headers: httpx2.Headers
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def discover_token(env: Mapping[str, str] | None = None, home: Path | None = None) -> tuple[str | None, str]:
    """(token, where it came from): GITHUB_TOKEN, GH_TOKEN, then gh's hosts.yml; (None, "") if none."""
    env = os.environ if env is None else env
    for var in ("GITHUB_TOKEN", "GH_TOKEN"):
        value = (env.get(var) or "").strip()
        if value:
            return value, var
    for path in _hosts_files(env, home):
        token = _token_from_hosts(path)
        if token:
            return token, str(path)
    return None, ""


def _hosts_files(env: Mapping[str, str], home: Path | None) -> list[Path]:
    home = Path(home) if home is not None else Path.home()
    if env.get("GH_CONFIG_DIR"):
        return [Path(env["GH_CONFIG_DIR"]) / "hosts.yml"]
    found = []
    if env.get("XDG_CONFIG_HOME"):
        found.append(Path(env["XDG_CONFIG_HOME"]) / "gh" / "hosts.yml")
    if env.get("AppData"):
        found.append(Path(env["AppData"]) / "GitHub CLI" / "hosts.yml")
    found.append(home / ".config" / "gh" / "hosts.yml")
    return found


def _token_from_hosts(path: Path) -> str | None:
    """`github.com: oauth_token:` (or the active user's token under `users:`); None when gh keeps it in the keyring."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        log.warning("gh hosts.yml is not valid YAML; ignoring it", path=str(path))
        return None
    host = data.get("github.com") if isinstance(data, dict) else None
    if not isinstance(host, dict):
        return None
    token = host.get("oauth_token")
    if isinstance(token, str) and token.strip():
        return token.strip()
    users = host.get("users")
    if not isinstance(users, dict):
        users = {}
    for name in [host.get("user"), *users]:
        entry = users.get(name) if isinstance(name, str) else None
        token = entry.get("oauth_token") if isinstance(entry, dict) else None
        if isinstance(token, str) and token.strip():
            return token.strip()
    return None


@dataclass(frozen=True)
class Reply:
    """A successful (200 or revalidated) response, from the network or the cache."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    from_cache: bool = False

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def next_url(self) -> str | None:
        match = NEXT_LINK.search(self.headers.get("link", ""))
        return match.group(1) if match else None


def resource_of(path: str) -> str:
    """The rate-limit bucket GitHub charges for a path."""
    if path.startswith("/search/code"):
        return "code_search"
    if path.startswith("/search/"):
        return "search"
    if path.startswith("/graphql"):
        return "graphql"
    return "core"


def _when(reset_at: float) -> str:
    stamp = datetime.fromtimestamp(reset_at, tz=UTC).strftime("%H:%M:%S UTC")
    return f"{stamp} (in {max(0, round(reset_at - time.time()))} s)"


class GitHubHTTP:
    """Cached, rate-limit-aware GET requests to the GitHub REST API."""

    retry_delay_s = 1.0
    """Pause before the single retry of a 5xx."""

    def __init__(
        self,
        *,
        token: str | None,
        token_source: str,
        base_url: str,
        cache_dir: Path | str | None,
        client: httpx2.AsyncClient | None,
        timeout: float,
        fresh_for: float,
        cache_url: str | None = None,
    ):
        """`cache_url`: a `postgresql://` URL for the response cache, else a file under `cache_dir`."""
        self._token = token or None
        self.token_source = token_source or ("the token argument" if token else "")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.fresh_for = float(fresh_for)
        self.requests_made = 0
        self._own_client = client is None
        self._client = client
        if cache_dir is None:
            import platformdirs

            cache_dir = Path(platformdirs.user_cache_dir("cadre")) / "github"
        self.cache = ResponseCache(cache_url or Path(cache_dir) / "http.sqlite")
        self._identity = token_identity(self._token)
        self._limits: dict[str, tuple[int, float]] = {}
        """resource -> (remaining, reset epoch seconds), from the last response's headers."""

    @property
    def has_token(self) -> bool:
        return self._token is not None

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        await anyio.to_thread.run_sync(self.cache.close)

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(follow_redirects=True, timeout=self.timeout)
        return self._client

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = urlencode(sorted((k, str(v)) for k, v in (params or {}).items() if v is not None))
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    # -- rate limits -------------------------------------------------------------------------

    def _limit_message(self, resource: str, reset_at: float) -> str:
        fix = (
            f"or {AUTH_FIX} for a higher limit"
            if not self.has_token
            else "or use a different token (GitHub counts limits per token)"
        )
        return f"GitHub's {resource} rate limit is spent until {_when(reset_at)}; wait until then, {fix}"

    def _check_limit(self, resource: str) -> None:
        remaining, reset_at = self._limits.get(resource, (1, 0.0))
        if remaining <= 0 and reset_at > time.time():
            raise RateLimitedError(self._limit_message(resource, reset_at), reset_at=reset_at)

    def _record_limit(self, headers: Mapping[str, str], fallback: str) -> tuple[int, float] | None:
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset_at = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return None
        self._limits[headers.get("x-ratelimit-resource") or fallback] = (remaining, reset_at)
        return remaining, reset_at

    # -- requests ----------------------------------------------------------------------------

    async def get(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        *,
        accept: str = JSON,
        what: str,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> Reply:
        """GET one resource; `what` names it for errors ("file 'x.py' at 'main' in owner/repo").

        A body over `max_bytes` is not read past the limit: `ReplyTooLarge`.
        """
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url(path_or_url, params)
        if not url.startswith(self.base_url + "/"):
            raise SourceError(f"refusing to follow a link off the GitHub API ({urlsplit(url).netloc})")
        path = urlsplit(url).path[len(urlsplit(self.base_url).path) :]
        key = self.cache.key(url, accept, self._identity)
        cached = await anyio.to_thread.run_sync(self.cache.get, key, abandon_on_cancel=True)
        if cached is not None and len(cached.body) > max_bytes:
            raise _too_large(what, max_bytes, len(cached.body))
        if cached is not None and cached.fresh(self.fresh_for):
            return self._from_cache(url, cached)
        resource = resource_of(path)
        try:
            self._check_limit(resource)
        except RateLimitedError:
            if cached is not None:
                log.info("rate limited; serving a stale cached response", url=url, age_s=round(cached.age()))
                return self._from_cache(url, cached)
            raise
        headers = {"Accept": accept, "X-GitHub-Api-Version": API_VERSION, "User-Agent": "cadre-librarian"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        response = await self._send(url, headers, resource, what, max_bytes)
        kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
        kept.update({k.lower(): v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit")})
        if response.status_code == 304:
            if cached is None:
                raise SourceError(f"GitHub answered 304 Not Modified for {what} without a cached copy; retry")
            await anyio.to_thread.run_sync(self.cache.touch, key, kept)
            return self._from_cache(url, cached)
        await anyio.to_thread.run_sync(self.cache.put, key, url, accept, response.status_code, kept, response.content)
        return Reply(url, response.status_code, kept, response.content)

    @staticmethod
    def _from_cache(url: str, cached: Cached) -> Reply:
        return Reply(url, cached.status, cached.headers, cached.body, from_cache=True)

    async def _send(self, url: str, headers: dict[str, str], resource: str, what: str, max_bytes: int) -> Answer:
        """Send with one retry for 5xx and one short wait for a secondary limit; errors for everything else."""
        server_retry = secondary_retry = True
        while True:
            response = await self._once(url, headers, what, max_bytes)
            status = response.status_code
            limit = self._record_limit(response.headers, resource)
            if status in (200, 304):
                return response
            if status >= 500 and server_retry:
                server_retry = False
                log.info("github server error; retrying once", status=status, url=url)
                await anyio.sleep(self.retry_delay_s)
                continue
            if status in (403, 429):
                if limit is not None and limit[0] <= 0:
                    raise RateLimitedError(self._limit_message(resource, limit[1]), reset_at=limit[1])
                wait = _retry_after(response.headers)
                if wait is not None and wait <= MAX_SECONDARY_WAIT_S and secondary_retry:
                    secondary_retry = False
                    await anyio.sleep(wait)
                    continue
                if wait is not None or status == 429 or "secondary rate limit" in _message(response).lower():
                    wait = 60.0 if wait is None else wait
                    raise RateLimitedError(
                        f"GitHub's secondary rate limit asks to wait {wait:g} s before reading {what}; "
                        "retry after that, and make fewer requests at once",
                        reset_at=time.time() + wait,
                    )
            raise self._error(response, what)

    async def _once(self, url: str, headers: dict[str, str], what: str, max_bytes: int) -> Answer:
        """One GET, its body streamed up to `max_bytes` (error bodies up to 64 KB), all within `timeout`."""
        self.requests_made += 1
        try:
            with anyio.fail_after(self.timeout):
                async with self._http().stream(
                    "GET", url, headers=headers, timeout=self.timeout, follow_redirects=True
                ) as response:
                    ok = response.status_code == 200
                    body = await _read_capped(response, max_bytes if ok else MAX_ERROR_BYTES)
                    if body is None:
                        if ok:
                            raise _too_large(what, max_bytes, _content_length(response))
                        body = b""
                    return Answer(response.status_code, response.headers, body)
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise NetworkError(
                f"GitHub did not answer within {self.timeout:g} s while reading {what}; retry later, "
                "or check the network"
            ) from exc
        except httpx2.HTTPError as exc:
            raise NetworkError(
                f"could not reach GitHub while reading {what} ({type(exc).__name__}); check the network"
            ) from exc

    def _error(self, response: Answer, what: str) -> SourceError:
        status, message = response.status_code, _message(response)
        if status == 404:
            hint = "" if self.has_token else f"; if it is a private repository, {AUTH_FIX}"
            return NotFoundError(
                f"GitHub has no {what} (404); check the spelling of the repository, path and ref{hint}"
            )
        if status == 401:
            return SourceError(
                f"GitHub rejected the token from {self.token_source} (401 {message or 'Bad credentials'}); "
                f"replace it with a valid token, {AUTH_FIX}, or unset it to use the public limit"
            )
        if status == 403:
            fix = f"; {AUTH_FIX}" if not self.has_token else "; check the token's scopes and SSO authorisation"
            return SourceError(f"GitHub refused access to {what} (403 {message}){fix}")
        if status >= 500:
            return NetworkError(f"GitHub failed twice with {status} while reading {what}; retry later")
        return SourceError(f"GitHub could not serve {what} ({status} {message}); check the request")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None


async def _read_capped(response: httpx2.Response, max_bytes: int) -> bytes | None:
    """The body, or None as soon as it is known to be over `max_bytes` (by Content-Length or while reading)."""
    length = _content_length(response)
    if length is not None and length > max_bytes:
        return None
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


def _content_length(response: httpx2.Response) -> int | None:
    if response.headers.get("content-encoding"):
        return None  # the header counts compressed bytes
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _too_large(what: str, limit: int, size: int | None) -> ReplyTooLarge:
    said = f"{size / 1e6:.1f} MB" if size is not None else f"larger than {limit / 1e6:g} MB"
    return ReplyTooLarge(
        f"GitHub's reply for {what} is {said}, over the {limit / 1e6:g} MB read at once", limit=limit, size=size
    )


def _message(response: Answer) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip()
    return str(data.get("message", ""))[:300] if isinstance(data, dict) else ""
