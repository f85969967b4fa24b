"""keys.env: what a server reads when its host passes no keys (Claude Desktop)."""

import os

from cadre_core.envfile import env_file_path, load_env_file


def test_the_file_fills_only_what_the_environment_lacks(tmp_path, monkeypatch):
    env_file = tmp_path / "keys.env"
    env_file.write_text(
        "# my keys\nexport OPENAI_API_KEY=sk-from-file\nGEMINI_API_KEY='g-from-file'\n"
        "ANTHROPIC_API_KEY=a-from-file\nCADRE_T_EMPTY=\n"
    )
    env_file.chmod(0o600)
    monkeypatch.setenv("OPENAI_API_KEY", "${OPENAI_API_KEY}")  # a host's unexpanded placeholder counts as unset
    monkeypatch.setenv("GEMINI_API_KEY", "")  # Cursor's ${env:VAR} of an unset variable
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-from-shell")  # the environment wins
    monkeypatch.setenv("CADRE_T_EMPTY", "kept")
    assert sorted(load_env_file(env_file)) == ["GEMINI_API_KEY", "OPENAI_API_KEY"]
    assert os.environ["OPENAI_API_KEY"] == "sk-from-file" and os.environ["GEMINI_API_KEY"] == "g-from-file"
    assert os.environ["ANTHROPIC_API_KEY"] == "a-from-shell" and os.environ["CADRE_T_EMPTY"] == "kept"


def test_no_file_sets_nothing_and_the_default_lives_beside_the_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert env_file_path() == tmp_path / "cfg/cadre/keys.env"
    assert load_env_file() == []


def test_doctor_says_which_key_came_from_the_file(tmp_path):
    import json
    import subprocess
    import sys

    config = tmp_path / "cfg"
    (config / "cadre").mkdir(parents=True)
    env_file = config / "cadre" / "keys.env"
    env_file.write_text("OPENAI_API_KEY=sk-from-file\n")
    env_file.chmod(0o600)
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "XDG_CONFIG_HOME": str(config),
           "XDG_DATA_HOME": str(tmp_path / "data"), "GEMINI_API_KEY": "g-from-shell"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "cadre_app.cli", "--root", str(tmp_path), "doctor", "--json"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    keys = json.loads(done.stdout)["keys"]
    assert keys["openai"]["found_in"] == "OPENAI_API_KEY" and keys["openai"]["from_file"] == str(env_file)
    assert keys["google"]["found_in"] == "GEMINI_API_KEY" and keys["google"]["from_file"] is None
