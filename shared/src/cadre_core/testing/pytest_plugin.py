"""pytest plugin: no network, no real keys, and private config/data dirs for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadre_core.testing import block_network
from cadre_core.testing.storage import PG_URL, SKIP_REASON, Backend, drop_schema, fresh_schema

_ENV_PREFIXES = ("ANTHROPIC_", "OPENAI_", "GEMINI_", "GOOGLE_", "CADRE_", "OPENAI_COMPATIBLE_", "GITHUB_", "GH_")


@pytest.fixture(autouse=True)
def _cadre_isolation(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cadre-home")
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    with block_network():
        yield home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each storage backend in turn (`cadre_core.testing.storage`): SQLite files under tmp_path, then a fresh
    PostgreSQL schema (skipped when CADRE_TEST_PG_URL is not set)."""
    if request.param == "sqlite":
        yield Backend("sqlite", tmp_path)
        return
    if not PG_URL:
        pytest.skip(SKIP_REASON)
    schema, url = fresh_schema(PG_URL)
    try:
        yield Backend("postgresql", tmp_path, url)
    finally:
        drop_schema(PG_URL, schema, url)
