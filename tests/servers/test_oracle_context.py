"""The oracle's file context: resolving patterns, project instructions, packing to a token budget."""

import os
from pathlib import Path

import pytest

from cadre_core.errors import WorkspaceError
from cadre_core.workspace import Workspace
from cadre_oracle.context import Packed, pack, project_instructions, resolve_files
from tests.servers.conftest import make_repo

AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
PEM = "\n".join(
    [
        "-----BEGIN RSA PRIVATE KEY-----",
        PEM_BODY,
        "VuQ8AyQ3QWjsZTwKVl6HmLKCUOB3mUBvnUxT",
        "-----END RSA PRIVATE KEY-----",
    ]
)


def rel(root: Path, files: list[Path]) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "src/app.py": "a = 1\n",
            "src/pkg/core.py": "b = 2\n",
            "src/pkg/notes.txt": "notes\n",
            "docs/guide.md": "# Guide\n",
            "docs/deep/more.md": "more\n",
            "README.md": "# Demo\n",
            "web/app/[id]/page.tsx": "export default 1\n",
        },
    )


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace([root])


def test_globs_directories_and_paths(root, ws):
    assert rel(root, resolve_files(ws, ["src/**/*.py"])[0]) == ["src/app.py", "src/pkg/core.py"]
    assert rel(root, resolve_files(ws, ["src/*.py"])[0]) == ["src/app.py"]
    assert rel(root, resolve_files(ws, ["**/*.md"])[0]) == ["README.md", "docs/deep/more.md", "docs/guide.md"]
    assert rel(root, resolve_files(ws, ["docs"])[0]) == ["docs/deep/more.md", "docs/guide.md"]
    assert rel(root, resolve_files(ws, [f"{root}/src/pkg/*"])[0]) == ["src/pkg/core.py", "src/pkg/notes.txt"]
    assert rel(root, resolve_files(ws, ["web/app/[id]/page.tsx"])[0]) == ["web/app/[id]/page.tsx"]
    files, notes = resolve_files(ws, ["README.md", "src/app.py", "README.md", "src/*.py"])
    assert rel(root, files) == ["README.md", "src/app.py"]
    assert notes == []


def test_patterns_that_name_nothing_give_notes(ws):
    files, notes = resolve_files(ws, ["src/**/*.rs", "missing.py", "  "])
    assert files == []
    assert notes == ["'src/**/*.rs' matched no files", "'missing.py' does not exist"]


def test_ignore_files_are_respected(tmp_path):
    root = make_repo(
        tmp_path,
        {
            ".gitignore": "build/\n*.log\n",
            "pkg/.gitignore": "generated.py\n",
            ".ignore": "scratch.py\n",
            ".cadreignore": "fixture.json\n",
            "pkg/app.py": "x = 1\n",
            "pkg/generated.py": "y = 2\n",
            "build/out.py": "z = 3\n",
            "debug.log": "log\n",
            "scratch.py": "s\n",
            "fixture.json": "{}\n",
            "node_modules/lib/index.js": "module.exports = 1\n",
        },
    )
    ws = Workspace([root])
    files, notes = resolve_files(ws, ["."])
    assert rel(root, files) == [".cadreignore", ".gitignore", ".ignore", "pkg/.gitignore", "pkg/app.py"]
    ignored = next(n for n in notes if ".gitignore/.ignore/.cadreignore" in n)
    for name in ("build/", "debug.log", "pkg/generated.py", "scratch.py", "fixture.json"):
        assert name in ignored
    assert "node_modules/ skipped: vendored, tool or hidden directory" in notes
    assert rel(root, resolve_files(ws, ["**/*.py"])[0]) == ["pkg/app.py"]
    files, notes = resolve_files(ws, ["build/out.py"])
    assert files == []
    assert notes == ["build/out.py skipped: excluded by .gitignore/.ignore/.cadreignore"]


def test_secret_binary_and_big_files_are_skipped_with_notes(root, ws):
    (root / ".env").write_text(f"AWS_KEY={AWS_KEY}\n")
    (root / "src" / "id_rsa").write_text(PEM)
    (root / "src" / "logo.png").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "src" / "huge.py").write_text("x = 1\n" * 200_000)
    (root / "latin1.py").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    files, notes = resolve_files(ws, [".env", "src", "latin1.py"])
    assert rel(root, files) == ["latin1.py", "src/app.py", "src/pkg/core.py", "src/pkg/notes.txt"]
    assert "2 skipped (looks like a secret file): .env, src/id_rsa" in notes
    assert "src/logo.png skipped: binary or minified" in notes
    assert "src/huge.py skipped: larger than 1 MB" in notes
    assert "\ufffd" in pack(files, ws, budget_tokens=10_000).text


def test_paths_outside_the_roots_are_refused(tmp_path, root, ws):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.py").write_text(f"KEY = '{AWS_KEY}'\nleak_marker = 1\n")
    for pattern in ("../outside/stolen.py", str(outside / "stolen.py"), "../outside/*.py", f"{outside}/*.py"):
        with pytest.raises(WorkspaceError, match="outside the workspace roots.*pass a path inside them"):
            resolve_files(ws, [pattern])
    os.symlink(outside / "stolen.py", root / "src" / "link.py")
    os.symlink(outside, root / "src" / "linkdir")
    with pytest.raises(WorkspaceError, match="outside the workspace roots"):
        resolve_files(ws, ["src/link.py"])
    files, notes = resolve_files(ws, ["src"])
    assert rel(root, files) == ["src/app.py", "src/pkg/core.py", "src/pkg/notes.txt"]
    assert "src/link.py skipped: symbolic link to outside the workspace roots" in notes
    assert "src/linkdir/ skipped: symbolic link to a directory, not followed" in notes
    assert "leak_marker" not in pack(files, ws, budget_tokens=10_000).text


def test_links_inside_the_root_are_read_once(root, ws):
    os.symlink(root / "src" / "app.py", root / "alias.py")
    files, notes = resolve_files(ws, ["alias.py", "src/app.py"])
    assert rel(root, files) == ["src/app.py"]
    assert notes == []


def test_max_files_caps_with_a_note(tmp_path):
    root = make_repo(tmp_path, {f"f{i:02}.py": "x\n" for i in range(12)})
    files, notes = resolve_files(Workspace([root]), ["*.py"], max_files=5)
    assert rel(root, files) == ["f00.py", "f01.py", "f02.py", "f03.py", "f04.py"]
    assert notes == ["12 files matched; only the first 5 are read; pass narrower patterns"]


def test_planted_secrets_never_reach_the_packed_text_and_line_numbers_hold(root, ws):
    source = f'import os\nKEY = """\n{PEM}\n"""\nAWS = "{AWS_KEY}"\n\n\ndef after():\n    return os.sep\n'
    (root / "src" / "conf.py").write_text(source)
    packed = pack([root / "src" / "conf.py"], ws, budget_tokens=10_000)
    assert AWS_KEY not in packed.text
    assert PEM_BODY not in packed.text
    assert "PRIVATE KEY-----" not in packed.text
    lines = packed.text.splitlines()
    assert lines[0] == "=== src/conf.py (lines 1-12) ==="
    assert lines[1] == "    1 | import os"
    assert lines[3].startswith("    3 | ") and "[REDACTED" in lines[3]
    assert lines[7] == '    7 | """'
    assert lines[10] == "   10 | "
    assert lines[11] == "   11 | def after():"
    assert lines[12] == "   12 |     return os.sep"
    assert "[REDACTED aws-access-key]" in lines[8]


@pytest.mark.slow
def test_line_numbers_and_headers(root, ws):
    (root / "long.py").write_text("".join(f"line{i}\n" for i in range(1, 101_000)))
    packed = pack([root / "src" / "app.py", root / "long.py"], ws, budget_tokens=1_000_000)
    assert packed.included == ["src/app.py", "long.py"]
    assert packed.omitted == []
    sections = packed.text.split("\n\n")
    assert sections[0] == "=== src/app.py (lines 1-1) ===\n    1 | a = 1"
    assert sections[1].startswith("=== long.py (lines 1-100999) ===\n     1 | line1\n")
    assert sections[1].endswith("100999 | line100999\n")
    assert packed.tokens == -(-len(packed.text) * 2 // 7)


def sized(root: Path, name: str, lines: int) -> Path:
    path = root / name
    path.write_text("".join(f"value_{i} = {i}\n" for i in range(lines)))
    return path


@pytest.mark.slow
def test_largest_files_are_left_out_first_within_the_budget(root, ws):
    small, medium, large = sized(root, "small.py", 5), sized(root, "medium.py", 50), sized(root, "large.py", 400)
    files = [large, medium, small]
    fits_two = pack([medium, small], ws, budget_tokens=100_000).tokens
    packed = pack(files, ws, budget_tokens=fits_two)
    assert packed.included == ["medium.py", "small.py"]
    assert [path for path, _ in packed.omitted] == ["large.py"]
    assert packed.omitted[0][1].startswith("left out to fit the token budget (about ")
    assert packed.tokens == fits_two
    packed = pack(files, ws, budget_tokens=fits_two - 1)
    assert packed.included == ["small.py"]
    assert [path for path, _ in packed.omitted] == ["large.py", "medium.py"]
    for budget in range(0, pack(files, ws, budget_tokens=100_000).tokens + 2, 7):
        packed = pack(files, ws, budget_tokens=budget)
        assert packed.tokens <= budget
        assert packed.tokens * 3.5 >= len(packed.text)
        assert len(packed.included) + len(packed.omitted) >= 3


def test_a_single_file_too_big_is_cut_by_lines(root, ws):
    path = sized(root, "big.py", 2000)
    packed = pack([path], ws, budget_tokens=3_000)
    (reason,) = [r for p, r in packed.omitted if p == "big.py"]
    count = int(reason.split("lines 1-")[1].split(" ")[0].replace(",", ""))
    assert reason == f"truncated to lines 1-{count:,} of 2,000 to fit"
    assert 100 < count < 2000
    assert packed.included == ["big.py"]
    assert packed.text.startswith(f"=== big.py (lines 1-{count} of 2000; truncated to fit) ===\n")
    assert packed.text.endswith(f"{count:>5} | value_{count - 1} = {count - 1}\n")
    assert packed.tokens <= 3_000
    assert len(packed.text) + len(f"{count + 1:>5} | value_{count} = {count}\n") > 3_000 * 3.5
    tiny = pack([path], ws, budget_tokens=5)
    assert (tiny.text, tiny.included, tiny.tokens) == ("", [], 0)
    assert tiny.omitted == [("big.py", "left out: the budget is too small for even its first line")]


def test_a_file_deleted_before_reading_is_reported(root, ws):
    files, _ = resolve_files(ws, ["src"])
    (root / "src" / "pkg" / "core.py").unlink()
    packed = pack(files, ws, budget_tokens=10_000)
    assert packed.included == ["src/app.py", "src/pkg/notes.txt"]
    assert packed.omitted == [("src/pkg/core.py", "deleted before it could be read")]
    assert isinstance(packed, Packed)


def test_project_instructions_are_found_redacted_and_capped(root, ws):
    (root / "AGENTS.md").write_text(f"Use uv.\nThe deploy key is {AWS_KEY}\n")
    os.symlink(root / "AGENTS.md", root / "CLAUDE.md")
    (root / "GEMINI.md").write_text("rule\n" * 10_000)
    (root / ".github").mkdir()
    (root / ".github" / "copilot-instructions.md").write_text("Prefer small functions.\n")
    found = dict(project_instructions(ws))
    assert list(found) == ["AGENTS.md", "GEMINI.md", ".github/copilot-instructions.md"]
    assert found["AGENTS.md"].startswith("Use uv.\nThe deploy key is [REDACTED")
    assert AWS_KEY not in found["AGENTS.md"]
    assert len(found["GEMINI.md"]) == 20_000
    assert found["GEMINI.md"].endswith("[... cut at 20,000 characters]")
    assert found[".github/copilot-instructions.md"] == "Prefer small functions.\n"


def test_project_instructions_never_follow_a_link_out_of_the_root(tmp_path, root, ws):
    (tmp_path / "elsewhere.md").write_text("outside rules\n")
    os.symlink(tmp_path / "elsewhere.md", root / "AGENTS.md")
    assert project_instructions(ws) == []
