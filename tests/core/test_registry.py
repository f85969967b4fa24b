import json

import jsonschema
import pytest

from cadre_app.cli import main
from cadre_app.install import plan_install
from cadre_app.registry import SCHEMA_URL, entry_from, schema, server_json
from cadre_core.errors import CadreError


def test_the_kept_schema_is_the_official_2025_12_11_one():
    assert schema()["$id"] == SCHEMA_URL
    jsonschema.Draft7Validator.check_schema(schema())


def test_export_writes_a_valid_server_json_per_server(tmp_path, capsys):
    assert (
        main(["registry", "export", "--out", str(tmp_path / "reg"), "--remote-url", "https://cadre.example.com"]) == 0
    )
    paths = sorted((tmp_path / "reg").glob("*/server.json"))
    assert [p.parent.name for p in paths] == ["librarian", "oracle", "search", "vision"]
    for path in paths:
        document = json.loads(path.read_text())
        jsonschema.validate(document, schema())
        package = document["packages"][0]
        assert package["registryType"] == "pypi" and package["runtimeHint"] == "uvx"
        assert package["transport"] == {"type": "stdio"}
        assert {v["name"] for v in package["environmentVariables"]} == {
            "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"}  # fmt: skip
        assert all(v["isSecret"] for v in package["environmentVariables"])
        remote = document["remotes"][0]
        assert remote["type"] == "streamable-http"
        assert remote["url"] == f"https://cadre.example.com/{path.parent.name}/mcp"
        assert remote["headers"][0]["name"] == "Authorization" and remote["headers"][0]["isSecret"]
    assert len(capsys.readouterr().out.splitlines()) == len(paths)


def test_import_installs_local_packages_or_the_team_remote(tmp_path, capsys):
    reg = tmp_path / "reg"
    main(["registry", "export", "--out", str(reg), "--remote-url", "https://cadre.example.com"])
    files = [str(reg / s / "server.json") for s in ("oracle", "search")]
    assert main(["--root", str(tmp_path), "registry", "import", *files, "--host", "claude-code"]) == 0
    servers = json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]
    assert servers["cadre-search"]["command"].endswith("cadre-search")  # the local console script
    assert servers["cadre-oracle"]["env"]["OPENAI_API_KEY"] == "${OPENAI_API_KEY:-}"
    assert servers["cadre-oracle"]["args"] == ["--root", str(tmp_path)]
    target = tmp_path / "cursor.json"
    args = ["registry", "import", *files, "--host", "cursor", "--remote", "--config-path", str(target)]
    assert main(["--root", str(tmp_path), *args]) == 0
    remote = json.loads(target.read_text())["mcpServers"]["cadre-oracle"]
    assert remote == {"url": "https://cadre.example.com/oracle/mcp",
                      "headers": {"Authorization": "Bearer ${env:CADRE_TOKEN}"}}  # fmt: skip


def test_unknown_packages_run_through_uvx_pinned():
    document = server_json("search")
    document["packages"][0]["identifier"] = "someone-elses-server"
    entry = entry_from(document, "x.json")
    assert (entry.command, entry.args) == ("uvx", ["--from", "someone-elses-server==0.1.0", "someone-elses-server"])


def test_an_invalid_file_names_the_problem(tmp_path, capsys):
    bad = tmp_path / "server.json"
    bad.write_text(json.dumps({"name": "no-slash", "description": "d", "version": "1"}))
    assert main(["--root", str(tmp_path), "registry", "import", str(bad), "--host", "cursor"]) == 2
    err = capsys.readouterr().err
    assert "is not a valid server.json (schema 2025-12-11) at name" in err


def test_literal_values_in_a_team_file_are_refused_without_allow_secrets(tmp_path):
    document = server_json("oracle")
    document["packages"][0]["environmentVariables"].append({"name": "OPENAI_API_KEY_2", "value": "sk-live"})
    path = tmp_path / "server.json"
    path.write_text(json.dumps(document))
    entry = entry_from(document, "f")
    with pytest.raises(CadreError, match="refusing to write literal values"):
        plan_install("claude-code", [entry], tmp_path / ".mcp.json")
