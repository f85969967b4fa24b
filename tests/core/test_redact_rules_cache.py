"""The redaction rules are cached on disk, so a short-lived command need not import detect-secrets."""

from pathlib import Path

import pytest

from cadre_core import redact


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_cached_rules_equal_the_ones_built_from_detect_secrets(cache_home: Path, monkeypatch: pytest.MonkeyPatch):
    built = redact._material()
    assert redact._cached_material() == built  # first call writes the file
    [cached] = (cache_home / "cadre").glob("redact-rules-*.json")
    assert cached.stat().st_mode & 0o077 == 0

    def no_import() -> None:
        raise AssertionError("detect-secrets was consulted despite the cache")

    monkeypatch.setattr(redact, "_material", no_import)
    assert redact._cached_material() == built


def test_a_corrupt_cache_file_is_rebuilt(cache_home: Path):
    redact._cached_material()
    [cached] = (cache_home / "cadre").glob("redact-rules-*.json")
    cached.write_text("{not json", encoding="utf-8")
    assert redact._cached_material() == redact._material()
    assert cached.read_text(encoding="utf-8").startswith("{")


def test_rules_from_the_cache_still_redact(cache_home: Path):
    redact._cached_material()
    redact._rules.cache_clear()
    try:
        text, count = redact.redact('token = "ghp_' + "a1B2" * 9 + '"\nx = 1', filename="settings.py")
    finally:
        redact._rules.cache_clear()
    assert count == 1 and "ghp_" not in text and text.endswith("\nx = 1")
