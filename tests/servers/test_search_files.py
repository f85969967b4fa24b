import os

from cadre_search.chunks import chunk_file, symbols_of
from cadre_search.files import walk
from tests.servers.conftest import make_repo


def paths(root):
    return [f.path for f in walk(root)[0]]


def test_ignore_files_binaries_sizes_minified_secrets_and_vendored(tmp_path):
    root = make_repo(
        tmp_path,
        {
            ".gitignore": "build/\n*.log\n",
            "pkg/.gitignore": "generated.py\n",
            ".ignore": "scratch.py\n",
            ".cadreignore": "big_fixture.json\n",
            "pkg/app.py": "x = 1\n",
            "pkg/generated.py": "y = 2\n",
            "build/out.py": "z = 3\n",
            "debug.log": "log\n",
            "scratch.py": "s\n",
            "big_fixture.json": "{}\n",
            ".env": "SECRET=1\n",
            "certs/server.pem": "-----BEGIN CERTIFICATE-----\n",
            "node_modules/lib/index.js": "module.exports = 1\n",
            "vendor/dep.go": "package dep\n",
            "app.min.js": "var a=1;\n",
            "keep.js": "const a = 1;\n",
        },
    )
    (root / "image.png").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "huge.py").write_text("x = 1\n" * 200_000)
    (root / "latin1.py").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    found = paths(root)
    assert found == [".cadreignore", ".gitignore", ".ignore", "keep.js", "latin1.py", "pkg/.gitignore", "pkg/app.py"]


def test_symlinks_never_leave_the_root_and_loops_are_harmless(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("password = 1\n")
    root = make_repo(tmp_path / "repo", {"a.py": "a = 1\n"})
    os.symlink(outside / "secret.py", root / "link.py")
    os.symlink(outside, root / "linkdir")
    os.symlink(root, root / "loop")
    os.symlink(root / "a.py", root / "inside_link.py")
    assert paths(root) == ["a.py", "inside_link.py"]


SAMPLES = {
    "python": ("class A:\n    def f(self):\n        pass\n", {"A", "f"}),
    "javascript": ("class A { f() {} }\nconst g = () => 1;\nfunction h() {}\n", {"A", "f", "g", "h"}),
    "typescript": ("interface I { a: string }\nclass A { f(): void {} }\n", {"I", "A", "f"}),
    "tsx": ("const C = () => <div/>;\nfunction D() { return null }\n", {"C", "D"}),
    "go": ("package m\nfunc F() {}\ntype T struct{}\nfunc (t T) M() {}\n", {"F", "T", "M"}),
    "rust": ("struct S;\nimpl S { fn new() -> S { S } }\nfn main() {}\n", {"S", "new", "main"}),
    "java": ("class A { void f() {} A() {} }\n", {"A", "f"}),
    "c": ("struct s { int a; };\nint main(void) { return 0; }\n", {"s", "main"}),
    "cpp": ("namespace n { class K { void f(); }; }\nint g() { return 1; }\n", {"n", "K", "g"}),
    "ruby": ("module M\n  class C\n    def go; end\n  end\nend\n", {"M", "C", "go"}),
}


def test_every_bundled_grammar_extracts_symbols_offline():
    for language, (source, expected) in SAMPLES.items():
        names = {s.name for s in symbols_of(source, language)}
        assert expected <= names, (language, names)


def test_methods_know_their_class_and_large_classes_split_by_method():
    body = "\n".join(f"    def m{i}(self):\n" + "        x = 1\n" * 10 for i in range(12))
    source = f"import os\n\n\nclass Big:\n{body}\n"
    chunks, symbols = chunk_file(source, "python")
    assert {s.qualified for s in symbols if s.kind == "method"} == {f"Big.m{i}" for i in range(12)}
    assert [c.symbol for c in chunks if c.symbol.startswith("Big.")] == [f"Big.m{i}" for i in range(12)]
    assert chunks[0].start_line == 1


def test_text_files_get_line_windows():
    chunks, symbols = chunk_file("\n".join(f"line {i}" for i in range(100)), None)
    assert symbols == []
    assert chunks[0].start_line == 1 and chunks[0].end_line == 40
    assert chunks[1].start_line == 33
    assert chunks[-1].end_line == 100


def test_invalid_ignore_patterns_are_skipped_not_fatal(tmp_path):
    root = make_repo(tmp_path, {".gitignore": "!\n*.log\n[\n", "a.py": "a = 1\n", "b.log": "x\n"})
    assert paths(root) == [".gitignore", "a.py"]
