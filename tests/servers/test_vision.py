"""The vision server: files typed by bytes and capped, PDF pages, and analyze_visual through a real client."""

import json
import os
import struct
import zlib

import mcp_types as types
import pytest
from mcp import Client

from cadre_core.models.base import ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.testing import wire_fake_models
from cadre_core.workspace import Workspace
from cadre_vision import visuals
from cadre_vision.analyze import visual_request
from cadre_vision.server import create_server
from tests.core.conftest import make_config

pytestmark = pytest.mark.anyio


def png(width: int, height: int) -> bytes:
    """A real PNG (PNG spec §5: signature, IHDR, IDAT, IEND), one grey pixel row repeated."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = (b"\x00" + b"\x80" * width) * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg(width: int, height: int) -> bytes:
    """SOI, an APP0 (JFIF) segment to skip, then SOF0 with height and width (ITU-T T.81 §B.2.2)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def webp(kind: bytes, width: int, height: int) -> bytes:
    if kind == b"VP8X":  # RFC 9649 §2.7: flags, reserved, canvas width-1 and height-1 (24 bits each)
        body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif kind == b"VP8L":  # §3.2: signature 0x2f, then 14-bit width-1 and height-1
        body = b"\x2f" + ((width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    else:  # VP8 key frame (RFC 6386 §9.1): 3-byte frame tag, start code, 14-bit width and height
        body = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height)
    chunk = kind + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


PDF = b"%PDF-1.4\n1 0 obj <</Type /Pages /Count 3>>\n2 0 obj <</Type /Page>>\n3 0 obj <</Type/Page>>\n" + (
    b"4 0 obj <</Type /Page /Parent 1 0 R>>\n%%EOF\n"
)


@pytest.mark.parametrize(
    ("data", "media_type", "size"),
    [
        (png(3, 2), "image/png", (3, 2)),
        (jpeg(640, 480), "image/jpeg", (640, 480)),
        (b"GIF89a" + struct.pack("<HH", 320, 200) + b"\x00" * 8, "image/gif", (320, 200)),
        (webp(b"VP8X", 1920, 1080), "image/webp", (1920, 1080)),
        (webp(b"VP8L", 100, 50), "image/webp", (100, 50)),
        (webp(b"VP8 ", 64, 48), "image/webp", (64, 48)),
    ],
)
def test_type_comes_from_the_bytes_and_size_from_the_header(tmp_path, data, media_type, size):
    (tmp_path / "pic.txt").write_bytes(data)  # a misleading name: the bytes decide
    visual = visuals.load(Workspace([tmp_path]), "pic.txt")
    assert visual.attachment is not None and visual.attachment.media_type == media_type
    assert visual.size == size
    assert visual.attachment.tokens == visuals.image_tokens(*size) > 0


def test_image_tokens_follow_each_vendors_formula_and_take_the_largest():
    # 200x200: Anthropic 54, OpenAI 85 + 170 * 1 tile = 255, Gemini 258 (one tile at most 384 px)
    assert visuals.image_tokens(200, 200) == 258
    # 1000x1000: Anthropic 1334, OpenAI 768x768 -> 4 tiles = 765, Gemini 2x2 tiles of 768 = 1032
    assert visuals.image_tokens(1000, 1000) == 1334
    # 4000x3000, each as that vendor is sent it: Anthropic 1238x928 (1.15 MP) = 1532, OpenAI 1024x768 = 765,
    # Gemini 3072x2304 (Cadre's 3072 px fit) = 4x3 tiles = 3096
    assert visuals.image_tokens(4000, 3000) == 258 * 4 * 3


def test_a_planted_image_over_the_pixel_cap_is_refused_with_the_limit(tmp_path):
    header_only = png(1, 1).replace(struct.pack(">II", 1, 1), struct.pack(">II", 20000, 20000), 1)
    (tmp_path / "bomb.png").write_bytes(header_only)
    with pytest.raises(Exception, match=r"'bomb.png' is 20000x20000 px, over the 40 MP limit; pass a smaller image"):
        visuals.load(Workspace([tmp_path]), "bomb.png")
    (tmp_path / "wide.png").write_bytes(png(1, 1).replace(struct.pack(">II", 1, 1), struct.pack(">II", 7000, 7000)))
    with pytest.raises(Exception, match=r"7000x7000 px, over the 40 MP limit"):
        visuals.load(Workspace([tmp_path]), "wide.png")


def test_an_image_over_a_vendor_byte_cap_loads_and_a_file_over_the_file_cap_is_refused(tmp_path):
    (tmp_path / "big.png").write_bytes(png(2, 2) + b"\x00" * 6_000_000)  # fitted per vendor when sent
    assert visuals.load(Workspace([tmp_path]), "big.png").size == (2, 2)
    (tmp_path / "huge.pdf").write_bytes(PDF + b"\x00" * visuals.MAX_BYTES)
    with pytest.raises(Exception, match=r"'huge.pdf' is not readable here: larger than 20 MB"):
        visuals.load(Workspace([tmp_path]), "huge.pdf")


def test_a_truncated_header_and_an_unknown_binary_are_refused(tmp_path):
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(Exception, match=r"image/png header is truncated or malformed"):
        visuals.load(Workspace([tmp_path]), "cut.png")
    (tmp_path / "prog.png").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64)
    with pytest.raises(Exception, match=r"'prog.png' is not a PNG, JPEG, WebP, GIF, PDF, SVG or diagram source"):
        visuals.load(Workspace([tmp_path]), "prog.png")
    (tmp_path / "big.svg").write_text("<svg>" + " " * visuals.MAX_TEXT_BYTES + "</svg>")
    with pytest.raises(Exception, match=r"'big.svg' is text over 1 MB; pass a smaller SVG or source"):
        visuals.load(Workspace([tmp_path]), "big.svg")


def test_secret_files_outside_paths_and_fifos_are_never_read(tmp_path):
    ws = tmp_path / "ws"
    (ws / ".ssh").mkdir(parents=True)
    (ws / ".ssh" / "shot.png").write_bytes(png(1, 1))
    (ws / "server.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    (ws / "key.png").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    (tmp_path / "outside.png").write_bytes(png(1, 1))
    os.mkfifo(ws / "pipe.png")
    workspace = Workspace([ws])
    for path, message in [
        (".ssh/shot.png", "looks like a secret file"),
        ("server.pem", "looks like a secret file"),
        ("key.png", "looks like a secret file"),  # by content, whatever the name
        ("../outside.png", "outside the workspace roots"),
        ("pipe.png", "missing or not a regular file"),
        ("gone.png", "'gone.png' does not exist; pass the path of a file in the workspace"),
    ]:
        with pytest.raises(Exception, match=message):
            visuals.load(workspace, path)


def test_svg_and_diagram_sources_go_as_redacted_text(tmp_path):
    (tmp_path / "d.svg").write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>\n')
    (tmp_path / "flow.mmd").write_text("graph TD\n  A-->B\n  token: AKIA" + "IOSFODNN7EXAMPLE\n")
    request = visual_request(Workspace([tmp_path]), ["d.svg", "flow.mmd"], "What connects?", None)
    [message] = request.messages
    assert message.attachments == []
    assert "SVG source of d.svg:\n<?xml" in message.text
    assert "TEXT source of flow.mmd:\ngraph TD" in message.text
    assert "IOSFODNN7EXAMPLE" not in message.text


@pytest.mark.parametrize(("spec", "pages"), [("1-3,5", [1, 2, 3, 5]), ("2", [2]), (" 4 - 5 , 4", [4, 5])])
def test_page_ranges_parse(spec, pages):
    assert visuals.parse_pages(spec) == pages


@pytest.mark.parametrize("spec", ["0", "3-1", "a", "1-", "1,,2", "1-99999"])
def test_bad_page_ranges_say_how_to_write_them(spec):
    with pytest.raises(Exception, match=r"pages: .*(write pages like '1-3,5'|narrower range)"):
        visuals.parse_pages(spec)


def test_pdf_pages_are_counted_checked_and_named_in_the_prompt(tmp_path):
    (tmp_path / "spec.pdf").write_bytes(PDF)
    (tmp_path / "a.png").write_bytes(png(2, 2))
    ws = Workspace([tmp_path])
    request = visual_request(ws, ["spec.pdf", "a.png"], "What does page 2 say?", "2-3")
    [message] = request.messages
    assert [a.media_type for a in message.attachments] == ["application/pdf", "image/png"]
    assert message.attachments[0].tokens == 3 * visuals.PDF_PAGE_TOKENS  # /Type /Pages is not a page
    assert "Look only at PDF pages 2-3" in message.text
    assert "- spec.pdf (PDF, 3 pages)\n- a.png (2x2 px)" in message.text
    with pytest.raises(Exception, match=r"page 4 asked for, but the PDFs have at most 3"):
        visual_request(ws, ["spec.pdf"], "q", "1,4")
    (tmp_path / "packed.pdf").write_bytes(b"%PDF-1.7\n" + b"x" * 120_000)  # pages inside compressed streams
    packed = visuals.load(ws, "packed.pdf")
    assert packed.pages is None and packed.attachment.tokens == 3 * visuals.PDF_PAGE_TOKENS  # one per 50 kB
    with pytest.raises(Exception, match=r"pages applies to PDFs; none of the files is a PDF"):
        visual_request(ws, ["a.png"], "q", "1")


def vision(root, models, tmp_path):
    server = create_server(root=root)
    wire_fake_models(server, models, config=make_config(vision=list(models)), state=tmp_path / "state")
    return server


ANSWER = {"answer": "A red button.", "observations": [{"what": "red Save button", "region_or_page": "a.png top-right"}],
          "confidence": "high"}  # fmt: skip


async def test_analyze_visual_sends_the_image_and_returns_the_structured_answer(tmp_path, keys):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.png").write_bytes(png(4, 3))
    model = FunctionModel(lambda r, m: ModelResponse(text=json.dumps(ANSWER), usage=Usage(input_tokens=900)))
    async with Client(vision(ws, {"google:gemini-3.1-pro-preview": model}, tmp_path)) as client:
        result = await client.call_tool("analyze_visual", {"files": ["a.png"], "question": "What is top-right?"})
        bad = await client.call_tool("analyze_visual", {"files": ["a.png"], "question": "q", "pages": "x"})
    assert not result.is_error, result.content
    data = result.structured_content
    assert {k: data[k] for k in ANSWER} == ANSWER
    assert data["model"] == "google:gemini-3.1-pro-preview"
    [request] = model.requests
    assert request.messages[0].attachments[0].data == png(4, 3)
    assert request.schema_name == "visual_answer"
    assert bad.is_error and "pages: 'x' is not a page or range" in bad.content[0].text


async def ask_host(ws, tmp_path, monkeypatch, mode, arguments, reply="A grey square."):
    """analyze_visual with no provider key: the host's model answers `reply` through sampling (as a `Sample`
    resolver in `auto` mode, mid-call in `legacy`); the result and the sampling requests the host saw."""
    from cadre_core.models.sampling import SamplingModel

    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    seen = []

    async def sampling(ctx, params):
        seen.append(params)
        text = types.TextContent(type="text", text=reply)
        return types.CreateMessageResult(role="assistant", model="host-llm", stop_reason="endTurn", content=text)

    server = vision(ws, {"google:gemini-3.1-pro-preview": None, "sampling:host": SamplingModel()}, tmp_path)
    async with Client(server, mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool("analyze_visual", arguments)
    assert not result.is_error, result.content
    return result, seen


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_no_key_sends_the_image_to_the_host_model_through_sampling(tmp_path, monkeypatch, mode):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.png").write_bytes(png(4, 3))
    result, seen = await ask_host(ws, tmp_path, monkeypatch, mode, {"files": ["a.png"], "question": "What is it?"})
    assert result.structured_content["answer"] == "A grey square."
    assert result.structured_content["confidence"] == "low"
    [params] = seen
    image = params.messages[0].content[0]
    assert image.type == "image" and image.mime_type == "image/png"
    assert image.data == visuals.Attachment(png(4, 3), "image/png").base64
