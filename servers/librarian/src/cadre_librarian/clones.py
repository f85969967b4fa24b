"""Git clones on demand: shallow checkouts in the user cache dir, searched with the Search engine.

Layout of the cache (default `platformdirs.user_cache_dir("cadre")/clones`), one folder per (repo, ref):

    owner+name@ref-<hash>/
      checkout.json          repo, ref, kind (branch|tag|sha), commit, fetched_at; written atomically
      <commit>/              the files at that commit (no .git); appears only complete, by rename
      index-<commit>.sqlite  the Search engine's index of that tree
      .tmp-<random>/         a clone in progress (never reused; swept when older than an hour)

A clone is made in a temp folder beside its target and renamed into place, so a crashed clone never
leaves a half checkout that is used. One clone per key at a time in a process (an anyio lock per key,
dropped when nobody holds or waits for it); across processes the rename decides: the loser discards its
copy and uses the winner's. A clone cut off by its caller (the librarian's per-tool time limit, say) is
not kept running: git's whole process group is killed and the temp folder removed, and the next call
starts over; `timeout` bounds each git step for callers without a limit of their own. A branch
checkout older than `refresh_after` (a day) is checked with `git ls-remote` and re-cloned when the branch
moved; tags and SHAs are never re-fetched. The cache keeps the `max_checkouts` most recently used
checkouts (20) and deletes older ones after each new clone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import structlog

from cadre_core.errors import clip
from cadre_core.files import is_secret_path, is_text_file, read_text
from cadre_librarian.github_shapes import check_repo
from cadre_librarian.locks import KeyedLocks
from cadre_librarian.sources import Excerpt, NetworkError, NotFoundError, SourceError, slice_lines

if TYPE_CHECKING:
    from cadre_search.engine import Engine

log = structlog.get_logger("cadre.librarian.clones")

MAX_CHECKOUTS = 20
REFRESH_AFTER = 86_400.0
MAX_HIT_LINES = 60
MAX_READ_BYTES = 10_000_000
_SWEEP_AFTER = 3_600.0
_SHA = re.compile(r"[0-9a-fA-F]{40}")
_REF = re.compile(r"[A-Za-z0-9._/+@-]{1,255}")


@dataclass(frozen=True)
class Checkout:
    """A complete shallow checkout of `repo` at `commit`."""

    path: Path
    repo: str
    ref: str
    """The ref asked for, or the default branch's name when none was given."""
    commit: str
    kind: str
    """"branch", "tag" or "sha"."""
    fetched_at: float

    def blob_url(self, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
        """A GitHub URL pinned to the commit, with line anchors when lines are given."""
        url = f"https://github.com/{self.repo}/blob/{self.commit}/{quote(path)}"
        if start_line is not None:
            url += f"#L{start_line}" + (f"-L{end_line}" if end_line and end_line != start_line else "")
        return url


def normalize_ref(ref: str | None) -> str | None:
    """The ref, or None for the default branch; refuses refs git could take for options or paths."""
    if ref is None or not ref.strip() or ref.strip() == "HEAD":
        return None
    ref = ref.strip()
    if not _REF.fullmatch(ref) or ref.startswith(("-", "/")) or ".." in ref or ref.endswith((".lock", "/")):
        raise SourceError(
            f"'{clip(ref)}' is not a valid git ref; pass a branch, a tag or a full 40-character commit SHA"
        )
    return ref


def _key_name(repo: str, ref: str | None) -> str:
    digest = hashlib.sha256(f"{repo.lower()}@{ref or ''}".encode()).hexdigest()[:10]
    shown = re.sub(r"[^A-Za-z0-9._-]", "_", ref or "HEAD")[:40]
    return f"{repo.lower().replace('/', '+')}@{shown}-{digest}"


class Clones:
    """Shallow clones of GitHub repositories, made on demand and reused."""

    def __init__(
        self,
        cache_dir: Path | str | None = None,
        *,
        url_for: Callable[[str], str] = lambda repo: f"https://github.com/{repo}.git",
        timeout: float = 120.0,
        git: str = "git",
        max_checkouts: int = MAX_CHECKOUTS,
        refresh_after: float = REFRESH_AFTER,
    ):
        if cache_dir is None:
            import platformdirs

            cache_dir = Path(platformdirs.user_cache_dir("cadre")) / "clones"
        self.cache_dir = Path(cache_dir)
        self.url_for = url_for
        self.timeout = timeout
        self.git = git
        self.max_checkouts = max(1, max_checkouts)
        self.refresh_after = refresh_after
        self._locks = KeyedLocks()
        """key name -> (lock, how many callers hold or wait for it); dropped at zero."""
        self._engines: dict[Path, Engine] = {}
        self._engine_lock = threading.RLock()
        """One engine call at a time: a search abandoned by its caller may still be running in its thread."""

    # ---- checkouts -------------------------------------------------------------------------------

    async def checkout(self, repo: str, ref: str | None = None) -> Checkout:
        """A checkout of `repo` at `ref` (default branch when None): reused, refreshed or cloned."""
        repo, ref = check_repo(repo), normalize_ref(ref)
        key_dir = self.cache_dir / _key_name(repo, ref)
        async with self._locks.hold(key_dir.name):
            current = self._current(key_dir)
            if current is not None and not self._stale(current):
                _touch(key_dir)
                return current
            if current is not None:
                refreshed = await self._refresh(current, key_dir, "HEAD" if ref is None else f"refs/heads/{ref}")
                if refreshed is not None:
                    return refreshed
            made = await self._clone(repo, ref, key_dir)
        await anyio.to_thread.run_sync(self._evict, key_dir, self._locks.busy())
        return made

    def _current(self, key_dir: Path) -> Checkout | None:
        try:
            meta = json.loads((key_dir / "checkout.json").read_text())
            checkout = Checkout(**{**meta, "path": key_dir / meta["commit"]})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return checkout if checkout.path.is_dir() else None

    def _stale(self, checkout: Checkout) -> bool:
        return checkout.kind == "branch" and time.time() - checkout.fetched_at > self.refresh_after

    async def _refresh(self, current: Checkout, key_dir: Path, remote_ref: str) -> Checkout | None:
        """The same checkout, re-dated, when its branch has not moved; None when it must be re-cloned."""
        what = _Target(current.repo, current.ref)
        try:
            out = await self._git(["ls-remote", "--", self.url_for(current.repo), remote_ref], what)
        except NotFoundError:
            raise
        except SourceError as exc:
            log.warning("clone_refresh_failed", repo=current.repo, ref=current.ref, error=str(exc))
            return current  # a day-old checkout beats no answer
        remote = out.split()[0] if out.strip() else None
        if remote is None:
            raise NotFoundError(f"branch '{current.ref}' no longer exists in {current.repo}; pass another ref")
        if remote != current.commit:
            return None
        fresh = Checkout(**{**asdict(current), "fetched_at": time.time()})
        _write_meta(key_dir, fresh)
        _touch(key_dir)
        return fresh

    async def _clone(self, repo: str, ref: str | None, key_dir: Path) -> Checkout:
        await anyio.to_thread.run_sync(lambda: key_dir.mkdir(parents=True, exist_ok=True))
        tmp = key_dir / f".tmp-{uuid.uuid4().hex}"
        url = self.url_for(repo)
        what = _Target(repo, ref)
        try:
            if ref is not None and _SHA.fullmatch(ref):
                await self._git(["init", "-q", str(tmp)], what)
                await self._git(["-C", str(tmp), "fetch", "-q", "--depth", "1", "--no-tags", "--", url, ref], what)
                await self._git(["-C", str(tmp), "checkout", "-q", "--detach", "FETCH_HEAD"], what)
                kind, name = "sha", ref.lower()
            else:
                branch = ["--branch", ref] if ref else []
                args = ["clone", "-q", "--depth", "1", "--single-branch", "--no-tags", *branch, "--", url, str(tmp)]
                await self._git(args, what)
                head = await self._git(["-C", str(tmp), "symbolic-ref", "-q", "--short", "HEAD"], what, check=False)
                kind = "branch" if head.strip() else "tag"
                name = ref or head.strip()
            commit = (await self._git(["-C", str(tmp), "rev-parse", "HEAD"], what)).strip()
            checkout = Checkout(key_dir / commit, repo, name, commit, kind, time.time())
            await anyio.to_thread.run_sync(self._install, tmp, checkout, key_dir)
        finally:
            # shielded: a cancelled caller's scope would cancel this await at once and leave the folder
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(tmp, ignore_errors=True))
        log.info("cloned", repo=repo, ref=name, commit=commit, kind=kind)
        return checkout

    def _install(self, tmp: Path, checkout: Checkout, key_dir: Path) -> None:
        """Rename the finished clone into place (or keep the copy another process put there first)."""
        shutil.rmtree(tmp / ".git", ignore_errors=True)
        try:
            os.rename(tmp, checkout.path)
        except OSError:
            if not checkout.path.is_dir():
                raise
        _write_meta(key_dir, checkout)
        _touch(key_dir)
        for old in key_dir.iterdir():
            keep = old.name in (checkout.commit, "checkout.json") or old.name.startswith(
                (".", f"index-{checkout.commit}.")
            )
            if not keep:
                self._drop(old)

    def _drop(self, path: Path) -> None:
        with self._engine_lock:
            engine = self._engines.pop(path, None)
            if engine is not None and engine._index is not None:
                engine._index.close()
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def _evict(self, keep: Path, busy: frozenset[str]) -> None:
        """Delete all but the `max_checkouts` most recently used checkouts (not `busy` keys), and stale temps."""
        try:
            keys = [p for p in self.cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return
        keys.sort(key=_mtime, reverse=True)
        for key_dir in keys[self.max_checkouts :]:
            if key_dir == keep or key_dir.name in busy:
                continue
            trash = self.cache_dir / f".trash-{uuid.uuid4().hex}"
            try:
                os.rename(key_dir, trash)
            except OSError:
                continue
            with self._engine_lock:
                for engine_path in [p for p in self._engines if p.parent == key_dir]:
                    self._drop(engine_path)
            shutil.rmtree(trash, ignore_errors=True)
            log.info("clone_evicted", key=key_dir.name)
        cutoff = time.time() - _SWEEP_AFTER
        for key_dir in [self.cache_dir, *keys[: self.max_checkouts]]:
            with contextlib.suppress(OSError):
                for tmp in key_dir.iterdir():
                    if tmp.name.startswith((".tmp-", ".trash-")) and _mtime(tmp) < cutoff:
                        shutil.rmtree(tmp, ignore_errors=True)

    # ---- git -------------------------------------------------------------------------------------

    async def _git(self, args: list[str], what: Any, *, check: bool = True) -> str:
        """Run git with a time limit (the process group is killed on timeout); stdout, or a SourceError."""
        cmd = [self.git, "-c", f"core.hooksPath={os.devnull}", "-c", "advice.detachedHead=false"]
        cmd += ["-c", "init.defaultBranch=main", *args]
        try:
            proc = await anyio.open_process(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_git_env(),
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise SourceError(
                f"git is not installed or not runnable ('{self.git}'): install git (https://git-scm.com/downloads) "
                "and make sure it is on PATH"
            ) from exc
        out, err = bytearray(), bytearray()
        timed_out = False
        try:
            with anyio.fail_after(self.timeout):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_drain, proc.stdout, out)
                    tg.start_soon(_drain, proc.stderr, err)
                    await proc.wait()
        except TimeoutError:
            timed_out = True
        finally:
            if proc.returncode is None:
                _kill(proc)
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await proc.aclose()
        if timed_out:
            raise NetworkError(
                f"cloning {what} timed out after {self.timeout:g} s; read single files over the GitHub API "
                "instead (github_read / github_tree, or read_source with a path)"
            )
        if check and proc.returncode != 0:
            raise _git_error(what, err.decode("utf-8", "replace"))
        return out.decode("utf-8", "replace")

    # ---- reading ---------------------------------------------------------------------------------

    def engine(self, checkout: Checkout) -> Engine:
        """The Search engine over a checkout, its index beside it in the cache."""
        engine = self._engines.get(checkout.path)
        if engine is None:
            from cadre_search.engine import Engine

            index = checkout.path.parent / f"index-{checkout.commit}.sqlite"
            engine = self._engines[checkout.path] = Engine(checkout.path, index_path=index)
        return engine

    async def search(self, repo: str, query: str, *, ref: str | None = None, limit: int = 10) -> list[Excerpt]:
        """The best-matching spans of the repository (one per file), as excerpts with pinned GitHub URLs."""
        checkout = await self.checkout(repo, ref)
        engine = self.engine(checkout)

        def run() -> list[Excerpt]:
            with self._engine_lock:
                result = engine.search(query, limit=limit)
            return [self._hit_excerpt(checkout, hit) for hit in result.hits]

        # the first search builds the index (slow for a big tree); a caller's time limit must still apply
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)

    def _hit_excerpt(self, checkout: Checkout, hit: Any) -> Excerpt:
        lines = read_text(checkout.path / hit.path).split("\n")
        start, end = hit.start_line, min(hit.end_line, len(lines))
        if end - start + 1 > MAX_HIT_LINES:
            first = next((ln for ln in hit.snippet.split("\n") if ln.strip()), "")
            at = next(
                (n for n in range(start, end + 1) if first and lines[n - 1][:200].strip() == first.strip()), start
            )
            start = max(start, min(at - 5, end - MAX_HIT_LINES + 1))
            end = start + MAX_HIT_LINES - 1
        return Excerpt(
            source="github",
            package_or_repo=checkout.repo,
            version_or_ref=checkout.ref,
            path=hit.path,
            start_line=start,
            end_line=end,
            text="\n".join(lines[start - 1 : end]),
            url=checkout.blob_url(hit.path, start, end),
            score=hit.score,
            extra={"commit": checkout.commit, "symbol": hit.symbol or None, "why": hit.why},
        )

    async def read(
        self, repo: str, path: str, *, ref: str | None = None, start_line: int = 1, end_line: int | None = None
    ) -> Excerpt:
        """Lines of one file of the repository (at most 400), confined to the checkout."""
        checkout = await self.checkout(repo, ref)

        def run() -> Excerpt:
            real, rel = _confined(checkout, path)
            if is_secret_path(rel):
                raise SourceError(f"'{rel}' looks like a secret file and is not read")
            if real.is_dir():
                raise SourceError(
                    f"'{rel}' is a folder in {checkout.repo}; pass the path of a file inside it "
                    "(github_tree lists the repository's files)"
                )
            if not real.is_file():
                raise NotFoundError(
                    f"'{rel}' does not exist in {checkout.repo}@{checkout.ref}; check the path "
                    "(github_tree lists the repository's files, clone_search finds them by content)"
                )
            size = real.stat().st_size
            if size > MAX_READ_BYTES:
                raise SourceError(
                    f"'{rel}' is {size:,} bytes, too large to read; find the part you need with clone_search"
                )
            if not is_text_file(real, size):
                raise SourceError(f"'{rel}' is a binary file; only text files can be read")
            start, end, text = slice_lines(read_text(real), start_line, end_line)
            return Excerpt(
                source="github",
                package_or_repo=checkout.repo,
                version_or_ref=checkout.ref,
                path=rel,
                start_line=start,
                end_line=end,
                text=text,
                url=checkout.blob_url(rel, start, end),
                extra={"commit": checkout.commit},
            )

        return await anyio.to_thread.run_sync(run)

    async def list_dir(self, repo: str, path: str = "", ref: str | None = None) -> list[str]:
        """Entries directly under `path`: folders first with a trailing `/`, then files, each sorted."""
        checkout = await self.checkout(repo, ref)

        def run() -> list[str]:
            real, rel = _confined(checkout, path)
            if not real.is_dir():
                if real.exists():
                    raise SourceError(f"'{rel}' is a file in {checkout.repo}; read it with clone_read")
                raise NotFoundError(f"'{rel}' does not exist in {checkout.repo}@{checkout.ref}")
            entries = [(e.is_dir(follow_symlinks=False), e.name) for e in os.scandir(real)]
            return [f"{name}/" for is_dir, name in sorted(entries) if is_dir] + sorted(
                name for is_dir, name in entries if not is_dir
            )

        return await anyio.to_thread.run_sync(run)

    def close(self) -> None:
        """Close the search indexes this instance opened."""
        for engine in self._engines.values():
            if engine._index is not None:
                engine._index.close()
        self._engines.clear()


@dataclass(frozen=True)
class _Target:
    repo: str
    ref: str | None

    def __str__(self) -> str:
        return self.repo + (f"@{self.ref}" if self.ref else "")


def _confined(checkout: Checkout, path: str) -> tuple[Path, str]:
    """The real path of `path` inside the checkout and its repo-relative form; escapes are refused."""
    text = (path or "").replace("\\", "/").strip().lstrip("/")
    if "\x00" in text:
        raise SourceError("the path contains a NUL byte; pass a plain repository path")
    root = checkout.path.resolve()
    real = (root / text).resolve()
    if real != root and not real.is_relative_to(root):
        raise SourceError(
            f"'{path}' leads outside {checkout.repo}; pass a path inside the repository, e.g. 'README.md'"
        )
    rel = real.relative_to(root).as_posix()
    return real, "" if rel == "." else rel


def _git_error(what: Any, stderr: str) -> SourceError:
    text = stderr.strip()
    low = text.lower()
    tail = text.splitlines()[-1][:300] if text else "no output"
    if "remote branch" in low and "not found" in low:
        return NotFoundError(f"ref '{what.ref}' not found in {what.repo}; pass an existing branch, tag or full SHA")
    if "not our ref" in low or "couldn't find remote ref" in low or "no such remote ref" in low:
        return NotFoundError(f"commit '{what.ref}' not found in {what.repo}; pass a full SHA that exists in it")
    if any(
        s in low
        for s in (
            "repository not found",
            "does not appear to be a git repository",
            "could not read username",
            "not found",
            "authentication failed",
        )
    ):
        return NotFoundError(f"repository {what.repo} was not found (or is private); check the owner/name")
    if "could not resolve host" in low or "unable to access" in low or "connection" in low:
        return NetworkError(f"cannot reach the git server for {what.repo}: {tail}; check the network and retry")
    return SourceError(f"git failed for {what}: {tail}")


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="echo",
        SSH_ASKPASS="echo",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_LFS_SKIP_SMUDGE="1",
        LC_ALL="C",
    )
    return env


async def _drain(stream: Any, buf: bytearray) -> None:
    if stream is None:
        return
    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
        async for chunk in stream:
            buf += chunk


def _kill(proc: Any) -> None:
    """Kill git and its helpers (remote-https, index-pack) so no pipe stays open."""
    with contextlib.suppress(OSError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()


def _write_meta(key_dir: Path, checkout: Checkout) -> None:
    meta = {k: v for k, v in asdict(checkout).items() if k != "path"}
    tmp = key_dir / f".meta-{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, key_dir / "checkout.json")


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
