"""generate_image through the real route (budget, ledger, retries) to OpenAI's Images API, faked at HTTP level.

The fake answers as the API reference documents `POST /v1/images/generations` for GPT Image models
(platform.openai.com/docs/api-reference/images/create, "Returns an image object"): `created`, `data[]` with
`b64_json` (GPT Image models always return base64), and `usage` with `input_tokens`, `input_tokens_details`
`{text_tokens, image_tokens}`, `output_tokens` and `total_tokens`. Output tokens at medium quality are the
image generation guide's table (1024x1024: 1056); `gpt-image-1-mini` costs $2 per million text input
tokens and $8 per million image output tokens (genai-prices, from developers.openai.com/api/docs/pricing).
"""

import base64
import io
import json

import pytest
from mcp import Client
from PIL import Image

from cadre_core.budget import Budget
from cadre_core.models.openai_images import OpenAIImageModel
from cadre_core.testing import RecordingHandler, mock_http_client, wire_fake_models
from cadre_vision.server import create_server
from tests.core.conftest import make_config

pytestmark = pytest.mark.anyio


def drawn_png(width: int = 1024, height: int = 1024) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 220)).save(out, "PNG")
    return out.getvalue()


def images_reply(png: bytes, output_tokens: int = 1056) -> tuple[int, dict]:
    return 200, {
        "created": 1765000000,
        "data": [{"b64_json": base64.b64encode(png).decode()}],
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            "output_tokens": output_tokens,
            "total_tokens": 50 + output_tokens,
        },
    }


def server_with(ws, tmp_path, handler, config=None, **router_options):
    server = create_server(root=ws)
    model = OpenAIImageModel("gpt-image-1-mini", api_key="k", http_client=mock_http_client(handler))
    config = config or make_config(vision=["google:gemini-3.1-pro-preview"])
    models = {"openai:gpt-image-1-mini": model}
    ledger = wire_fake_models(server, models, config=config, state=tmp_path / "state", **router_options)
    return server, ledger


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    return root


async def test_the_png_is_written_priced_and_recorded(ws, tmp_path, keys):
    png = drawn_png()
    handler = RecordingHandler(images_reply(png))
    server, ledger = server_with(ws, tmp_path, handler)
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "A settings page mock-up", "path": "ui/mock.png"})
    assert not result.is_error, result.content
    assert (ws / "ui" / "mock.png").read_bytes() == png
    data = result.structured_content
    assert data["path"] == "ui/mock.png" and data["size"] == "1024x1024" and data["bytes"] == len(png)
    assert data["model"] == "openai:gpt-image-1-mini"
    assert data["cost_usd"] == pytest.approx((50 * 2 + 1056 * 8) / 1e6)
    [request] = handler.requests
    assert request.url.path == "/v1/images/generations"
    body = json.loads(request.content)
    assert body == {"model": "gpt-image-1-mini", "prompt": "A settings page mock-up", "size": "1024x1024",
                    "quality": "medium", "output_format": "png", "n": 1}  # fmt: skip
    assert ledger.flush()  # the rows are written by a worker thread
    [row] = ledger.store.rows(role="image")
    assert (row["provider"], row["model"], row["tool"]) == ("openai", "gpt-image-1-mini", "generate_image")
    assert row["input_tokens"] == 50 and row["output_tokens"] == 1056
    assert row["cost_usd"] == pytest.approx((50 * 2 + 1056 * 8) / 1e6)


async def test_an_existing_file_is_kept_and_the_result_says_where_the_image_went(ws, tmp_path, keys):
    (ws / "icon.png").write_bytes(b"mine")
    (ws / "icon-1.png").write_bytes(b"mine too")
    server, _ = server_with(ws, tmp_path, RecordingHandler(images_reply(drawn_png(1536, 1024), 1568)))
    async with Client(server) as client:
        arguments = {"prompt": "An icon", "path": "icon.png", "size": "1536x1024"}
        result = await client.call_tool("generate_image", arguments)
    assert not result.is_error, result.content
    assert (ws / "icon.png").read_bytes() == b"mine" and (ws / "icon-1.png").read_bytes() == b"mine too"
    assert (ws / "icon-2.png").read_bytes().startswith(b"\x89PNG")
    assert result.structured_content["path"] == "icon-2.png"
    assert result.structured_content["notes"] == ["'icon.png' exists and is kept; wrote 'icon-2.png' instead"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "../outside.png"}, "outside the workspace"),
        ({"path": "mock.jpg"}, "'mock.jpg' must end in .png"),
        ({"path": ".ssh/id.png"}, "looks like a secret file's path"),
        ({"path": "a.png", "prompt": "  "}, "the prompt is empty"),
        ({"path": "a.png", "size": "4096x4096"}, "size"),
        ({"path": "notes.txt/a.png"}, "'notes.txt' is a file, not a folder"),
    ],
)
async def test_bad_paths_and_arguments_are_refused_before_any_request(ws, tmp_path, keys, arguments, message):
    (ws / "notes.txt").write_text("mine")
    handler = RecordingHandler()  # any request would fail the test
    server, _ = server_with(ws, tmp_path, handler)
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "x", **arguments})
    assert result.is_error and message in result.content[0].text
    assert handler.requests == [] and [p.name for p in ws.iterdir()] == ["notes.txt"]


async def test_the_budget_reserves_the_image_output_before_sending(ws, tmp_path, keys):
    config = make_config(vision=["google:gemini-3.1-pro-preview"])
    config.budget.per_call_usd = 0.005  # under the reservation: 1056 output tokens alone cost $0.0084
    handler = RecordingHandler()
    server, _ = server_with(ws, tmp_path, handler, config, budget=Budget(tmp_path / "budget.sqlite"))
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "An icon", "path": "icon.png"})
    assert result.is_error and "per_call_usd" in result.content[0].text
    assert handler.requests == [] and not (ws / "icon.png").exists()


@pytest.mark.parametrize(
    "model",
    [
        "openai:gpt-image-9-unpriced",  # not in the catalog
        "openai:gpt-image-1.5",  # the catalog prices its image output apart ($32) from its text output ($10)
    ],
)
async def test_an_image_route_whose_price_cannot_be_counted_is_refused(ws, tmp_path, keys, model):
    config = make_config(vision=["google:gemini-3.1-pro-preview"], image=[model])
    handler = RecordingHandler()
    server, _ = server_with(ws, tmp_path, handler, config)
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "An icon", "path": "icon.png"})
    assert result.is_error and f"no price Cadre can count is known for '{model}'" in result.content[0].text
    assert handler.requests == []
