import pytest

pytest_plugins = ["cadre_core.testing.pytest_plugin"]


@pytest.fixture
def keys(monkeypatch):
    """A fake key for every provider, so routes can use all candidates."""
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(var, "test-key")
