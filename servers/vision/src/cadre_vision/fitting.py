"""Attachments fitted to one vendor's input limits when the request is built for it (`ModelRequest.adapt`).

Each vendor gets its own caps, not the strictest for all: an image is downscaled (aspect kept) to what that
vendor would scale it to anyway, re-encoded when it is still over the vendor's byte cap, and its token
count is that vendor's formula on the size sent. For the MCP host (sampling), whose model is unknown and
which takes no PDF, the strictest caps apply and PDF pages are rendered to images.

Pillow and pypdfium2 are imported only when something must be decoded, so the server's start pays nothing.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cadre_core.errors import CadreError, InputLimitError, clip
from cadre_core.models.base import Attachment, Message, ModelRequest

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MAX_PIXELS = 40_000_000
"""Pixel count cap, checked from the header before any decoding (a decompression bomb guard)."""


def anthropic_tokens(width: int, height: int) -> int:
    """width * height / 750 (docs.claude.com/en/docs/build-with-claude/vision, "Calculate image costs")."""
    return math.ceil(width * height / 750)


def openai_tokens(width: int, height: int) -> int:
    """85 + 170 per 512 px tile of the image as fitted for high detail (platform.openai.com/docs/guides/
    images-vision, "Calculating costs")."""
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def gemini_tokens(width: int, height: int) -> int:
    """258 when both sides are at most 384 px, else 258 per 768x768 tile (ai.google.dev/gemini-api/docs/tokens,
    "Multimodal tokens")."""
    if max(width, height) <= 384:
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def most_tokens(width: int, height: int) -> int:
    return max(anthropic_tokens(width, height), openai_tokens(width, height), gemini_tokens(width, height))


@dataclass(frozen=True)
class Limits:
    """What one vendor takes: the size it would downscale to, bytes per image and per request."""

    long_edge: int
    max_bytes: int
    """Per image, raw bytes."""
    request_bytes: int
    """All attachments of one request, base64-encoded (as they travel in the JSON body)."""
    tokens: Callable[[int, int], int]
    max_pixels: int | None = None
    short_edge: int | None = None

    def fit(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) scaled down, aspect kept, to within the long edge, pixel count and short edge."""
        scale = min(1.0, self.long_edge / max(width, height))
        if self.max_pixels:
            scale = min(scale, math.sqrt(self.max_pixels / (width * height)))
        if self.short_edge and min(width, height) * scale > self.short_edge:
            scale = self.short_edge / min(width, height)
        return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


VENDOR_LIMITS = {
    # docs.claude.com/en/docs/build-with-claude/vision: images are scaled down above a 1568 px long edge or
    # ~1,600 tokens; "resize to no more than 1.15 megapixels (and within 1568 pixels in both dimensions)";
    # a request is at most 32 MB. The API refuses an image whose base64 is over 5 MB ("image exceeds 5 MB
    # maximum: ... bytes > 5242880 bytes"): 5 MiB * 3/4 raw.
    "anthropic": Limits(1568, 5 * 1024 * 1024 * 3 // 4, 32_000_000, anthropic_tokens, max_pixels=1_150_000),
    # platform.openai.com/docs/guides/images-vision: high detail fits 2048x2048, then the short side to 768 px;
    # up to 20 MB per image and 50 MB of image bytes per request.
    "openai": Limits(2048, 20_000_000, 50_000_000, openai_tokens, short_edge=768),
    # ai.google.dev/gemini-api/docs/image-understanding: inline data while the whole request is under 20 MB;
    # Vertex AI lists 7 MB per inline file. No pixel limit is documented: Cadre fits 3072 px (4 tiles of 768)
    # so a poster-sized image costs at most 16 tiles.
    "google": Limits(3072, 7_000_000, 20_000_000, gemini_tokens),
}
STRICTEST = Limits(1568, VENDOR_LIMITS["anthropic"].max_bytes, 20_000_000, most_tokens, max_pixels=1_150_000)
"""For a provider whose model is unknown (the MCP host, an OpenAI-compatible server): every vendor's caps."""
HOST_PDF_PAGES = 20
"""At most this many PDF pages are rendered for the host when no pages are asked for."""


def limits_for(provider: str) -> Limits:
    return VENDOR_LIMITS.get(provider, STRICTEST)


def image_tokens(width: int, height: int) -> int:
    """The most any vendor counts for the image as it would be sent to that vendor."""
    return max(limits.tokens(*limits.fit(width, height)) for limits in VENDOR_LIMITS.values())


def adapter(pages: list[int] | None) -> Callable[[ModelRequest, str], ModelRequest]:
    """`ModelRequest.adapt` for a vision request: images with a known `size` fitted to the provider; for the
    host, PDFs rendered to images of the selected `pages` (None: the first ones)."""

    def adapt(request: ModelRequest, provider: str) -> ModelRequest:
        limits = limits_for(provider)
        pdf_as_images = provider == "sampling"  # MCP sampling content is text, image or audio: no documents
        messages = [_fit_message(m, limits, pages, pdf_as_images) for m in request.messages]
        sent = sum(4 * math.ceil(len(a.data) / 3) for m in messages for a in m.attachments)
        if sent > limits.request_bytes:
            raise InputLimitError(
                f"the files are {sent / 1e6:.1f} MB as sent, over {provider}'s {limits.request_bytes // 10**6} MB "
                "request limit; pass fewer files or pages"
            )
        return dataclasses.replace(request, messages=messages)

    return adapt


def _fit_message(message: Message, limits: Limits, pages: list[int] | None, pdf_as_images: bool) -> Message:
    if not message.attachments:
        return message
    attachments: list[Attachment] = []
    notes: list[str] = []
    for a in message.attachments:
        if a.media_type == "application/pdf" and pdf_as_images:
            rendered, note = render_pdf(a, pages, limits)
            attachments += rendered
            notes.append(note)
        elif a.is_image and a.size:
            attachments.append(fit_image(a, limits))
        else:
            attachments.append(a)
    text = "\n\n".join([message.text, *notes]) if notes else message.text
    return dataclasses.replace(message, text=text, attachments=attachments)


def fit_image(image: Attachment, limits: Limits) -> Attachment:
    """`image` (its `size` known) as the vendor takes it: unchanged when it fits, else downscaled and
    re-encoded (PNG, or JPEG for a JPEG or when PNG is still too large), shrinking until under the byte cap."""
    size = image.size
    assert size is not None
    target = limits.fit(*size)
    if target == size and len(image.data) <= limits.max_bytes:
        return dataclasses.replace(image, tokens=limits.tokens(*size))
    data, media_type, sent = _resized(image, target, limits.max_bytes)
    return Attachment(data, media_type, image.name, limits.tokens(*sent), size=sent)


def _resized(image: Attachment, target: tuple[int, int], max_bytes: int) -> tuple[bytes, str, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:  # the decoder's own header, before decoding
                raise CadreError(f"'{clip(image.name)}' is {opened.width}x{opened.height} px, over the "
                                 f"{MAX_PIXELS // 10**6} MP limit; pass a smaller image")  # fmt: skip
            if opened.format == "JPEG":
                opened.draft("RGB", target)  # decode at a reduced scale: less memory and time
            has_alpha = "A" in opened.getbands() or "transparency" in opened.info
            picture = opened.convert("RGBA" if has_alpha else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CadreError(
            f"'{clip(image.name)}' could not be decoded as {image.media_type} ({type(exc).__name__}); "
            "pass an intact image"
        ) from None
    as_jpeg = image.media_type == "image/jpeg"
    width, height = target
    for _ in range(8):
        data = _encode(picture.resize((width, height), Image.Resampling.LANCZOS), as_jpeg)
        if len(data) <= max_bytes:
            return data, "image/jpeg" if as_jpeg else "image/png", (width, height)
        if not as_jpeg:
            as_jpeg = True  # a photo saved as PNG: JPEG is far smaller at the same size
        else:
            width, height = max(1, width * 3 // 4), max(1, height * 3 // 4)
    raise CadreError(f"'{clip(image.name)}' stays over {max_bytes // 10**6} MB when downscaled; pass a smaller image")


def _encode(picture: PILImage, as_jpeg: bool) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    if as_jpeg:
        if picture.mode == "RGBA":  # JPEG has no alpha: flatten on white
            flat = Image.new("RGB", picture.size, "white")
            flat.paste(picture, mask=picture.getchannel("A"))
            picture = flat
        picture.save(out, "JPEG", quality=88)
    else:
        picture.save(out, "PNG")
    return out.getvalue()


def render_pdf(pdf: Attachment, pages: list[int] | None, limits: Limits) -> tuple[list[Attachment], str]:
    """The selected pages (1-based; None: the first `HOST_PDF_PAGES`) rendered to PNG within `limits`, and a
    note naming them. pypdfium2 (PDFium) renders offline from a wheel with no system dependencies."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(pdf.data)
    except pdfium.PdfiumError as exc:
        raise CadreError(f"'{clip(pdf.name)}' could not be opened as a PDF ({exc}); pass an intact, "
                         "unencrypted PDF") from None  # fmt: skip
    try:
        count = len(document)
        wanted = [p for p in pages if p <= count] if pages else list(range(1, min(count, HOST_PDF_PAGES) + 1))
        images = [_render_page(document[p - 1], pdf.name, p, limits) for p in wanted]
    finally:
        document.close()
    shown = ", ".join(map(str, wanted)) or "none"
    more = "" if pages or count <= HOST_PDF_PAGES else f"; ask with pages for the other {count - HOST_PDF_PAGES}"
    note = f"[{pdf.name} is sent as page images, in order: pages {shown} of {count}{more}]"
    return images, note


def _render_page(page: Any, name: str, number: int, limits: Limits) -> Attachment:
    """One `pypdfium2.PdfPage` (a package without type information) as PNG, JPEG when PNG is too large."""
    width_pt, height_pt = page.get_size()  # PDF points, 1/72 inch
    width, height = limits.fit(math.ceil(width_pt * 4), math.ceil(height_pt * 4))  # at most 288 dpi
    scale = min(width / width_pt, height / height_pt)
    picture = page.render(scale=scale).to_pil()
    data = _encode(picture.convert("RGB"), as_jpeg=False)
    if len(data) > limits.max_bytes:
        data = _encode(picture.convert("RGB"), as_jpeg=True)
    media_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Attachment(data, media_type, f"{name} page {number}", limits.tokens(*picture.size), size=picture.size)
