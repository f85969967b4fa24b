"""What the CLI prints from a workspace, a server or a model is text: paths with brackets stay whole, and escape
sequences (a file's, a hostile model's) never reach the terminal."""

from argparse import Namespace

import pytest

from cadre_app.cli import call, search

EVIL = "\x1b]52;c;ZWNobyBwd25lZA==\x1b\\\x9b2J"  # OSC 52 (write the clipboard), then an 8-bit CSI clear screen


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


@pytest.mark.parametrize(("is_error", "payload"), [(True, f"bad answer key {EVIL}"), (False, {"answer": EVIL}),
                                                   (False, f"text {EVIL}")])  # fmt: skip
def test_cadre_call_prints_a_servers_text_without_its_escapes(monkeypatch, capsys, is_error, payload):
    async def fake_call(args):
        return is_error, payload

    monkeypatch.setattr(call, "call", fake_call)
    assert call.run(Namespace(tool="consult_oracle")) == (1 if is_error else 0)
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "\x1b" not in text and "\x9b" not in text
    assert "ZWNobyBwd25lZA==" in text
