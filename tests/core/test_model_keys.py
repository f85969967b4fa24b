import pytest

from cadre_core.errors import MissingKeyError
from cadre_core.models.anthropic import AnthropicModel
from cadre_core.models.base import Message, ModelRequest
from cadre_core.models.google import GoogleModel
from cadre_core.models.openai import OpenAIModel

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("cls", "env"),
    [(AnthropicModel, "ANTHROPIC_API_KEY"), (OpenAIModel, "OPENAI_API_KEY"), (GoogleModel, "GEMINI_API_KEY")],
)
async def test_a_model_without_a_key_names_the_env_var(cls, env):
    model = cls("some-model", api_key=None)
    with pytest.raises(MissingKeyError, match=f"set {env}"):
        await model.request(ModelRequest([Message.user("hi")]))
