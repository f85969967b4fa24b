"""find_symbol's references: calls, imports and type uses from tree-sitter, nearest to the definition first."""

from pathlib import Path

import pytest

from cadre_search.engine import Engine

FILES = {
    # Python: the class, a caller in the same file, one in the same package, and far ones
    "pkg/router.py": "class Router:\n    def route(self):\n        return 1\n\n\ndef make():\n    return Router()\n",
    "pkg/app.py": (
        "from pkg.router import Router\n\n\ndef build():\n    r = Router()\n    return r.route()\n\n\n"
        "class Sub(Router):\n    def use(self, other: Router) -> None:\n        pass\n"
    ),
    "other/deep/far.py": (
        "import pkg.router\nfrom pkg.router import Router as R\n\nx = Router  # a mention, not a call\n\n\n"
        "@Router\ndef decorated():\n    pass\n"
    ),
    # JavaScript / JSX / TypeScript
    "web/api.js": "export function fetchUser(id) {\n  return id;\n}\n",
    "web/view.jsx": (
        'import { fetchUser } from "./api";\n\nfunction View() {\n  const u = fetchUser(1);\n'
        "  return <Widget user={u} />;\n}\n// fetchUser in a comment\n"
    ),
    "web/lib/service.ts": (
        'import { fetchUser } from "../api";\n\nexport class Service {\n  load(): number {\n'
        "    return fetchUser(2);\n  }\n}\nconst s = new Service();\n"
    ),
    "web/widget.jsx": "export function Widget() {\n  return null;\n}\n",
    # Go
    "svc/client.go": ("package svc\n\ntype Client struct{}\n\nfunc NewClient() *Client {\n\treturn &Client{}\n}\n"),
    "cmd/app/main.go": (
        'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/app/svc"\n)\n\nfunc main() {\n'
        "\tc := svc.NewClient()\n\tfmt.Println(c)\n}\n"
    ),
    # no grammar: whole-word lines
    "tools/notes.rb": "# NewClient is made in svc\nputs 'NewClientX'\n",
}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    root = tmp_path / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Engine(root, index_path=tmp_path / "index.sqlite")


def refs(engine: Engine, name: str) -> list[tuple[str, int, str, str | None]]:
    return [(r["path"], r["line"], r["kind"], r["caller"]) for r in engine.find_symbol(name)["references"]]


def test_python_calls_and_imports_nearest_first(engine: Engine):
    assert refs(engine, "Router") == [
        ("pkg/router.py", 7, "call", "make"),  # same file
        ("pkg/app.py", 1, "import", None),  # same folder
        ("pkg/app.py", 5, "call", "build"),
        ("pkg/app.py", 9, "type", "Sub"),  # a base class
        ("pkg/app.py", 10, "type", "use"),  # an annotation
        ("other/deep/far.py", 2, "import", None),  # elsewhere; the bare mention on line 4 is no reference
        ("other/deep/far.py", 7, "call", None),  # a decorator
    ]
    assert refs(engine, "route") == [("pkg/app.py", 6, "call", "build")]


def test_javascript_and_typescript_calls_imports_and_jsx(engine: Engine):
    assert refs(engine, "fetchUser") == [
        ("web/view.jsx", 1, "import", None),
        ("web/view.jsx", 4, "call", "View"),
        ("web/lib/service.ts", 1, "import", None),
        ("web/lib/service.ts", 5, "call", "load"),
    ]
    assert refs(engine, "Service") == [("web/lib/service.ts", 8, "call", None)]
    assert refs(engine, "Widget") == [("web/view.jsx", 5, "call", "View")]


def test_go_calls_composite_literals_and_package_imports(engine: Engine):
    assert refs(engine, "Client") == [
        ("svc/client.go", 5, "type", "NewClient"),
        ("svc/client.go", 6, "call", "NewClient"),
    ]
    found = refs(engine, "NewClient")
    assert found[0] == ("cmd/app/main.go", 10, "call", "main")
    assert ("tools/notes.rb", 1, "text", None) in found and all(r[1] != 2 for r in found if r[0] == "tools/notes.rb")
    assert refs(engine, "svc") == [("cmd/app/main.go", 6, "import", None), ("tools/notes.rb", 1, "text", None)]


def test_references_are_redacted_and_carry_their_line(engine: Engine, tmp_path: Path):
    token = "ghp_" + "a1B2" * 9
    (tmp_path / "repo/pkg/leak.py").write_text(f'from pkg.router import Router\nRouter(token="{token}")\n')
    found = [r for r in engine.find_symbol("Router")["references"] if r["path"] == "pkg/leak.py"]
    assert [r["line"] for r in found] == [1, 2]
    assert token not in found[1]["text"] and found[1]["text"].startswith("Router(")


def test_an_exact_case_name_takes_only_its_own_references(engine: Engine, tmp_path: Path):
    (tmp_path / "repo/pkg/lower.py").write_text("def router():\n    return 1\n\n\nrouter()\n")
    paths = {r[0] for r in refs(engine, "Router")}
    assert "pkg/lower.py" not in paths and "pkg/app.py" in paths
    assert refs(engine, "router") == [
        ("pkg/lower.py", 5, "call", None),
        ("other/deep/far.py", 1, "import", None),  # `import pkg.router`: the module, by that name
    ]
