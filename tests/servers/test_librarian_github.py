"""The GitHub source against a loopback fake of the REST API (real HTTP, no network)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from cadre_librarian.github import GitHub, check_repo, locate, token_from_env
from cadre_librarian.github_cache import ResponseCache, is_immutable
from cadre_librarian.github_http import GitHubHTTP
from cadre_librarian.github_shapes import is_repo_name
from cadre_librarian.sources import NetworkError, NotFoundError, RateLimitedError, SourceError

pytestmark = pytest.mark.anyio

TOKEN = "ghp_TESTtoken0123456789abcdefABCDEF0123"
SHA = "3f1c0d2e9b8a7f6e5d4c3b2a1908f7e6d5c4b3a2"
CORE_PY = "\n".join(
    [
        '"""Widgets: the core."""',
        "",
        "import time",
        "",
        "",
        "class RetryPolicy:",
        '    """How often to retry a widget call."""',
        "",
        "    def __init__(self, attempts: int = 3, backoff: float = 0.5):",
        "        self.attempts = attempts",
        "        self.backoff = backoff",
        "",
        "    def delays(self):",
        "        return [self.backoff * 2**n for n in range(self.attempts)]",
        "",
        "",
        "def call_with_retry(policy: RetryPolicy, fn):",
        "    for delay in policy.delays():",
        "        try:",
        "            return fn()",
        "        except TimeoutError:",
        "            time.sleep(delay)",
        "    return fn()",
        "",
    ]
)
FILES: dict[str, bytes] = {
    "src/widgets/core.py": CORE_PY.encode(),
    "src/widgets/__init__.py": b"from .core import RetryPolicy\n",
    "README.md": b"# Widgets\n\nRetrying widget calls.\n",
    "assets/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(64),
    "data/big.txt": b"x" * 1_100_000,
}
REPO_JSON = {
    "id": 1296269,
    "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
    "name": "widgets",
    "full_name": "acme/widgets",
    "private": False,
    "owner": {"login": "acme", "id": 1, "type": "Organization"},
    "html_url": "https://github.com/acme/widgets",
    "description": "Widgets that retry",
    "fork": False,
    "url": "https://api.github.com/repos/acme/widgets",
    "pushed_at": "2025-11-02T10:00:00Z",
    "stargazers_count": 1234,
    "watchers_count": 1234,
    "language": "Python",
    "forks_count": 56,
    "archived": False,
    "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"},
    "topics": ["retry", "widgets"],
    "default_branch": "main",
}
COMMITS = [
    {
        "sha": f"{n:040x}",
        "commit": {
            "author": {"name": f"Dev {n}", "email": "dev@example.com", "date": f"2025-10-{1 + n % 28:02d}T12:00:00Z"},
            "committer": {
                "name": "GitHub",
                "email": "noreply@github.com",
                "date": f"2025-10-{1 + n % 28:02d}T12:00:00Z",
            },
            "message": f"Change number {n}\n\nLonger description of change {n}.",
        },
        "author": {"login": f"dev{n}"} if n % 2 else None,
        "html_url": f"https://github.com/acme/widgets/commit/{n:040x}",
    }
    for n in range(45)
]
LONG_PATCH = "@@ -1,3 +1,400 @@\n" + "\n".join(f"+line {i}" for i in range(600))
COMPARE = {
    "url": "https://api.github.com/repos/acme/widgets/compare/v1.0.0...v2.0.0",
    "html_url": "https://github.com/acme/widgets/compare/v1.0.0...v2.0.0",
    "status": "ahead",
    "ahead_by": 3,
    "behind_by": 0,
    "total_commits": 3,
    "commits": COMMITS[:3],
    "files": [
        {
            "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
            "filename": "src/widgets/core.py",
            "status": "modified",
            "additions": 400,
            "deletions": 3,
            "changes": 403,
            "patch": LONG_PATCH,
        },
        {
            "filename": "src/widgets/retry.py",
            "previous_filename": "src/widgets/old_retry.py",
            "status": "renamed",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "patch": "@@ -1 +1 @@\n-old\n+new",
        },
        {"filename": "assets/logo.png", "status": "added", "additions": 0, "deletions": 0, "changes": 0},
    ],
}
RELEASES = [
    {
        "tag_name": f"v{3 - n}.0.0",
        "name": f"Widgets {3 - n}.0",
        "draft": False,
        "prerelease": n == 0,
        "published_at": f"2025-0{9 - n}-01T00:00:00Z",
        "html_url": f"https://github.com/acme/widgets/releases/tag/v{3 - n}.0.0",
        "body": ("## Breaking\n" + "- removed `old_retry`\n" * 400) if n == 0 else "Bug fixes.",
    }
    for n in range(3)
]


def blob_tree() -> list[dict[str, Any]]:
    dirs = sorted({"/".join(p.split("/")[:i]) for p in FILES for i in range(1, p.count("/") + 1)})
    entries = [{"path": d, "mode": "040000", "type": "tree", "sha": "d" * 40} for d in dirs]
    entries += [
        {"path": p, "mode": "100644", "type": "blob", "sha": "b" * 40, "size": len(b)} for p, b in FILES.items()
    ]
    return sorted(entries, key=lambda e: e["path"])


class FakeGitHub(ThreadingHTTPServer):
    """Answers like api.github.com for the acme/widgets repository; records every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.requests: list[dict[str, Any]] = []
        self.remaining = {"core": 4999, "search": 29, "code_search": 9}
        self.reset = int(time.time()) + 3600
        self.script: dict[str, list[tuple[int, dict[str, str], Any]]] = {}
        self.delay = 0.0
        self.max_per_page = 10
        self.not_modified = 0

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
        fake.requests.append({"path": path, "query": query, "headers": {k.lower(): v for k, v in self.headers.items()}})
        if fake.delay:
            time.sleep(fake.delay)
        resource = (
            "code_search" if path.startswith("/search/code") else "search" if path.startswith("/search") else "core"
        )
        if path == "/repos/acme/widgets/contents/data/endless.txt":
            return self.endless()
        if fake.script.get(path):
            status, headers, body = fake.script[path].pop(0)
            return self.reply(status, body, resource, headers)
        if fake.remaining[resource] <= 0:
            return self.reply(403, {"message": "API rate limit exceeded for 127.0.0.1."}, resource)
        fake.remaining[resource] -= 1
        auth = self.headers.get("Authorization")
        if auth and auth != f"Bearer {TOKEN}":
            return self.reply(401, {"message": "Bad credentials", "status": "401"}, resource)
        status, body, headers = self.route(path, query, auth)
        self.reply(status, body, resource, headers)

    def route(self, path: str, query: dict[str, str], auth: str | None) -> tuple[int, Any, dict[str, str]]:
        fake = self.server
        not_found = (404, {"message": "Not Found", "status": "404"}, {})
        if path == "/repos/acme/widgets":
            return 200, REPO_JSON, {}
        if path.startswith("/repos/acme/widgets/contents/"):
            file = path.removeprefix("/repos/acme/widgets/contents/")
            if query.get("ref") not in ("main", SHA, "v2.0.0"):
                return not_found
            if file in FILES:
                return 200, FILES[file], {"Content-Type": "text/plain; charset=utf-8"}
            listing = [
                {"name": p.rsplit("/", 1)[-1], "path": p, "type": "file", "sha": "b" * 40, "size": len(b)}
                for p, b in FILES.items()
                if p.startswith(file + "/")
            ]
            return (200, listing, {}) if listing else not_found
        if path in ("/repos/acme/widgets/git/trees/main", f"/repos/acme/widgets/git/trees/{SHA}"):
            return 200, {"sha": SHA, "url": fake.base + path, "tree": blob_tree(), "truncated": False}, {}
        if path == "/repos/acme/widgets/commits":
            per_page, page = min(int(query.get("per_page", 30)), fake.max_per_page), int(query.get("page", 1))
            chunk = COMMITS[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(COMMITS):
                nxt = f"{fake.base}{path}?per_page={per_page}&page={page + 1}"
                last = f"{fake.base}{path}?per_page={per_page}&page={-(-len(COMMITS) // per_page)}"
                headers["Link"] = f'<{nxt}>; rel="next", <{last}>; rel="last"'
            return 200, chunk, headers
        if path == "/repos/acme/widgets/compare/v1.0.0...v2.0.0":
            return 200, COMPARE, {}
        if path == "/repos/acme/widgets/releases":
            return 200, RELEASES[: int(query.get("per_page", 30))], {}
        if path == "/search/repositories":
            items = [{**REPO_JSON, "score": 1.0}]
            return 200, {"total_count": 1, "incomplete_results": False, "items": items}, {}
        if path == "/search/code":
            if not auth:
                return 401, {"message": "Requires authentication", "status": "401"}, {}
            return 200, self.code_hits(), {}
        return not_found

    def endless(self) -> None:
        """A 200 MB body without Content-Length (ended by closing the connection)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        chunk = b"y" * 1_000_000
        for _ in range(200):
            try:
                self.wfile.write(chunk)
            except OSError:
                return
        self.server.endless_done = True  # type: ignore[attr-defined]

    def code_hits(self) -> dict[str, Any]:
        fragment = 'class RetryPolicy:\n    """How often to retry a widget call."""\n'
        items = [
            {
                "name": "core.py",
                "path": "src/widgets/core.py",
                "sha": "b" * 40,
                "url": f"https://api.github.com/repositories/1296269/contents/src/widgets/core.py?ref={SHA}",
                "git_url": "https://api.github.com/repositories/1296269/git/blobs/" + "b" * 40,
                "html_url": f"https://github.com/acme/widgets/blob/{SHA}/src/widgets/core.py",
                "repository": {"id": 1296269, "full_name": "acme/widgets", "private": False},
                "score": 1.0,
                "text_matches": [
                    {
                        "object_url": "https://api.github.com/repositories/1296269/contents/src/widgets/core.py",
                        "object_type": "FileContent",
                        "property": "content",
                        "fragment": fragment,
                        "matches": [{"text": "RetryPolicy", "indices": [6, 17]}],
                    }
                ],
            },
            {
                "name": "gone.py",
                "path": "src/widgets/gone.py",
                "url": f"https://api.github.com/repositories/1296269/contents/src/widgets/gone.py?ref={SHA}",
                "html_url": f"https://github.com/acme/widgets/blob/{SHA}/src/widgets/gone.py",
                "repository": {"full_name": "acme/widgets"},
                "score": 0.5,
                "text_matches": [{"property": "content", "fragment": "RetryPolicy()", "matches": []}],
            },
        ]
        return {"total_count": 2, "incomplete_results": False, "items": items}

    def reply(self, status: int, body: Any, resource: str, headers: dict[str, str] | None = None) -> None:
        fake = self.server
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        etag = 'W/"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            fake.not_modified += 1
            status, raw = 304, b""
        self.send_response(status)
        out = {
            "Content-Type": "application/json; charset=utf-8",
            "ETag": etag,
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(0, fake.remaining[resource])),
            "X-RateLimit-Reset": str(fake.reset),
            "X-RateLimit-Used": "1",
            "X-RateLimit-Resource": resource,
            "X-GitHub-Media-Type": "github.v3; format=json",
            **(headers or {}),
        }
        for name, value in out.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITHUB_TOKEN", "GH_TOKEN", "GH_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(GitHubHTTP, "retry_delay_s", 0.01)


def client(fake: FakeGitHub, tmp_path: Path, **kw: Any) -> GitHub:
    kw.setdefault("token", TOKEN)
    return GitHub(base_url=fake.base, cache_dir=tmp_path / "cache", **kw)


# -- token discovery ------------------------------------------------------------------------------


def test_token_from_env_prefers_github_token_then_gh_token(tmp_path: Path) -> None:
    assert token_from_env({"GITHUB_TOKEN": "ghp_a", "GH_TOKEN": "ghp_b"}, home=tmp_path) == "ghp_a"
    assert token_from_env({"GITHUB_TOKEN": "  ", "GH_TOKEN": "ghp_b\n"}, home=tmp_path) == "ghp_b"
    assert token_from_env({}, home=tmp_path) is None


def test_token_from_gh_hosts_yml(tmp_path: Path) -> None:
    config = tmp_path / "ghconfig"
    config.mkdir()
    (config / "hosts.yml").write_text(
        "github.com:\n    users:\n        octocat:\n            oauth_token: gho_fromusers\n"
        "    git_protocol: https\n    user: octocat\n    oauth_token: gho_fromhost\n"
    )
    assert token_from_env({"GH_CONFIG_DIR": str(config)}, home=tmp_path) == "gho_fromhost"
    (config / "hosts.yml").write_text(
        "github.com:\n    users:\n        octocat:\n            oauth_token: gho_fromusers\n    user: octocat\n"
    )
    assert token_from_env({"GH_CONFIG_DIR": str(config)}, home=tmp_path) == "gho_fromusers"
    home_hosts = tmp_path / "home" / ".config" / "gh" / "hosts.yml"
    home_hosts.parent.mkdir(parents=True)
    home_hosts.write_text("github.com:\n    oauth_token: gho_home\n    git_protocol: ssh\n")
    assert token_from_env({}, home=tmp_path / "home") == "gho_home"
    assert token_from_env({"GITHUB_TOKEN": "ghp_env"}, home=tmp_path / "home") == "ghp_env"


def test_keyring_hosts_yml_and_broken_yaml_give_no_token(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("github.com:\n    git_protocol: https\n    users:\n        octocat:\n    user: octocat\n")
    assert token_from_env({"GH_CONFIG_DIR": str(tmp_path)}, home=tmp_path) is None
    hosts.write_text("github.com: [unclosed\n")
    assert token_from_env({"GH_CONFIG_DIR": str(tmp_path)}, home=tmp_path) is None


# -- pure helpers ---------------------------------------------------------------------------------


def test_repo_names_are_validated() -> None:
    """One check for the API, the clones and the research: GitHub's owner/name rules."""
    for spelled in ("https://github.com/encode/httpx.git", "http://www.github.com/encode/httpx/", " encode/httpx ",
                    "git@github.com:encode/httpx.git", "github:encode/httpx", "GitHub.com/encode/httpx"):  # fmt: skip
        assert check_repo(spelled) == "encode/httpx", spelled
    bad = (
        "httpx",
        "a/b/c",
        "acme/..",
        "acme/.",
        "../etc/passwd",
        "-bad/x",
        "acme/wid gets",
        "",
        "o.k/x",
        "x" * 40 + "/y",
    )
    for name in bad:
        with pytest.raises(SourceError, match="owner/name"):
            check_repo(name)
        assert not is_repo_name(name)
    assert is_repo_name("encode/httpx") and is_repo_name("a-b/c.d_e")
    assert not is_repo_name("https://github.com/encode/httpx")  # a library written as a URL is not a repo name
    with pytest.raises(SourceError, match=r"\(5,000 characters\)"):
        check_repo("x" * 5000)  # a huge input is clipped in the message


def test_only_sha_pinned_urls_are_immutable() -> None:
    base = "https://api.github.com/repos/o/r"
    assert is_immutable(f"{base}/contents/a.py?ref={SHA}")
    assert not is_immutable(f"{base}/contents/a.py?ref=main")
    assert is_immutable(f"{base}/git/trees/{SHA}?recursive=1")
    assert is_immutable(f"{base}/compare/{SHA}...{'c' * 40}")
    assert not is_immutable(f"{base}/compare/v1.0.0...{SHA}")
    assert not is_immutable(f"{base}/releases")
    assert not is_immutable(f"https://api.github.com/search/code?q={SHA}")


def test_locate_maps_fragment_matches_to_file_lines() -> None:
    fragment = 'class RetryPolicy:\n    """How often to retry a widget call."""\n'
    assert locate(CORE_PY, fragment, [{"indices": [6, 17]}]) == (6, 6)
    assert locate(CORE_PY, fragment, [{"indices": [6, 17]}, {"indices": [40, 45]}]) == (6, 7)
    assert locate(CORE_PY, "   def delays(self):\n   changed elsewhere", []) == (13, 13)
    assert locate(CORE_PY, "nothing like this", []) is None


# -- reading --------------------------------------------------------------------------------------


async def test_read_file_defaults_to_default_branch_with_blob_url(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        ex = await gh.read_file("acme/widgets", "/src/widgets/core.py", start_line=6, end_line=8)
        assert (ex.source, ex.package_or_repo, ex.version_or_ref, ex.path) == (
            "github",
            "acme/widgets",
            "main",
            "src/widgets/core.py",
        )
        assert (ex.start_line, ex.end_line) == (6, 8)
        assert ex.text.split("\n")[0] == "class RetryPolicy:"
        assert ex.url == "https://github.com/acme/widgets/blob/main/src/widgets/core.py#L6-L8"
        assert ex.extra["total_lines"] == 23
        assert fake.paths() == ["/repos/acme/widgets", "/repos/acme/widgets/contents/src/widgets/core.py"]
        contents = fake.requests[1]
        assert contents["query"] == {"ref": "main"}
        assert contents["headers"]["accept"] == "application/vnd.github.raw+json"
        assert contents["headers"]["authorization"] == f"Bearer {TOKEN}"
        assert contents["headers"]["x-github-api-version"] == "2022-11-28"


async def test_repeated_request_makes_no_second_network_call(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        first = await gh.read_file("acme/widgets", "README.md")
        sent = gh.requests_made
        assert sent == len(fake.requests) == 2
        assert await gh.read_file("acme/widgets", "README.md") == first
        assert gh.requests_made == sent and len(fake.requests) == sent
    async with client(fake, tmp_path) as again:  # the cache is on disk: a new client pays nothing either
        assert await again.read_file("acme/widgets", "README.md") == first
        assert again.requests_made == 0 and len(fake.requests) == sent


async def test_stale_entry_is_revalidated_with_if_none_match(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path, fresh_for=0) as gh:
        info = await gh.repo_info("acme/widgets")
        assert "if-none-match" not in fake.requests[0]["headers"]
        assert await gh.repo_info("acme/widgets") == info
        assert gh.requests_made == 2 and fake.not_modified == 1
        assert fake.requests[1]["headers"]["if-none-match"].startswith('W/"')
        assert info["stars"] == 1234 and info["license"] == "MIT" and info["default_branch"] == "main"


async def test_content_at_a_commit_sha_is_cached_forever(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path, fresh_for=0) as gh:
        first = await gh.read_file("acme/widgets", "src/widgets/core.py", ref=SHA)
        assert await gh.read_file("acme/widgets", "src/widgets/core.py", ref=SHA) == first
        assert gh.requests_made == 1
        assert first.version_or_ref == SHA and f"/blob/{SHA}/" in first.url


async def test_cache_is_per_token_and_never_stores_the_token(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        await gh.repo_info("acme/widgets")
    async with client(fake, tmp_path, token=None) as anon:
        await anon.repo_info("acme/widgets")
        assert anon.requests_made == 1
        assert "authorization" not in fake.requests[-1]["headers"]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "cache").iterdir() if p.is_file())
    assert b"acme/widgets" in stored and TOKEN.encode() not in stored


async def test_directory_binary_and_large_files_are_refused_clearly(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        with pytest.raises(SourceError, match="is a directory; list it with github_tree"):
            await gh.read_file("acme/widgets", "src/widgets")
        with pytest.raises(SourceError, match="binary"):
            await gh.read_file("acme/widgets", "assets/logo.png")
        with pytest.raises(SourceError, match=r"1\.1 MB, over the 1 MB .* clone_read"):
            await gh.read_file("acme/widgets", "data/big.txt")
        with pytest.raises(SourceError, match="pass the path of a file in the repository; github_tree lists them"):
            await gh.read_file("acme/widgets", "")


async def test_a_large_body_is_not_read_past_the_limit(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        began = time.monotonic()
        with pytest.raises(SourceError, match=r"'data/endless.txt' at 'main' .* is larger than 1 MB, over the 1 MB"):
            await gh.read_file("acme/widgets", "data/endless.txt")
        assert time.monotonic() - began < 5
    assert not getattr(fake, "endless_done", False), "the client stopped reading, so the server never finished"


async def test_tree_lists_paths_under_a_prefix(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        listing = await gh.tree("acme/widgets", path="src")
        assert [e["path"] for e in listing["entries"]] == [
            "src/widgets",
            "src/widgets/__init__.py",
            "src/widgets/core.py",
        ]
        assert listing["entries"][0]["type"] == "dir" and listing["entries"][2]["type"] == "file"
        assert listing["ref"] == "main" and listing["truncated"] is False
        cut = await gh.tree("acme/widgets", ref="main", limit=2)
        assert len(cut["entries"]) == 2 and cut["truncated"] is True and cut["count"] > 2
        with pytest.raises(SourceError, match="is a file; read it with github_read"):
            await gh.tree("acme/widgets", path="README.md")
        with pytest.raises(NotFoundError, match="no folder 'nope'"):
            await gh.tree("acme/widgets", path="nope")


# -- errors ----------------------------------------------------------------------------------------


async def test_404_names_repo_path_and_ref_and_hints_at_tokens(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path, token=None) as gh:
        with pytest.raises(NotFoundError) as err:
            await gh.read_file("acme/widgets", "src/missing.py", ref="main")
        message = str(err.value)
        assert "'src/missing.py' at 'main' in acme/widgets" in message
        assert "private" in message and "GITHUB_TOKEN" in message and "gh auth login" in message
        with pytest.raises(NotFoundError, match="repository acme/nothing"):
            await gh.repo_info("acme/nothing")


async def test_bad_token_names_its_source_and_never_the_token(fake: FakeGitHub, tmp_path: Path) -> None:
    revoked = "ghp_REVOKED0000000000000000000000000000"
    gh = GitHub.from_env({"GITHUB_TOKEN": revoked}, home=tmp_path, base_url=fake.base, cache_dir=tmp_path / "c")
    async with gh:
        with pytest.raises(SourceError) as err:
            await gh.repo_info("acme/widgets")
    assert "401" in str(err.value) and "GITHUB_TOKEN" in str(err.value)
    assert revoked not in str(err.value)


async def test_server_error_is_retried_once_then_reported(fake: FakeGitHub, tmp_path: Path) -> None:
    boom = (502, {}, {"message": "Server Error"})
    fake.script["/repos/acme/widgets"] = [boom]
    async with client(fake, tmp_path) as gh:
        assert (await gh.repo_info("acme/widgets"))["full_name"] == "acme/widgets"
        assert gh.requests_made == 2
        fake.script["/repos/acme/widgets/releases"] = [boom, boom, boom]
        with pytest.raises(NetworkError, match="failed twice with 502 while reading releases of acme/widgets"):
            await gh.releases("acme/widgets")
        assert gh.requests_made == 4 and len(fake.script["/repos/acme/widgets/releases"]) == 1


async def test_spent_rate_limit_refuses_next_call_without_a_request(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.remaining["core"] = 1
    async with client(fake, tmp_path, token=None) as gh:
        await gh.repo_info("acme/widgets")  # answered with x-ratelimit-remaining: 0
        with pytest.raises(RateLimitedError) as err:
            await gh.read_file("acme/widgets", "README.md", ref="main")
        assert gh.requests_made == 1 and len(fake.requests) == 1
        assert err.value.reset_at == fake.reset
        assert "core rate limit is spent until" in str(err.value) and "UTC" in str(err.value)
        assert "GITHUB_TOKEN" in str(err.value)
        assert await gh.repo_info("acme/widgets")  # cached answers still come back
        assert (await gh.search_repositories("widgets"))[0]["full_name"] == "acme/widgets"  # another resource
        assert gh.requests_made == 2


async def test_403_with_remaining_zero_is_rate_limited(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.remaining["core"] = 0
    async with client(fake, tmp_path) as gh:
        with pytest.raises(RateLimitedError) as err:
            await gh.releases("acme/widgets")
        assert err.value.reset_at == fake.reset
        with pytest.raises(RateLimitedError):
            await gh.commits("acme/widgets")
        assert gh.requests_made == 1


@pytest.mark.slow
async def test_secondary_limit_waits_once_when_short_and_raises_when_long(fake: FakeGitHub, tmp_path: Path) -> None:
    secondary = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}
    fake.script["/repos/acme/widgets"] = [(403, {"Retry-After": "1"}, secondary)]
    async with client(fake, tmp_path) as gh:
        began = time.monotonic()
        assert (await gh.repo_info("acme/widgets"))["full_name"] == "acme/widgets"
        assert 0.9 < time.monotonic() - began < 5 and gh.requests_made == 2
        fake.script["/repos/acme/widgets/releases"] = [(429, {"Retry-After": "60"}, secondary)]
        began = time.monotonic()
        with pytest.raises(RateLimitedError, match="wait 60 s"):
            await gh.releases("acme/widgets")
        assert time.monotonic() - began < 1 and gh.requests_made == 3


async def test_timeout_is_a_clear_error_within_the_limit(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.delay = 2.0
    async with client(fake, tmp_path, timeout=0.3) as gh:
        began = time.monotonic()
        with pytest.raises(NetworkError, match=r"did not answer within 0\.3 s while reading repository acme/widgets"):
            await gh.repo_info("acme/widgets")
        assert time.monotonic() - began < 1.5


async def test_invalid_repo_fails_before_any_request(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        with pytest.raises(SourceError, match="owner/name"):
            await gh.read_file("widgets", "README.md")
        assert gh.requests_made == 0


# -- search ----------------------------------------------------------------------------------------


async def test_code_search_without_token_says_how_to_get_one(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path, token=None) as gh:
        with pytest.raises(SourceError, match=r"needs a token.*GITHUB_TOKEN.*gh auth login"):
            await gh.search_code("RetryPolicy", repo="acme/widgets")
    assert fake.requests == []


async def test_code_search_hits_become_excerpts_at_real_lines(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        hits = await gh.search_code("RetryPolicy", repo="acme/widgets", language="python", limit=5)
    search = fake.requests[0]
    assert search["path"] == "/search/code"
    assert search["query"]["q"] == "RetryPolicy repo:acme/widgets language:python"
    assert search["headers"]["accept"] == "application/vnd.github.text-match+json"
    located, missing = hits
    assert (located.version_or_ref, located.path, located.start_line, located.end_line) == (
        SHA,
        "src/widgets/core.py",
        3,
        9,
    )
    assert located.text.split("\n")[3] == "class RetryPolicy:"
    assert located.url == f"https://github.com/acme/widgets/blob/{SHA}/src/widgets/core.py#L3-L9"
    assert missing.extra["located"] is False and "GitHub has no file" in missing.extra["why"]
    contents = [r for r in fake.requests if "/contents/" in r["path"]]
    assert {r["query"]["ref"] for r in contents} == {SHA}


async def test_search_repositories(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path, token=None) as gh:
        found = await gh.search_repositories("retry language:python", limit=3)
    assert found == [
        {
            "full_name": "acme/widgets",
            "description": "Widgets that retry",
            "stars": 1234,
            "url": "https://github.com/acme/widgets",
            "default_branch": "main",
            "pushed_at": "2025-11-02T10:00:00Z",
        }
    ]
    assert fake.requests[0]["query"] == {"q": "retry language:python", "per_page": "3"}


# -- history ---------------------------------------------------------------------------------------


async def test_commits_follow_link_pagination_up_to_the_limit(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        commits = await gh.commits("acme/widgets", path="src/widgets/core.py", limit=25)
    assert [c["sha"] for c in commits] == [c["sha"] for c in COMMITS[:25]]
    assert [r["query"].get("page", "1") for r in fake.requests] == ["1", "2", "3"]
    assert fake.requests[0]["query"] == {"path": "src/widgets/core.py", "per_page": "25"}
    assert commits[1] == {
        "sha": COMMITS[1]["sha"],
        "date": "2025-10-02T12:00:00Z",
        "author": "dev1",
        "message": "Change number 1",
        "url": COMMITS[1]["html_url"],
    }
    assert commits[0]["author"] == "Dev 0"  # no GitHub account: the git author name


async def test_pagination_never_follows_links_off_the_api(fake: FakeGitHub, tmp_path: Path) -> None:
    evil = (200, {"Link": '<https://evil.example/steal?page=2>; rel="next"'}, RELEASES[:1])
    fake.script["/repos/acme/widgets/releases"] = [evil]
    async with client(fake, tmp_path) as gh:
        with pytest.raises(SourceError, match="refusing to follow a link off the GitHub API"):
            await gh.releases("acme/widgets", limit=5)


async def test_compare_summarises_commits_and_clips_patches(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        diff = await gh.compare("acme/widgets", "v1.0.0", "v2.0.0", limit_files=2)
    assert diff["ahead_by"] == 3 and diff["total_commits"] == 3 and diff["commits_truncated"] is False
    assert [c["message"] for c in diff["commits"]] == ["Change number 0", "Change number 1", "Change number 2"]
    core, renamed = diff["files"]
    assert (core["status"], core["additions"], core["deletions"]) == ("modified", 400, 3)
    assert core["patch_truncated"] is True and len(core["patch"]) < 3100 and core["patch"].endswith("(truncated)")
    assert renamed["previous_filename"] == "src/widgets/old_retry.py" and renamed["patch_truncated"] is False
    assert diff["files_total"] == 3 and diff["files_truncated"] is True
    assert diff["url"] == "https://github.com/acme/widgets/compare/v1.0.0...v2.0.0"


async def test_releases_newest_first_with_clipped_notes(fake: FakeGitHub, tmp_path: Path) -> None:
    async with client(fake, tmp_path) as gh:
        releases = await gh.releases("acme/widgets", limit=2)
    assert [r["tag"] for r in releases] == ["v3.0.0", "v2.0.0"]
    assert releases[0]["prerelease"] is True and releases[0]["body_truncated"] is True
    assert len(releases[0]["body"]) < 4100 and releases[1]["body"] == "Bug fixes."
    assert releases[0]["url"] == "https://github.com/acme/widgets/releases/tag/v3.0.0"


async def test_stale_copy_is_served_while_the_limit_is_spent(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.remaining["core"] = 1
    async with client(fake, tmp_path, fresh_for=0) as gh:
        info = await gh.repo_info("acme/widgets")
        assert await gh.repo_info("acme/widgets") == info
        assert gh.requests_made == 1


async def test_renamed_repository_redirect_is_followed(fake: FakeGitHub, tmp_path: Path) -> None:
    fake.script["/repos/acme/old-widgets"] = [
        (301, {"Location": f"{fake.base}/repos/acme/widgets"}, {"message": "Moved"})
    ]
    async with client(fake, tmp_path) as gh:
        assert (await gh.repo_info("acme/old-widgets"))["full_name"] == "acme/widgets"
    assert fake.paths() == ["/repos/acme/old-widgets", "/repos/acme/widgets"]
    assert fake.requests[1]["headers"]["authorization"] == f"Bearer {TOKEN}"


async def test_network_failures_are_network_errors_and_limits_are_not(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with GitHub(base_url=f"http://127.0.0.1:{port}", cache_dir=tmp_path / "cache") as gh:
        with pytest.raises(NetworkError, match="could not reach GitHub"):
            await gh.repo_info("acme/widgets")
    assert not issubclass(RateLimitedError, NetworkError) and not issubclass(NotFoundError, NetworkError)


async def test_the_cache_is_used_off_the_event_loop(fake: FakeGitHub, tmp_path: Path, monkeypatch) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[str, bool]] = []
    for name in ("get", "put", "touch", "close"):
        original = getattr(ResponseCache, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            seen.append((_name, threading.get_ident() == loop_thread))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ResponseCache, name, spy)
    async with client(fake, tmp_path, fresh_for=0) as gh:
        await gh.repo_info("acme/widgets")
        await gh.repo_info("acme/widgets")  # revalidated: 304 -> touch
    assert {name for name, _ in seen} == {"get", "put", "touch", "close"}
    assert [name for name, on_loop in seen if on_loop] == []


def test_the_response_cache_stores_replaces_and_revalidates_on_each_backend(storage) -> None:
    cache = ResponseCache(storage.target("http"))
    url = "https://api.github.com/repos/acme/widgets"
    cache.put("k", url, "json", 200, {"etag": '"v1"', "x-ratelimit-remaining": "5"}, b"\x00old")
    first = cache.get("k")
    assert first is not None and (first.status, first.body, first.etag, first.immutable) == (
        200,
        b"\x00old",
        '"v1"',
        False,
    )
    cache.put("k", url, "json", 200, {"etag": '"v2"'}, b"new")  # a newer answer replaces the entry
    time.sleep(0.01)
    cache.touch("k", {"x-ratelimit-remaining": "4", "etag": '"ignored"'})  # a 304: fresh again, newer limits
    after = cache.get("k")
    assert after is not None and (after.body, after.etag) == (b"new", '"v2"')
    assert after.headers == {"etag": '"v2"', "x-ratelimit-remaining": "4"} and after.stored_at > first.stored_at
    assert cache.get("missing") is None
    cache.close()
