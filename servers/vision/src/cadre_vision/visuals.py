"""Reading visual files: type by magic bytes, size by header, caps, page ranges and token estimates.

No imaging library here: the dimensions come from each format's header, which is small and fixed by its
spec, so the pixel cap is checked before anything is decoded. Images over a vendor's limits are downscaled
for that vendor when the request is built for it (`fitting`).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from cadre_core.errors import CadreError, clip
from cadre_core.files import is_secret_path, read_bytes, read_redacted
from cadre_core.models.base import Attachment
from cadre_core.workspace import Workspace
from cadre_vision.fitting import MAX_PIXELS, image_tokens

MAX_BYTES = 20_000_000
"""Largest file sent: Gemini's inline request limit (ai.google.dev/gemini-api/docs/image-understanding)."""
MAX_TEXT_BYTES = 1_000_000
"""SVG and diagram sources are sent as text, up to this size."""
PDF_PAGE_TOKENS = 3000
"""Per PDF page: Anthropic counts 1,500-3,000 tokens of text plus the page image (pdf-support page)."""
MAX_FILES = 20


@dataclass(frozen=True)
class Visual:
    """One file ready to send: an attachment (image or PDF) or text (SVG, diagram source)."""

    path: str
    kind: str
    attachment: Attachment | None = None
    text: str = ""
    size: tuple[int, int] | None = None
    pages: int | None = None


def sniff(head: bytes) -> str | None:
    """The media type by magic bytes, or None (not an image or PDF)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):  # PNG spec §5.2 signature
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):  # JPEG SOI marker, then the first segment's marker
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):  # GIF89a spec §17 header
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # RFC 9649 §2.5 RIFF header
        return "image/webp"
    if head.startswith(b"%PDF-"):  # ISO 32000 §7.5.2 file header
        return "application/pdf"
    return None


def dimensions(data: bytes, media_type: str) -> tuple[int, int]:
    """(width, height) from the header; raises `CadreError` for a truncated or malformed one."""
    try:
        size = _dimensions(data, media_type)
    except (struct.error, IndexError):
        size = None
    if not size or min(size) <= 0:
        raise CadreError(f"the {media_type} header is truncated or malformed; pass an intact image")
    return size


def _dimensions(data: bytes, media_type: str) -> tuple[int, int] | None:
    if media_type == "image/png":  # IHDR is the first chunk: width, height as 4-byte big-endian (PNG §11.2.2)
        if data[12:16] != b"IHDR":
            return None
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if media_type == "image/gif":  # logical screen width, height: 2-byte little-endian (GIF89a §18)
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if media_type == "image/webp":
        return _webp(data)
    if media_type == "image/jpeg":
        return _jpeg(data)
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    """RFC 9649: VP8X canvas (24-bit minus one, §2.7), VP8L (14 bits minus one, §3.2), VP8 frame (RFC 6386 §9.1)."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    """The first SOFn segment's height and width (ITU-T T.81 §B.2.2); segments before it are skipped
    by their 2-byte big-endian lengths (§B.1.1.4)."""
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(w), int(h)
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def parse_pages(spec: str) -> list[int]:
    """`"1-3,5"` as [1, 2, 3, 5]; raises `CadreError` naming the bad part."""
    pages: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        match = re.fullmatch(r"(\d{1,5})(?:\s*-\s*(\d{1,5}))?", part)
        first, last = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
        if not match or first < 1 or last < first:
            raise CadreError(f"pages: '{part}' is not a page or range; write pages like '1-3,5' (first page is 1)")
        pages += [p for p in range(first, last + 1) if p not in pages]
    if len(pages) > 1000:
        raise CadreError("pages: more than 1000 pages asked for; ask for a narrower range")
    return pages


def pdf_page_count(data: bytes) -> int:
    """Page objects in the file (`/Type /Page`, ISO 32000 §7.7.3.3); 0 when they sit in compressed streams."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


def _pages_by_size(size: int) -> int:
    """A conservative page count for a PDF whose pages sit in compressed object streams: one a 50 kB,
    at most the 100 pages Anthropic takes in one request (pdf-support page)."""
    return min(100, 1 + size // 50_000)


def load(ws: Workspace, path_text: str) -> Visual:
    """One file through the workspace and the core gate, typed by magic bytes and checked against the caps."""
    path = ws.resolve(path_text)
    rel = ws.relative(path)
    if is_secret_path(rel):
        raise CadreError(f"'{clip(rel)}' looks like a secret file; it is never sent")
    try:
        data = read_bytes(path, max_bytes=MAX_BYTES)
    except FileNotFoundError:
        raise CadreError(f"'{clip(rel)}' does not exist; pass the path of a file in the workspace") from None
    media_type = sniff(data[:16])
    if media_type is None:
        return _text_visual(path, rel, data)
    if media_type == "application/pdf":
        count = pdf_page_count(data)
        tokens = PDF_PAGE_TOKENS * (count or _pages_by_size(len(data)))
        attachment = Attachment(data, media_type, Path(rel).name, tokens)
        return Visual(rel, "pdf", attachment, pages=count or None)
    width, height = dimensions(data, media_type)
    if width * height > MAX_PIXELS:  # from the header: nothing is decoded
        raise CadreError(
            f"'{clip(rel)}' is {width}x{height} px, over the {MAX_PIXELS // 1_000_000} MP limit; "
            "pass a smaller image (larger ones within it are downscaled for each model)"
        )
    attachment = Attachment(data, media_type, Path(rel).name, image_tokens(width, height), size=(width, height))
    return Visual(rel, "image", attachment, size=(width, height))


def _text_visual(path: Path, rel: str, data: bytes) -> Visual:
    """SVG or a diagram source (Mermaid, DOT, PlantUML...), read as redacted text; any other binary is refused."""
    if len(data) > MAX_TEXT_BYTES and b"\x00" not in data[:8192]:
        raise CadreError(f"'{clip(rel)}' is text over {MAX_TEXT_BYTES // 1_000_000} MB; pass a smaller SVG or source")
    if b"\x00" in data[:8192]:
        raise CadreError(
            f"'{clip(rel)}' is not a PNG, JPEG, WebP, GIF, PDF, SVG or diagram source "
            "(checked by its bytes, not its name)"
        )
    text = read_redacted(path, max_bytes=MAX_TEXT_BYTES)
    kind = "svg" if "<svg" in text[:4096] else "text"
    return Visual(rel, kind, text=text)
