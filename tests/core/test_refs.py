"""`provider:model` references: one parser, one canonical spelling, one test for the host's model."""

from __future__ import annotations

import pytest

from cadre_core.config import Candidate
from cadre_core.models.refs import canonical_ref, is_host, model_key, parse_model_ref


@pytest.mark.parametrize(
    ("ref", "canonical"),
    [
        ("openai:gpt-5.2", "openai:gpt-5.2"),
        ("OpenAI:gpt-5.2", "openai:gpt-5.2"),
        ("gemini:gemini-2.5-flash", "google:gemini-2.5-flash"),
        ("Google-GLA:gemini-2.5-flash", "google:gemini-2.5-flash"),
        ("openai-compatible:llama3", "openai_compatible:llama3"),
        (" SAMPLING:host ", "sampling:host"),
        ("sampling", "sampling:host"),
    ],
)
def test_refs_have_one_canonical_spelling(ref, canonical):
    assert canonical_ref(ref) == canonical
    assert model_key(ref) == canonical
    assert Candidate(model=ref).model == canonical  # a route is stored canonical, so every check agrees


@pytest.mark.parametrize("ref", ["sampling:host", "SAMPLING:host", "Sampling", " sampling:host"])
def test_is_host_in_any_spelling(ref):
    assert is_host(ref)
    assert parse_model_ref(ref)[0] == "sampling"


@pytest.mark.parametrize("ref", ["openai:gpt-5.2", "google:sampling", "samplingx:host", "host"])
def test_is_host_only_for_the_sampling_provider(ref):
    assert not is_host(ref)


def test_a_ref_that_does_not_parse_names_the_fix():
    with pytest.raises(ValueError, match="unknown provider 'mistral'"):
        canonical_ref("Mistral:large")
    assert model_key(" Mistral:large ") == "Mistral:large"  # unparsable: kept apart as written
