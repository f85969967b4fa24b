"""Workspaces a server serves over HTTP: a client's roots select among them, never add one; no workspace is
ever `/` or the home folder."""

import subprocess
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client

from cadre_core.accounting import tool_errors
from cadre_core.errors import WorkspaceError
from cadre_core.kit import Kit
from cadre_core.mcp_server import HostRoots, build_server
from cadre_core.workspace import ServedWorkspaces, Workspace, normalise_remote, too_broad

HINT = "pass --root"


def git_checkout(path: Path, origin: str | None) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if origin:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    return path


@pytest.fixture
def served(tmp_path):
    alpha = git_checkout(tmp_path / "srv" / "alpha", None)
    beta = git_checkout(tmp_path / "srv" / "beta", "git@github.com:Acme/beta-service.git")
    checkout = git_checkout(tmp_path / "srv" / "checkout-7", "https://github.com/acme/gamma.git")
    return ServedWorkspaces([alpha, beta, checkout], hint=HINT)


def chosen(served: ServedWorkspaces, *roots: tuple[str, str | None]) -> list[str]:
    return [p.name for p in served.select(list(roots)).roots]


def test_real_path_selects_the_workspace_it_is_or_lies_in(served, tmp_path):
    beta = tmp_path / "srv" / "beta"
    assert chosen(served, (beta.as_uri(), None)) == ["beta"]
    (beta / "sub").mkdir()
    assert chosen(served, ((beta / "sub").as_uri(), None)) == ["beta"]
    (tmp_path / "link").symlink_to(beta)  # a path on this machine that resolves into a workspace
    assert chosen(served, ((tmp_path / "link").as_uri(), None)) == ["beta"]


def test_a_laptop_path_selects_by_folder_name_then_by_git_remote(served):
    assert chosen(served, ("file:///home/alice/Beta", None)) == ["beta"]  # folder name, any case
    assert chosen(served, ("file:///home/alice/gamma", None)) == ["checkout-7"]  # origin's repo name
    assert chosen(served, ("file:///home/alice/work", "beta-service")) == ["beta"]  # the root's name
    assert chosen(served, ("file:///x/y", "https://github.com/acme/gamma")) == ["checkout-7"]
    assert chosen(served, ("file:///x/y", "acme/gamma")) == ["checkout-7"]
    several = chosen(served, ("file:///home/alice/alpha", None), ("file:///home/alice/gamma", None))
    assert several == ["alpha", "checkout-7"]


def test_hostile_roots_never_add_a_workspace(served, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    for uri in ("file:///etc", "file:///", outside.as_uri(), "file:///a%00b", "https://evil.example/beta",
                "file:///" + "x" * 5000):  # fmt: skip
        with pytest.raises(WorkspaceError, match=r"match none of this server's workspaces \(alpha, beta, checkout-7\)"):
            served.select([(uri, None)])
    # a hostile root beside a matching one adds nothing
    assert chosen(served, ("file:///etc", None), ("file:///home/alice/beta", None)) == ["beta"]


def test_one_workspace_is_used_when_nothing_matches(tmp_path):
    only = tmp_path / "only"
    only.mkdir()
    single = ServedWorkspaces([only], hint=HINT)
    assert single.select([("file:///etc", "etc")]).roots == [only.resolve()]
    assert single.select([]).roots == [only.resolve()]
    with pytest.raises(WorkspaceError, match="outside the workspace roots"):
        single.select([("file:///etc", None)]).resolve("/etc/passwd")


def test_no_roots_with_several_workspaces_lists_their_names(served):
    with pytest.raises(WorkspaceError, match=r"sent no roots .*several workspaces \(alpha, beta, checkout-7\)"):
        served.select([])


def test_an_ambiguous_name_is_an_error_and_names_are_made_distinct(tmp_path):
    one, two = tmp_path / "a" / "app", tmp_path / "b" / "app"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    served = ServedWorkspaces([one, two, one], hint=HINT)
    assert served.names == ["a/app", "b/app"]  # the duplicate root was dropped
    with pytest.raises(WorkspaceError, match=r"matches several workspaces \(a/app, b/app\)"):
        served.select([("file:///home/alice/app", None)])
    assert served.select([(two.as_uri(), None)]).roots == [two.resolve()]  # the real path still decides


def test_the_names_an_ambiguity_error_lists_select_a_workspace(tmp_path):
    one, two = tmp_path / "a" / "app", tmp_path / "b" / "app"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    served = ServedWorkspaces([one, two], hint=HINT)
    # the error above tells the user to open a folder named like one of `a/app, b/app`: either form works
    assert served.select([("file:///home/alice/b/app", None)]).roots == [two.resolve()]
    assert served.select([("file:///home/alice/work", "A/App")]).roots == [one.resolve()]


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://github.com/Acme/Cadre.git", "github.com/acme/cadre"),
        ("git@github.com:acme/cadre.git", "github.com/acme/cadre"),
        ("ssh://git@github.com:22/acme/cadre/", "github.com/acme/cadre"),
        ("https://user:secret@gitlab.example/acme/cadre", "gitlab.example/acme/cadre"),
        ("/srv/git/cadre.git", "git/cadre"),
        ("", None),
    ],
)
def test_normalise_remote(url, normal):
    assert normalise_remote(url) == normal


def test_the_disk_and_the_home_folder_are_never_a_workspace(tmp_path, monkeypatch):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert too_broad(Path("/")) == "the filesystem root"
    assert too_broad(home.resolve()) == "your home folder"
    assert too_broad((tmp_path / "home").resolve()) == "a folder holding your home folder"
    assert too_broad((home / "project").resolve()) is None
    for root, what in ((Path("/"), "the filesystem root"), (home, "your home folder")):
        with pytest.raises(WorkspaceError, match=rf"would be {root.resolve()} \({what}\).*{HINT}"):
            Workspace([root], hint=HINT)


def make_reader(root: Path | None = None):
    server = build_server("search", "cadre-test", "test", root=root)
    kit: Kit = server.kit

    @server.tool()
    @tool_errors
    async def where(roots: HostRoots = None) -> str:
        return ",".join(str(r) for r in kit.workspace(roots).roots)

    return server, kit


@pytest.mark.anyio
@pytest.mark.parametrize("cwd", ["/", "home"])
async def test_stdio_server_started_in_root_or_home_with_no_roots_refuses(tmp_path, monkeypatch, cwd):
    """Claude Desktop starts servers in `/` and sends no roots (DESIGN.md, host behaviours)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir("/" if cwd == "/" else home)
    server, _ = make_reader()
    async with Client(server) as client:
        result = await client.call_tool("where", {})
    assert result.is_error
    text = result.content[0].text
    assert "and the host sent no roots" in text
    assert "`--root DIR`" in text and "cadre install <host> --root DIR" in text


@pytest.mark.anyio
async def test_over_stdio_host_roots_are_trusted_and_over_http_they_only_select(tmp_path):
    project, other = tmp_path / "project", tmp_path / "other"
    project.mkdir()
    other.mkdir()

    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri=other.as_uri())])

    server, kit = make_reader(root=project)
    async with Client(server, list_roots_callback=roots) as client:
        trusted = await client.call_tool("where", {})
    assert trusted.content[0].text == str(other.resolve())  # stdio: the host's roots, as before

    kit.serve_workspaces(ServedWorkspaces([project], hint=HINT))
    async with Client(server, list_roots_callback=roots) as client:
        selected = await client.call_tool("where", {})
    assert selected.content[0].text == str(project.resolve())  # HTTP: the client cannot add `other`


def test_up_serves_every_root_flag_else_the_config_roots_else_the_cwd(tmp_path, monkeypatch):
    from cadre_app.cli import build_parser
    from cadre_app.cli.up import served_roots

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-user-config"))
    monkeypatch.delenv("CADRE_CONFIG", raising=False)
    parse = build_parser().parse_args
    assert served_roots(parse(["up", "--root", "a", "--root", "/b"])) == [Path("a"), Path("/b")]
    assert served_roots(parse(["up"])) == [tmp_path]
    team = tmp_path / "team"
    team.mkdir()
    (team / "cadre.toml").write_text('[up]\nroots = ["repos/api", "/srv/web"]\n')
    monkeypatch.setenv("CADRE_CONFIG", str(team / "cadre.toml"))
    assert served_roots(parse(["up"])) == [team / "repos" / "api", Path("/srv/web")]  # relative to the file
    assert served_roots(parse(["up", "--root", "x"])) == [Path("x")]  # flags win
