"""Images fitted to each vendor's documented limits when the request is built for that vendor, and PDFs
rendered to page images for the host (MCP sampling takes no documents).

Vendor facts checked here:
- Anthropic (docs.claude.com/en/docs/build-with-claude/vision): scaled down above a 1568 px long edge or
  ~1,600 tokens; "no more than 1.15 megapixels"; tokens = width * height / 750; its size table gives 1092x1092
  for 1:1 and 1568x784 for 1:2; an image's base64 over 5 MB (5,242,880 bytes) is refused.
- OpenAI (platform.openai.com/docs/guides/images-vision): high detail fits 2048x2048, then the short side to
  768 px; 170 tokens per 512 px tile + 85. Its worked examples: 1024x1024 -> 765 tokens, 2048x4096 -> 1105.
- Gemini (ai.google.dev/gemini-api/docs/tokens): 258 tokens up to 384 px, else 258 per 768x768 tile; inline
  data while the request is under 20 MB.
- MCP sampling (modelcontextprotocol.io/specification/2025-06-18/client/sampling): message content is text,
  image or audio; there is no document type.
"""

import io
import json
import math
import os

import pytest
from mcp import Client
from PIL import Image

from cadre_core.models.base import Attachment, Message, ModelRequest, ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.workspace import Workspace
from cadre_vision import fitting
from cadre_vision.analyze import visual_request
from tests.servers.test_vision import ANSWER, ask_host

pytestmark = pytest.mark.anyio


def picture(width: int, height: int, fmt: str = "PNG", noise: bool = False) -> bytes:
    image = (
        Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
        if noise
        else Image.new("RGB", (width, height), (200, 30, 30))
    )
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def decoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def attachment(data: bytes, size: tuple[int, int], media_type: str = "image/png") -> Attachment:
    return Attachment(data, media_type, "shot.png", fitting.image_tokens(*size), size=size)


def test_anthropic_gets_its_recommended_size_and_token_count():
    sent = fitting.fit_image(attachment(picture(4000, 3000), (4000, 3000)), fitting.VENDOR_LIMITS["anthropic"])
    width, height = decoded_size(sent.data)
    assert sent.size == (width, height) and sent.media_type == "image/png"
    assert max(width, height) <= 1568 and width * height <= 1_150_000
    assert abs(width / height - 4 / 3) < 0.01  # aspect kept
    assert sent.tokens == math.ceil(width * height / 750) <= 1600
    # the docs' table: 1:1 at most 1092x1092, 1:2 at most 1568x784
    assert max(fitting.VENDOR_LIMITS["anthropic"].fit(5000, 5000)) <= 1092
    wide = fitting.VENDOR_LIMITS["anthropic"].fit(6000, 3000)
    assert wide[0] <= 1568 and wide[1] <= 784


def test_openai_gets_2048_then_768_and_its_worked_token_examples():
    openai = fitting.VENDOR_LIMITS["openai"]
    assert openai.fit(2048, 4096) == (768, 1536)
    assert openai.tokens(*openai.fit(2048, 4096)) == 1105
    assert openai.tokens(*openai.fit(1024, 1024)) == 765
    sent = fitting.fit_image(attachment(picture(2048, 4096), (2048, 4096)), openai)
    assert decoded_size(sent.data) == (768, 1536) and sent.tokens == 1105


def test_gemini_gets_768_tiles_and_a_small_image_is_sent_untouched():
    google = fitting.VENDOR_LIMITS["google"]
    sent = fitting.fit_image(attachment(picture(4000, 3000), (4000, 3000)), google)
    assert decoded_size(sent.data) == (3072, 2304) and sent.tokens == 258 * 4 * 3
    small = attachment(picture(300, 200), (300, 200))
    kept = fitting.fit_image(small, google)
    assert kept.data is small.data and kept.tokens == 258


def test_an_image_over_the_byte_cap_is_reencoded_then_shrunk_until_it_fits():
    noisy = picture(1000, 800, noise=True)  # noise barely compresses: about 2.4 MB as PNG
    limits = fitting.Limits(1568, 300_000, 20_000_000, fitting.anthropic_tokens)
    sent = fitting.fit_image(attachment(noisy, (1000, 800)), limits)
    assert len(sent.data) <= 300_000 and sent.media_type == "image/jpeg"
    assert sent.data.startswith(b"\xff\xd8\xff")
    assert sent.size == decoded_size(sent.data) and sent.tokens == math.ceil(sent.size[0] * sent.size[1] / 750)


def test_a_jpeg_stays_jpeg_and_a_broken_image_is_refused_clearly():
    sent = fitting.fit_image(
        attachment(picture(3000, 2000, "JPEG"), (3000, 2000), "image/jpeg"), fitting.VENDOR_LIMITS["anthropic"]
    )
    assert sent.media_type == "image/jpeg" and max(decoded_size(sent.data)) <= 1568
    broken = attachment(picture(3000, 2000)[:200], (3000, 2000))  # header intact, pixels cut off
    with pytest.raises(Exception, match=r"'shot.png' could not be decoded as image/png .*; pass an intact image"):
        fitting.fit_image(broken, fitting.VENDOR_LIMITS["anthropic"])


def test_a_large_image_is_accepted_and_a_pixel_bomb_refused_before_decoding(tmp_path):
    from cadre_vision import visuals

    (tmp_path / "big.png").write_bytes(picture(9000, 3000))  # over Anthropic's 8000 px: downscaled, not refused
    big = visuals.load(Workspace([tmp_path]), "big.png")
    assert big.attachment is not None and big.attachment.size == (9000, 3000)
    header = picture(1, 1)
    bomb = header[:16] + (50000).to_bytes(4, "big") + (50000).to_bytes(4, "big") + header[24:]
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(Exception, match=r"'bomb.png' is 50000x50000 px, over the 40 MP limit; pass a smaller image"):
        visuals.load(Workspace([tmp_path]), "bomb.png")


def test_the_request_limit_of_the_vendor_skips_it_with_the_reason():
    images = [attachment(picture(400, 400, noise=True), (400, 400)) for _ in range(3)]  # ~0.5 MB each
    request = ModelRequest([Message("user", "q", attachments=images)], adapt=fitting.adapter(None))
    tight = dict(fitting.VENDOR_LIMITS, google=fitting.Limits(3072, 7_000_000, 1_000_000, fitting.gemini_tokens))
    original = fitting.VENDOR_LIMITS
    fitting.VENDOR_LIMITS = tight
    try:
        with pytest.raises(Exception, match=r"over google's 1 MB request limit; pass fewer files or pages"):
            request.adapt(request, "google")
    finally:
        fitting.VENDOR_LIMITS = original


async def test_each_candidate_gets_its_own_fit_and_the_window_check_counts_the_fitted_size(tmp_path, keys):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "shot.png").write_bytes(picture(4000, 3000))
    seen: dict[str, ModelRequest] = {}

    def failing(request, _model):
        from cadre_core.errors import ServerError

        seen["google"] = request
        raise ServerError("overloaded", provider="google", model="gemini-3.1-pro-preview")

    def answering(request, _model):
        seen["anthropic"] = request
        return ModelResponse(text=json.dumps(ANSWER), usage=Usage(input_tokens=1600, output_tokens=50))

    unfitted = visual_request(Workspace([ws]), ["shot.png"], "What is on screen?", None)
    # Anthropic's window lets the fitted request in (about 1,530 image tokens) but not the load-time
    # estimate (3,096: the most any vendor counts), so the answer proves the check used the fitted size.
    window = unfitted.estimated_input_tokens() + 1000 - 1
    models = {
        "google:gemini-3.1-pro-preview": FunctionModel(failing),
        "anthropic:claude-opus-5-5": FunctionModel(answering),
    }
    candidates = [
        "google:gemini-3.1-pro-preview",
        {"model": "anthropic:claude-opus-5-5", "context_window": window, "max_output_tokens": 1000},
    ]
    from cadre_core.testing import wire_fake_models
    from cadre_vision.server import create_server
    from tests.core.conftest import make_config

    server = create_server(root=ws)
    wire_fake_models(server, models, config=make_config(vision=candidates), state=tmp_path / "state")
    async with Client(server) as client:
        result = await client.call_tool("analyze_visual", {"files": ["shot.png"], "question": "What is on screen?"})
    assert not result.is_error, result.content
    assert result.structured_content["model"].startswith("anthropic:")
    [to_google] = seen["google"].messages[0].attachments
    [to_anthropic] = seen["anthropic"].messages[0].attachments
    assert decoded_size(to_google.data) == (3072, 2304) and to_google.tokens == 3096
    assert max(decoded_size(to_anthropic.data)) <= 1568 and to_anthropic.tokens <= 1600
    # The request the model got is the one the window check measured and the budget reserves on.
    assert seen["anthropic"].estimated_input_tokens() + 1000 <= window
    assert unfitted.estimated_input_tokens() + 1000 > window


def pdf(pages: int) -> bytes:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(612, 792)  # US Letter in points
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_host_gets_the_selected_pdf_pages_as_images(tmp_path, monkeypatch, mode):
    import base64

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "spec.pdf").write_bytes(pdf(3))
    arguments = {"files": ["spec.pdf"], "question": "q?", "pages": "2-3"}
    _, seen = await ask_host(ws, tmp_path, monkeypatch, mode, arguments, reply="Blank pages.")
    [params] = seen
    *images, text = params.messages[0].content
    assert [i.type for i in images] == ["image", "image"] and {i.mime_type for i in images} == {"image/png"}
    width, height = decoded_size(base64.b64decode(images[0].data))
    assert max(width, height) <= 1568 and abs(width / height - 612 / 792) < 0.01
    assert "[spec.pdf is sent as page images, in order: pages 2, 3 of 3]" in text.text
    assert "not sent" not in text.text
