"""Images and PDFs on each vendor's wire, as the SDKs send them (captured through httpx2.MockTransport).

Shapes checked against the vendors' docs:
- Anthropic: `{"type": "image"|"document", "source": {"type": "base64", "media_type", "data"}}`
  (docs.claude.com/en/docs/build-with-claude/vision, /pdf-support).
- OpenAI Responses: `{"type": "input_image", "image_url": "data:<type>;base64,..."}` and
  `{"type": "input_file", "filename", "file_data": "data:application/pdf;base64,..."}`
  (platform.openai.com/docs/guides/images-vision, /pdf-files).
- Gemini: `{"inlineData": {"mimeType", "data": <base64>}}` parts (ai.google.dev/gemini-api/docs/image-understanding).
- MCP sampling: `ImageContent {type: "image", data: <base64>, mimeType}` (modelcontextprotocol.io, sampling).
"""

import base64

import pytest

from cadre_core.models.anthropic import AnthropicModel
from cadre_core.models.base import Attachment, Message, ModelRequest
from cadre_core.models.google import GoogleModel
from cadre_core.models.openai import OpenAIModel
from cadre_core.models.sampling import to_sample_args
from cadre_core.testing import RecordingHandler, mock_http_client
from tests.core.wire import fixture

pytestmark = pytest.mark.anyio

PNG = Attachment(b"\x89PNG\r\n\x1a\nfake-pixels", "image/png", "shot.png", tokens=1600)
PDF = Attachment(b"%PDF-1.7 fake", "application/pdf", "spec.pdf", tokens=3000)
PNG_B64 = base64.b64encode(PNG.data).decode()
PDF_B64 = base64.b64encode(PDF.data).decode()


def request() -> ModelRequest:
    return ModelRequest([Message("user", "What is on screen?", attachments=[PNG, PDF])])


async def test_anthropic_sends_base64_image_and_document_blocks_before_the_text():
    handler = RecordingHandler((200, fixture("anthropic_text")))
    model = AnthropicModel("claude-opus-5-5", api_key="k", http_client=mock_http_client(handler))
    await model.request(request())
    assert handler.bodies[0]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}},
                {"type": "text", "text": "What is on screen?"},
            ],
        }
    ]


async def test_openai_sends_input_image_and_input_file_data_urls():
    handler = RecordingHandler((200, fixture("openai_function_call")))
    model = OpenAIModel("gpt-6.1-sol", api_key="k", http_client=mock_http_client(handler))
    await model.request(request())
    assert handler.bodies[0]["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is on screen?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "auto"},
                {"type": "input_file", "filename": "spec.pdf", "file_data": f"data:application/pdf;base64,{PDF_B64}"},
            ],
        }
    ]


async def test_google_sends_inline_data_parts_base64_encoded_by_the_sdk():
    handler = RecordingHandler((200, fixture("google_text")))
    model = GoogleModel("gemini-3.1-pro-preview", api_key="k", http_client=mock_http_client(handler))
    await model.request(request())
    # google-genai writes the Blob's field as `mime_type` (proto3 JSON parsers take either spelling)
    assert handler.bodies[0]["contents"] == [
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mime_type": "image/png", "data": PNG_B64}},
                {"inlineData": {"mime_type": "application/pdf", "data": PDF_B64}},
                {"text": "What is on screen?"},
            ],
        }
    ]


def test_sampling_sends_images_as_image_content_and_names_the_pdf_it_cannot_send():
    [message] = to_sample_args(request())["messages"]
    dumped = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in message.content]
    assert dumped[0] == {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    assert dumped[1]["type"] == "text"
    assert dumped[1]["text"].startswith("What is on screen?")
    assert "not sent: the host's model takes images only: spec.pdf" in dumped[1]["text"]


def test_text_only_turns_are_unchanged_on_every_wire():
    [message] = to_sample_args(ModelRequest([Message.user("hi")]))["messages"]
    assert message.content.type == "text"  # a single TextContent, as before attachments existed


def test_attachment_tokens_count_in_the_estimate_the_window_check_and_budget_use():
    plain = ModelRequest([Message.user("What is on screen?")])
    assert request().estimated_input_tokens() == plain.estimated_input_tokens() + 1600 + 3000


async def test_openai_compatible_sends_chat_image_url_and_file_parts():
    from cadre_core.models.openai_compatible import OpenAICompatibleModel

    handler = RecordingHandler((200, fixture("chat_text")))
    model = OpenAICompatibleModel(
        "qwen3-vl", api_key="k", base_url="http://localhost:11434/v1", http_client=mock_http_client(handler)
    )
    await model.request(request())
    [message] = [m for m in handler.bodies[0]["messages"] if m["role"] == "user"]
    assert message["content"] == [
        {"type": "text", "text": "What is on screen?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "file", "file": {"filename": "spec.pdf", "file_data": f"data:application/pdf;base64,{PDF_B64}"}},
    ]
