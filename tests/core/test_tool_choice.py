from cadre_core.models.anthropic import AnthropicModel
from cadre_core.models.base import Message, ModelRequest, ToolDefinition
from cadre_core.models.google import GoogleModel
from cadre_core.models.openai import OpenAIModel
from cadre_core.models.openai_compatible import OpenAICompatibleModel

TOOL = ToolDefinition("read", "Read a file.", {"type": "object", "properties": {}})


def request(allowed: bool) -> ModelRequest:
    return ModelRequest([Message.user("q")], tools=[TOOL], tools_allowed=allowed)


def test_forbidding_new_tool_calls_keeps_the_tools_declared():
    anthropic = AnthropicModel("m", api_key="k")
    assert anthropic.build_params(request(False))["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in anthropic.build_params(request(True))
    for model in (OpenAIModel("m", api_key="k"), OpenAICompatibleModel("m", api_key="k")):
        params = model.build_params(request(False))
        assert params["tool_choice"] == "none" and params["tools"]
    config = GoogleModel("m", api_key="k").build_config(request(False))
    assert config.tool_config.function_calling_config.mode.name == "NONE" and config.tools
