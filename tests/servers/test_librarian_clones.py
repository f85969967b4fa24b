"""On-demand clones against a real local bare repository (file:// URLs, real git)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from cadre_librarian.clones import Clones
from cadre_librarian.sources import NetworkError, NotFoundError, SourceError

pytestmark = pytest.mark.anyio

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}

RETRY_V1 = '''"""Retry helpers."""


def backoff_delay(attempt):
    """Seconds to wait before the next attempt."""
    return 2 ** attempt
'''

RETRY_V2 = '''"""Retry helpers."""


def backoff_delay(attempt, cap=30):
    """Seconds to wait before the next attempt, capped."""
    return min(cap, 2 ** attempt)
'''

POOL = '''"""Connection pooling."""


class ConnectionPool:
    """Keeps idle sockets for reuse."""

    def __init__(self, max_idle: int = 10):
        self.max_idle = max_idle

    def acquire_socket(self, host: str):
        """Return an idle socket for host or open a new one."""
        return None
'''


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write(root: Path, rel: str, text: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


class Remote:
    """A bare repository `acme/widgets` with a tag, a branch and a few commits."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.work = tmp / "work"
        self.work.mkdir()
        git(self.work, "init", "-q", "-b", "main")
        write(self.work, "src/retry.py", RETRY_V1)
        write(self.work, "README.md", "# Widgets\n\nversion one\n")
        write(self.work, "assets/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
        (self.work / "escape").symlink_to("/etc")
        self.commit("first")
        git(self.work, "tag", "v1.0")
        self.v1 = git(self.work, "rev-parse", "HEAD")
        write(self.work, "src/retry.py", RETRY_V2)
        write(self.work, "src/pool.py", POOL)
        self.commit("second")
        self.main = git(self.work, "rev-parse", "HEAD")
        git(self.work, "checkout", "-q", "-b", "feature")
        write(self.work, "README.md", "# Widgets\n\nfeature branch\n")
        self.commit("feature work")
        self.feature = git(self.work, "rev-parse", "HEAD")
        git(self.work, "checkout", "-q", "main")
        (tmp / "remote" / "acme").mkdir(parents=True)
        self.bare = tmp / "remote" / "acme" / "widgets.git"
        git(tmp, "clone", "-q", "--bare", str(self.work), str(self.bare))

    def commit(self, message: str) -> None:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)

    def push_main(self, rel: str, text: str) -> str:
        write(self.work, rel, text)
        self.commit("later")
        git(self.work, "push", "-q", str(self.bare), "main")
        return git(self.work, "rev-parse", "HEAD")

    def url_for(self, repo: str) -> str:
        return (self.tmp / "remote" / f"{repo}.git").as_uri()


@pytest.fixture(scope="module")
def remote_base(tmp_path_factory: pytest.TempPathFactory) -> Remote:
    return Remote(tmp_path_factory.mktemp("remote"))


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


def counting_git(tmp: Path) -> tuple[str, Path]:
    """A git wrapper that logs each call's arguments, one line each."""
    log = tmp / "git-calls.log"
    script = tmp / "git-wrapper"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec git "$@"\n')
    script.chmod(0o755)
    return str(script), log


def calls(log: Path, word: str) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if f" {word} " in f" {line} ")


@pytest.fixture
def clones(remote_base: Remote, tmp_path: Path):
    made = Clones(tmp_path / "cache", url_for=remote_base.url_for, timeout=30)
    yield made
    made.close()


async def test_clone_and_search_finds_the_file_and_lines(clones: Clones, remote_base: Remote):
    hits = await clones.search("acme/widgets", "ConnectionPool acquire_socket idle socket")
    assert hits, "expected a hit"
    top = hits[0]
    assert (top.source, top.package_or_repo, top.version_or_ref) == ("github", "acme/widgets", "main")
    assert top.path == "src/pool.py"
    lines = POOL.split("\n")
    assert top.text == "\n".join(lines[top.start_line - 1 : top.end_line])
    assert "def acquire_socket" in top.text
    assert (
        top.url
        == f"https://github.com/acme/widgets/blob/{remote_base.main}/src/pool.py#L{top.start_line}-L{top.end_line}"
    )
    checkout = await clones.checkout("acme/widgets")
    assert (checkout.path.parent / f"index-{remote_base.main}.sqlite").exists()
    assert not (checkout.path / ".git").exists()


async def test_read_at_tag_branch_and_sha_gives_that_version(clones: Clones, remote_base: Remote):
    at_tag = await clones.read("acme/widgets", "src/retry.py", ref="v1.0")
    at_main = await clones.read("acme/widgets", "src/retry.py")
    at_feature = await clones.read("acme/widgets", "README.md", ref="feature")
    at_sha = await clones.read("acme/widgets", "src/retry.py", ref=remote_base.v1, start_line=4, end_line=6)
    assert at_tag.text == RETRY_V1.rstrip("\n")
    assert at_tag.version_or_ref == "v1.0"
    assert at_tag.url == f"https://github.com/acme/widgets/blob/{remote_base.v1}/src/retry.py#L1-L6"
    assert "cap=30" in at_main.text
    assert "feature branch" in at_feature.text
    assert (at_sha.start_line, at_sha.end_line) == (4, 6)
    assert at_sha.text.startswith("def backoff_delay(attempt):")
    assert at_sha.version_or_ref == remote_base.v1
    tag = await clones.checkout("acme/widgets", "v1.0")
    branch = await clones.checkout("acme/widgets", "feature")
    sha = await clones.checkout("acme/widgets", remote_base.v1)
    assert (tag.kind, tag.commit) == ("tag", remote_base.v1)
    assert (branch.kind, branch.commit) == ("branch", remote_base.feature)
    assert (sha.kind, sha.commit) == ("sha", remote_base.v1)
    with pytest.raises(NotFoundError, match="pool.py"):
        await clones.read("acme/widgets", "src/pool.py", ref="v1.0")


async def test_second_checkout_reuses_without_git(remote_base: Remote, tmp_path: Path):
    wrapper, log = counting_git(tmp_path)
    clones = Clones(tmp_path / "cache", url_for=remote_base.url_for, git=wrapper)
    first = await clones.checkout("acme/widgets", "v1.0")
    before = log.read_text()
    assert calls(log, "clone") == 1
    again = await clones.checkout("https://github.com/acme/widgets.git", "v1.0")
    fresh = await Clones(tmp_path / "cache", url_for=remote_base.url_for, git=wrapper).checkout("acme/widgets", "v1.0")
    assert again == first
    assert fresh.path == first.path
    assert log.read_text() == before


async def test_concurrent_checkouts_of_one_key_clone_once(remote_base: Remote, tmp_path: Path):
    wrapper, log = counting_git(tmp_path)
    clones = Clones(tmp_path / "cache", url_for=remote_base.url_for, git=wrapper)
    results = []

    async def one() -> None:
        results.append(await clones.checkout("acme/widgets"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert calls(log, "clone") == 1
    assert len({r.path for r in results}) == 1
    assert (results[0].path / "src" / "pool.py").is_file()
    assert not clones._locks, "each key's lock is dropped once nobody holds or waits for it"


async def test_racing_instances_both_end_with_one_complete_checkout(remote_base: Remote, tmp_path: Path):
    """Two instances (as two processes would) clone the same key at once: the rename decides, nothing half-made."""
    a = Clones(tmp_path / "cache", url_for=remote_base.url_for)
    b = Clones(tmp_path / "cache", url_for=remote_base.url_for)
    results = []

    async def one(c: Clones) -> None:
        results.append(await c.checkout("acme/widgets", "feature"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, a)
        tg.start_soon(one, b)
    assert results[0].path == results[1].path
    assert (results[0].path / "README.md").read_text() == "# Widgets\n\nfeature branch\n"
    key_dir = results[0].path.parent
    assert sorted(p.name for p in key_dir.iterdir()) == sorted(["checkout.json", remote_base.feature])


async def test_stale_branch_is_refetched_only_when_it_moved(remote: Remote, tmp_path: Path):
    wrapper, log = counting_git(tmp_path)
    clones = Clones(tmp_path / "cache", url_for=remote.url_for, git=wrapper, refresh_after=0)
    first = await clones.checkout("acme/widgets")
    unchanged = await clones.checkout("acme/widgets")
    assert (unchanged.commit, calls(log, "clone"), calls(log, "ls-remote")) == (first.commit, 1, 1)
    assert unchanged.fetched_at >= first.fetched_at
    moved = remote.push_main("NEWS.md", "news\n")
    later = await clones.checkout("acme/widgets")
    assert later.commit == moved
    assert calls(log, "clone") == 2
    assert (later.path / "NEWS.md").is_file()
    assert not first.path.exists(), "the old commit's tree is removed"
    tag = await clones.checkout("acme/widgets", "v1.0")
    await clones.checkout("acme/widgets", "v1.0")
    assert tag.kind == "tag"
    assert calls(log, "ls-remote") == 2, "tags are never re-fetched"


async def test_cache_keeps_the_most_recently_used(remote_base: Remote, tmp_path: Path):
    clones = Clones(tmp_path / "cache", url_for=remote_base.url_for, max_checkouts=2)
    first = await clones.checkout("acme/widgets", "v1.0")
    past = time.time() - 100
    os.utime(first.path.parent, (past, past))
    second = await clones.checkout("acme/widgets", "feature")
    third = await clones.checkout("acme/widgets")
    assert not first.path.parent.exists()
    assert second.path.is_dir()
    assert third.path.is_dir()


async def test_unknown_repo_ref_and_sha_are_not_found(clones: Clones):
    with pytest.raises(NotFoundError, match="acme/nothing"):
        await clones.checkout("acme/nothing")
    with pytest.raises(NotFoundError, match="'no-such-branch'"):
        await clones.checkout("acme/widgets", "no-such-branch")
    with pytest.raises(NotFoundError, match="1234567890"):
        await clones.checkout("acme/widgets", "1234567890" * 4)
    assert not [p for p in clones.cache_dir.rglob(".tmp-*")], "failed clones leave no temp folder"


async def test_timeout_kills_git_and_says_what_to_change(tmp_path: Path):
    script = tmp_path / "slow-git"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    clones = Clones(tmp_path / "cache", url_for=lambda r: "file:///nowhere", git=str(script), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"cloning acme/widgets timed out after 0.5 s; read single files"):
        await clones.checkout("acme/widgets")
    assert time.monotonic() - started < 5


async def test_missing_git_says_install_git(tmp_path: Path):
    clones = Clones(tmp_path / "cache", git=str(tmp_path / "no-git-here"))
    with pytest.raises(SourceError, match="install git"):
        await clones.checkout("acme/widgets")


async def test_paths_are_confined_to_the_checkout(clones: Clones):
    for bad in ("../../../../etc/passwd", "escape/passwd", "src/../../checkout.json"):
        with pytest.raises(SourceError, match="outside acme/widgets"):
            await clones.read("acme/widgets", bad)
    with pytest.raises(SourceError, match="binary"):
        await clones.read("acme/widgets", "assets/logo.png")
    with pytest.raises(SourceError, match="folder") as folder:
        await clones.read("acme/widgets", "src")
    with pytest.raises(NotFoundError, match="nope.py") as missing:
        await clones.read("acme/widgets", "src/nope.py")
    with pytest.raises(SourceError, match="is a file") as file:
        await clones.list_dir("acme/widgets", "README.md")
    assert "github_tree" in str(folder.value) and "github_tree" in str(missing.value), "errors name real tools"
    assert "clone_read" in str(file.value)
    assert await clones.list_dir("acme/widgets") == ["assets/", "src/", "README.md", "escape"]
    assert await clones.list_dir("acme/widgets", "/src") == ["pool.py", "retry.py"]
    with pytest.raises(SourceError, match="outside"):
        await clones.list_dir("acme/widgets", "..")


async def test_checkout_refuses_a_path_written_as_a_repository(clones: Clones):
    with pytest.raises(SourceError, match="owner/name"):
        await clones.checkout("../etc/passwd")


def hanging_git(tmp: Path) -> tuple[str, Path]:
    """A git that makes the clone's target folder, writes its pid and hangs (as a huge clone would)."""
    pid_file = tmp / "git.pid"
    script = tmp / "hanging-git"
    script.write_text(
        f'#!/bin/sh\nfor a; do last="$a"; done\nmkdir -p "$last"\necho $$ > "{pid_file}"\nexec sleep 30\n'
    )
    script.chmod(0o755)
    return str(script), pid_file


@pytest.mark.slow
async def test_cancelled_clone_kills_git_and_leaves_no_temp_folder(tmp_path: Path):
    wrapper, pid_file = hanging_git(tmp_path)
    clones = Clones(tmp_path / "cache", url_for=lambda r: "file:///nowhere", git=wrapper, timeout=30)
    started = time.monotonic()
    with anyio.move_on_after(1.0) as scope:
        await clones.checkout("acme/widgets")
    assert scope.cancelled_caught
    assert time.monotonic() - started < 5
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not list(clones.cache_dir.rglob(".tmp-*")), "a cancelled clone leaves no temp folder"
    assert not clones._locks, "no lock is kept for a key nobody uses"


async def test_slow_search_gives_way_to_the_callers_time_limit(clones: Clones):
    checkout = await clones.checkout("acme/widgets")
    engine = clones.engine(checkout)

    def slow_search(query: str, limit: int = 10):
        time.sleep(3)  # a big tree's first index build
        raise AssertionError("abandoned")

    engine.search = slow_search  # type: ignore[method-assign]
    started = time.monotonic()
    with anyio.move_on_after(0.3):
        await clones.search("acme/widgets", "anything")
    assert time.monotonic() - started < 2


async def test_a_clone_never_shows_a_secret_file_or_a_secret(remote: Remote, tmp_path: Path):
    from tests.secret_corpus import corpus, leaks, notes_md

    found = corpus()
    remote.push_main(".env", "DB_PASSWORD=" + "x1Y2z3" * 4 + "\n")
    remote.push_main("docs/notes.md", notes_md(found))
    made = Clones(tmp_path / "cache", url_for=remote.url_for, timeout=30)
    try:
        with pytest.raises(SourceError, match="secret file"):
            await made.read("acme/widgets", ".env")
        notes = await made.read("acme/widgets", "docs/notes.md", start_line=1, end_line=400)
        hits = await made.search("acme/widgets", "BEGIN PRIVATE KEY password token secret")
    finally:
        made.close()
    assert "Ordinary text the tools must still show." in notes.text
    assert hits and not leaks(found, notes.text + "\n".join(h.text for h in hits))
