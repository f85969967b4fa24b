"""`cadre search` prints what the workspace holds as text: paths with brackets stay whole, and a file's escape
sequences never reach the terminal."""

from argparse import Namespace

from cadre_core.cli import search


def test_bracketed_paths_and_escape_sequences_print_as_text(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FORCE_COLOR", raising=False)  # not a terminal: rich adds no escape of its own
    ws = tmp_path / "ws"
    # Next.js and SvelteKit route folders; `app/[/]/x.ts` (folders `[` and `]`) holds a rich closing tag
    (ws / "app" / "[id]").mkdir(parents=True)
    (ws / "app" / "[id]" / "page.ts").write_text("export function pageHandler() { return 1 }\n")
    (ws / "app" / "[" / "]").mkdir(parents=True)
    evil = "\x1b]0;PWNED\x07\x1b[2J"  # set the window title, clear the screen
    (ws / "app" / "[" / "]" / "x.ts").write_text(f'export function otherHandler() {{ return "{evil}" }}\n')
    args = Namespace(query="handler", search_root=ws, root=None, limit=10, path=None, json=False)
    assert search.run(args) == 0
    out = capsys.readouterr().out
    assert "app/[id]/page.ts:1-1" in out and "app/[/]/x.ts:1-1" in out
    assert "\x1b]0;" not in out and "\x1b[2J" not in out and "\x07" not in out
    assert "\\x1b]0;PWNED" in out
