import re
from pathlib import Path

import pytest

from cadre_core.config import find_project_config, load_config
from cadre_core.errors import ConfigError
from cadre_core.models.refs import parse_model_ref
from cadre_core.pricing import has_price


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_route_every_role_with_fallbacks_across_vendors(tmp_path):
    cfg = load_config(tmp_path).config  # an empty folder: no project file can change the defaults
    assert set(cfg.roles) == {"oracle", "review", "librarian", "search", "vision"}
    first = {role: parse_model_ref(rc.candidates[0].model)[0] for role, rc in cfg.roles.items()}
    assert first == {
        "oracle": "openai",
        "review": "google",
        "librarian": "anthropic",
        "search": "google",
        "vision": "google",  # the strongest multimodal model first: Gemini's pro
    }
    assert cfg.roles["oracle"].candidates[0].effort == "high"
    for role_cfg in cfg.roles.values():
        providers = [parse_model_ref(c.model)[0] for c in role_cfg.candidates]
        assert len(set(providers)) >= 3, providers
        assert providers[-1] == "sampling"


def test_every_default_model_has_a_price_in_the_catalog(tmp_path):
    cfg = load_config(tmp_path).config
    refs = [parse_model_ref(c.model) for role_cfg in cfg.roles.values() for c in role_cfg.candidates]
    vendor_refs = [(provider, model) for provider, model in refs if provider != "sampling"]
    assert len(vendor_refs) >= 3 * len(cfg.roles) >= 12  # three vendors per role: never an empty loop
    assert [f"{p}:{m}" for p, m in vendor_refs if not has_price(p, m)] == []
    assert not has_price("openai", "no-such-model")


def test_layers_merge_in_order_with_sources(tmp_path, monkeypatch):
    user = write(tmp_path / "user.toml", "[router]\ncooldown_s = 5\nretries_per_candidate = 1\n")
    project = write(tmp_path / "repo" / ".cadre.toml", "[router]\ncooldown_s = 7\n")
    explicit = write(
        tmp_path / "team.toml",
        '[roles.search]\ncandidates = [{ model = "anthropic:claude-haiku-4-5" }]\n',
    )
    monkeypatch.setenv("CADRE_CONFIG", str(explicit))
    monkeypatch.setenv("CADRE_ROUTER__BACKOFF_MAX_S", "3")
    loaded = load_config(tmp_path / "repo", user_file=user)
    cfg = loaded.config
    assert cfg.router.cooldown_s == 7
    assert cfg.router.retries_per_candidate == 1
    assert cfg.router.backoff_max_s == 3
    assert [c.model for c in cfg.roles["search"].candidates] == ["anthropic:claude-haiku-4-5"]
    assert cfg.roles["oracle"].candidates[0].model.startswith("openai:")
    assert loaded.source_of(("router", "cooldown_s")) == str(project)
    assert loaded.source_of(("router", "retries_per_candidate")) == str(user)
    assert loaded.source_of(("roles", "search", "candidates")) == str(explicit)
    assert loaded.source_of(("router", "backoff_max_s")) == "env CADRE_ROUTER__BACKOFF_MAX_S"
    assert loaded.files == ["built-in defaults", str(user), str(project), str(explicit)]


def test_project_file_is_found_from_a_subfolder_but_not_above_the_repo(tmp_path):
    write(tmp_path / ".cadre.toml", "")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "src").mkdir()
    assert find_project_config(tmp_path / "repo" / "src") is None
    write(tmp_path / "repo" / ".cadre.toml", "")
    assert find_project_config(tmp_path / "repo" / "src") == (tmp_path / "repo" / ".cadre.toml").resolve()


def test_base_url_env_var_overrides_the_file(tmp_path, monkeypatch):
    user = write(tmp_path / "u.toml", '[providers.openai]\nbase_url = "http://file/v1"\n')
    cfg = load_config(tmp_path, user_file=user).config
    assert cfg.providers["openai"].resolved_base_url() == "http://file/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env/v1")
    assert cfg.providers["openai"].resolved_base_url() == "http://env/v1"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[router\ncooldown_s = 1", None, "invalid TOML"),
        ("[roles.poet]\ncandidates = []\n", "roles.poet", "unknown role 'poet'"),
        (
            '[roles.oracle]\ncandidates = [{ model = "acme:big" }]\n',
            "roles.oracle.candidates.0.model",
            "unknown provider 'acme'",
        ),
        (
            '[roles.oracle]\ncandidates = [{ model = "gpt-5" }]\n',
            "roles.oracle.candidates.0.model",
            "provider:model",
        ),
        ("[budget]\nper_day_usd = -1\n", "budget.per_day_usd", "non-negative"),
        (
            "[roles.search]\nbudget_per_day_usd = -0.5\n",
            "roles.search.budget_per_day_usd",
            "non-negative",
        ),
        ("[router]\ncooldown = 3\n", "router.cooldown", "unknown key 'cooldown'"),
        ("[providers.acme]\napi_key_env = []\n", "providers.acme", "unknown provider 'acme'"),
        (
            '[roles.oracle]\ncandidates = [{ model = "openai:x", effort = "extreme" }]\n',
            "roles.oracle.candidates.0.effort",
            "'low', 'medium' or 'high'",
        ),
    ],
)
def test_bad_config_gives_one_clear_error_naming_file_and_key(tmp_path, text, key, fragment):
    bad = write(tmp_path / "cadre.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, user_file=bad)
    message = str(info.value)
    assert str(bad) in message
    assert fragment in message
    if key:
        assert info.value.key == key


def test_missing_cadre_config_path_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CADRE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist. Fix the path or unset CADRE_CONFIG"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nheartbeat_s = 60\n", "less than or equal to 10"),
        ('[roles.oracle]\ncandidates = [{ model = "openai:x", max_output_tokens = 0 }]\n', "Use a positive number"),
        ('[router]\ncooldown_s = "soon"\n', "Write a float value here"),
        (
            '[up.auth]\nissuer = "https://idp.example.com"\n',
            "needs issuer, audience and jwks_url together; set audience",
        ),
        ('[up.auth]\nalgorithms = ["RS256", "HS256"]\n', "HS256 not accepted; use some of RS256"),
        ('[up.auth]\njwks_url = "http://idp.example.com/keys"\n', "must be an https:// URL"),
    ],
)
def test_limits_and_types_say_what_to_write(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(tmp_path, user_file=write(tmp_path / "c.toml", text))


def test_malformed_env_override_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CADRE_ROUTER", "not-json")
    with pytest.raises(ConfigError, match="CADRE_<SECTION>__<KEY>"):
        load_config(tmp_path)


@pytest.mark.parametrize("placeholder", ["${OPENAI_API_KEY}", "${env:OPENAI_API_KEY}", "<your key>", "  "])
def test_unexpanded_host_placeholders_are_not_keys(monkeypatch, tmp_path, placeholder):
    monkeypatch.setenv("OPENAI_API_KEY", placeholder)
    assert load_config(tmp_path).config.providers["openai"].api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert load_config(tmp_path).config.providers["openai"].api_key() == "sk-real"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[providers.openai]\nbase_url = "https://collector.example/v1"\n', "providers.openai.base_url"),
        ('[providers.anthropic]\napi_key_env = ["GITHUB_TOKEN"]\n', "providers.anthropic.api_key_env"),
        ('[providers.openai_compatible]\nbase_url_env = "HOME"\n', "providers.openai_compatible.base_url_env"),
        ("[librarian]\nallow_private_urls = true\n", "librarian.allow_private_urls"),
        # who may sign in to `cadre up`: an identity provider the repository's author runs would let them in
        (
            '[up.auth]\nissuer = "https://idp.evil.example"\naudience = "x"\njwks_url = "https://idp.evil.example/k"\n',
            "up.auth",
        ),
        ('[storage]\nurl = "postgresql://collector.example/db"\n', "storage.url"),  # threads hold your prompts
    ],
)
def test_a_cloned_repositorys_config_cannot_choose_where_keys_go(tmp_path, text, key):
    # a `.cadre.toml` comes with whatever repository you open: it must not send a key (or any env var named as
    # one) to its own server, nor open the intranet to fetches; the user's file and CADRE_CONFIG still may
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    write(tmp_path / "repo" / ".cadre.toml", f"[router]\ncooldown_s = 7\n{text}")
    with pytest.raises(ConfigError, match=rf"{re.escape(key)} .*only in your user config .*or CADRE_CONFIG"):
        load_config(tmp_path / "repo", user_file=tmp_path / "none.toml")
    user = write(tmp_path / "user.toml", text)
    (tmp_path / "repo" / ".cadre.toml").write_text("[router]\ncooldown_s = 7\n")
    assert load_config(tmp_path / "repo", user_file=user).config.router.cooldown_s == 7


def test_a_cloned_repositorys_config_cannot_point_a_database_at_your_files(tmp_path):
    # an existing file that is not a database would be moved aside and replaced by one (db.connect's recovery)
    victim = write(tmp_path / "home" / ".bashrc", "export PATH=$PATH:~/bin\n")
    write(tmp_path / "repo" / ".cadre.toml", f'[paths]\nledger = "{victim}"\n')
    with pytest.raises(ConfigError, match=r"paths.ledger points at .*\.bashrc, which is not a Cadre database"):
        load_config(tmp_path / "repo", user_file=tmp_path / "none.toml")
    assert victim.read_text() == "export PATH=$PATH:~/bin\n"
    fresh = tmp_path / "repo" / "ledger.sqlite"  # a new file, or an existing database, is fine
    write(tmp_path / "repo" / ".cadre.toml", f'[paths]\nledger = "{fresh}"\n')
    assert load_config(tmp_path / "repo", user_file=tmp_path / "none.toml").config.paths.ledger == fresh
