"""The layers: shared/ (cadre_core) imports no server and no app; a server imports no app."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVERS = ("cadre_oracle", "cadre_librarian", "cadre_search")
FORBIDDEN = {"shared/src": (*SERVERS, "cadre_app"), "servers": ("cadre_app",)}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_its_own(layer):
    files = list((REPO / layer).rglob("*.py"))
    assert len(files) > 10  # the walk found the layer
    wrong = sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in imports(path)
        if name.split(".")[0] in FORBIDDEN[layer]
    )
    assert wrong == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from cadre_app.cli import main\n    import cadre_search.engine\n")
    assert imports(path) == {"cadre_app.cli", "cadre_search.engine"}
