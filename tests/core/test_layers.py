"""The import graph of every module in shared/src, servers/*/src and app/src obeys docs/ARCHITECTURE.md.

Layers, bottom to top: the core (shared/src), the servers (servers/*/src), the app (app/src).
- No import points to a higher layer, and no server imports another server (one exception below: the
  librarian searches with the search server's engine, a plain module). Every import counts here:
  at the top of a module, inside a function (lazy) or under `if TYPE_CHECKING:`.
- No import cycle, counting the imports that run: at the top of a module and inside functions. A lazy import
  defers a cost, it does not excuse a loop. Only an import under `if TYPE_CHECKING:` (which never runs) may
  close one, as when a module names in a hint the type of the module that imports it.
- The provider modules (`cadre_core.models.*`) import nothing that routes, accounts or serves.
- MCP stays at the edge: in the core only the server kit imports `mcp` to run; a server's plain modules
  (all but server.py and __main__.py) import `mcp` and `mcp_types` only under `if TYPE_CHECKING:`.
Each failure names the offending import as file:line.
"""

from __future__ import annotations

import ast
import graphlib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LAYERS = {"core": 0, "server": 1, "app": 2}
PROVIDERS = "cadre_core.models"
# What a provider must not reach: the routing wrappers and router, the budget and ledger they drive, and the
# server kit (the MCP server factory, tool accounting, host sampling, the console entry).
NOT_FOR_PROVIDERS = (
    "cadre_core.routing",
    "cadre_core.router",
    "cadre_core.budget",
    "cadre_core.ledger",
    "cadre_core.kit",
    "cadre_core.accounting",
    "cadre_core.host_sampling",
    "cadre_core.mcp_server",
    "cadre_core.serve",
)
SERVER_KIT = ("cadre_core.kit", "cadre_core.mcp_server", "cadre_core.accounting", "cadre_core.host_sampling")
SERVER_EDGE = ("server", "__main__")  # the modules of a server that may use MCP at run time
MCP = ("mcp", "mcp_types")

# A server that uses another server's engine as a library: (importing package, the one module it may import).
# cadre-librarian declares cadre-search as a dependency and searches packages and clones with its Engine,
# which has no MCP in it. An exception nothing uses any more fails the test, so the list cannot go stale.
ACROSS_SERVERS = {("cadre_librarian", "cadre_search.engine")}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path | None
    layer: str  # core, server, app, or external (the standard library and third parties)
    shown: str  # the path a failure shows


@dataclass(frozen=True)
class Import:
    source: Module
    target: Module
    line: int
    kind: str  # "module" (runs on import), "lazy" (inside a function) or "typing" (under TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.source.shown}:{self.line} imports {self.target.name} ({self.kind})"


def repo_roots(repo: Path = REPO) -> dict[Path, str]:
    """Each source root and its layer."""
    roots = {repo / "shared/src": "core", repo / "app/src": "app"}
    roots |= {src: "server" for src in sorted((repo / "servers").glob("*/src"))}
    return roots


def find_modules(roots: dict[Path, str], base: Path = REPO) -> dict[str, Module]:
    modules = {}
    for root, layer in roots.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            modules[name] = Module(name, path, layer, str(path.relative_to(base)))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], kind: str):
    """(statement, kind) for every import in `body`, however deeply nested."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, kind
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(node.body, "lazy")
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, "typing" if kind == "module" else kind)
            yield from _statements(node.orelse, kind)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from _statements([c for c in children if isinstance(c, ast.stmt)], kind)
                    for child in children:
                        if isinstance(child, ast.ExceptHandler | ast.match_case):
                            yield from _statements(child.body, kind)


def _resolve(name: str, modules: dict[str, Module]) -> Module | None:
    """The most specific project module `name` loads; None for the standard library and third parties."""
    while name:
        if name in modules:
            return modules[name]
        name = name.rpartition(".")[0]
    return None


def imports_of(module: Module, modules: dict[str, Module]) -> list[Import]:
    """Every import in `module`: of a project module, or of an external one by its dotted name."""
    found = []
    tree = ast.parse(module.path.read_text("utf-8"), str(module.path))
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node, kind in _statements(tree.body, "module"):
        if isinstance(node, ast.Import):
            targets = [(alias.name, alias.name) for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [(f"{base}.{alias.name}", base) for alias in node.names]  # a submodule, or a name in base
        for name, external in targets:
            target = _resolve(name, modules) or Module(external, None, "external", "")
            if target.name != module.name:
                found.append(Import(module, target, node.lineno, kind))
    return found


def graph(roots: dict[Path, str], base: Path = REPO) -> list[Import]:
    modules = find_modules(roots, base)
    return [edge for module in modules.values() for edge in imports_of(module, modules)]


def _top(module: Module) -> str:
    return module.name.split(".")[0]


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def layer_problems(edges: list[Import], across: set[tuple[str, str]] = ACROSS_SERVERS) -> list[str]:
    problems = []
    used = set()
    for edge in edges:
        source, target = edge.source, edge.target
        if target.layer == "external":
            continue
        if LAYERS[target.layer] > LAYERS[source.layer]:
            problems.append(f"{edge}: the {source.layer} layer may not import the {target.layer} layer")
        elif source.layer == target.layer == "server" and _top(source) != _top(target):
            if (_top(source), target.name) in across:
                used.add((_top(source), target.name))
            else:
                problems.append(f"{edge}: a server may not import another server")
        elif _within(source.name, (PROVIDERS,)) and _within(target.name, NOT_FOR_PROVIDERS):
            problems.append(f"{edge}: a provider module may not import routing, budget, ledger or the server kit")
    problems += [
        f"{source} no longer imports {target}: drop it from ACROSS_SERVERS" for source, target in across - used
    ]
    return sorted(problems)


def mcp_problems(edges: list[Import]) -> list[str]:
    problems = []
    for edge in edges:
        source, target = edge.source, edge.target
        if edge.kind == "typing" or target.layer != "external" or not _within(target.name, MCP):
            continue
        if source.layer == "core" and _within(target.name, ("mcp",)) and not _within(source.name, SERVER_KIT):
            problems.append(f"{edge}: in the core only the server kit ({', '.join(SERVER_KIT)}) runs MCP code")
        elif source.layer == "server" and source.name.split(".")[-1] not in SERVER_EDGE:
            problems.append(f"{edge}: a server's plain module takes MCP types only under TYPE_CHECKING")
    return sorted(problems)


def cycle(edges: list[Import]) -> list[Import]:
    """The imports of one cycle among the imports that run (module-level or lazy), or [] when there is none."""
    running = {(e.source.name, e.target.name): e for e in edges if e.kind != "typing" and e.target.layer != "external"}
    sorter = graphlib.TopologicalSorter()
    for source, target in running:
        sorter.add(source, target)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        names = error.args[1]  # [a, b, ..., a]: each is imported by the next
        return [running[(names[i + 1], names[i])] for i in range(len(names) - 1)]
    return []


@pytest.fixture(scope="module")
def repo_graph() -> list[Import]:
    return graph(repo_roots())


def test_the_walk_sees_every_layer_and_server(repo_graph):
    modules = find_modules(repo_roots())
    assert {m.layer for m in modules.values()} == set(LAYERS)
    assert {m.name for m in modules.values() if m.layer == "server" and "." not in m.name} >= {
        "cadre_oracle",
        "cadre_librarian",
        "cadre_search",
    }
    assert len(repo_graph) > 300
    assert {e.kind for e in repo_graph} == {"module", "lazy", "typing"}
    assert sum(e.target.name.startswith("mcp.server") for e in repo_graph) > 5


def test_no_import_points_up_a_layer_or_across_servers(repo_graph):
    problems = layer_problems(repo_graph)
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


def test_mcp_stays_in_the_server_kit_and_server_modules(repo_graph):
    problems = mcp_problems(repo_graph)
    assert not problems, "MCP imported away from the edge:\n" + "\n".join(problems)


def test_no_import_cycle(repo_graph):
    loop = cycle(repo_graph)
    assert not loop, "import cycle:\n" + "\n".join(map(str, loop))


# The checks themselves, on a small tree with one of each mistake.


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[Path, str]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {tmp_path / "shared/src": "core", tmp_path / "servers/a/src": "server", tmp_path / "app/src": "app"}


def test_the_checks_name_each_wrong_import_with_its_file_and_line(tmp_path):
    roots = _tree(
        tmp_path,
        {
            "shared/src/cadre_core/__init__.py": "",
            "shared/src/cadre_core/kit.py": "def f():\n    from cadre_app.cli import main\n",
            "shared/src/cadre_core/routing/__init__.py": "",
            "shared/src/cadre_core/models/__init__.py": "",
            "shared/src/cadre_core/models/base.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from ..routing import compose\n",
            "servers/a/src/cadre_a/__init__.py": "import cadre_b.engine\n",
            "servers/b/src/cadre_b/__init__.py": "",
            "servers/b/src/cadre_b/engine.py": "import os\nfrom cadre_core import kit\n",
            "app/src/cadre_app/__init__.py": "",
            "app/src/cadre_app/cli.py": "from cadre_a import x\n",
        },
    )
    roots[tmp_path / "servers/b/src"] = "server"
    edges = graph(roots, tmp_path)
    assert layer_problems(edges, {("cadre_a", "cadre_b.engine"), ("cadre_b", "cadre_a")}) == [
        "cadre_b no longer imports cadre_a: drop it from ACROSS_SERVERS",
        "shared/src/cadre_core/kit.py:2 imports cadre_app.cli (lazy): the core layer may not import the app layer",
        "shared/src/cadre_core/models/base.py:3 imports cadre_core.routing (typing): "
        "a provider module may not import routing, budget, ledger or the server kit",
    ]
    assert layer_problems(edges, set()) == [
        "servers/a/src/cadre_a/__init__.py:1 imports cadre_b.engine (module): a server may not import another server",
        "shared/src/cadre_core/kit.py:2 imports cadre_app.cli (lazy): the core layer may not import the app layer",
        "shared/src/cadre_core/models/base.py:3 imports cadre_core.routing (typing): "
        "a provider module may not import routing, budget, ledger or the server kit",
    ]


def test_a_cycle_is_named_but_a_typing_import_may_close_one(tmp_path):
    c = tmp_path / "shared/src/cadre_core/c.py"
    roots = _tree(
        tmp_path,
        {
            "shared/src/cadre_core/__init__.py": "",
            "shared/src/cadre_core/a.py": "from cadre_core.b import x\n",
            "shared/src/cadre_core/b.py": "try:\n    import json\nexcept ImportError:\n    pass\nelse:\n"
            "    from . import c\n",
            "shared/src/cadre_core/c.py": "import typing\nif typing.TYPE_CHECKING:\n    import cadre_core.a\n",
        },
    )
    assert cycle(graph(roots, tmp_path)) == []
    c.write_text("class C:\n    from cadre_core.a import y\n")
    assert sorted(map(str, cycle(graph(roots, tmp_path)))) == [
        "shared/src/cadre_core/a.py:1 imports cadre_core.b (module)",
        "shared/src/cadre_core/b.py:6 imports cadre_core.c (module)",
        "shared/src/cadre_core/c.py:2 imports cadre_core.a (module)",
    ]
    c.write_text("async def f():\n    import cadre_core.a\n")
    assert "shared/src/cadre_core/c.py:2 imports cadre_core.a (lazy)" in map(str, cycle(graph(roots, tmp_path)))


def test_mcp_outside_the_edge_is_named(tmp_path):
    roots = _tree(
        tmp_path,
        {
            "shared/src/cadre_core/__init__.py": "",
            "shared/src/cadre_core/kit.py": "from mcp.server.mcpserver import Context\n",
            "shared/src/cadre_core/toolloop.py": "import typing\nif typing.TYPE_CHECKING:\n    import mcp.server\n",
            "shared/src/cadre_core/models/sampling.py": "def f():\n    import mcp_types\n",
            "shared/src/cadre_core/budget.py": "def f():\n    from mcp.server import x\n",
            "servers/a/src/cadre_a/__init__.py": "",
            "servers/a/src/cadre_a/server.py": "import mcp_types\nfrom mcp.server import y\n",
            "servers/a/src/cadre_a/engine.py": "from mcp_types import Root\n",
        },
    )
    assert mcp_problems(graph(roots, tmp_path)) == [
        "servers/a/src/cadre_a/engine.py:1 imports mcp_types (module): "
        "a server's plain module takes MCP types only under TYPE_CHECKING",
        "shared/src/cadre_core/budget.py:2 imports mcp.server (lazy): in the core only the server kit "
        f"({', '.join(SERVER_KIT)}) runs MCP code",
    ]
