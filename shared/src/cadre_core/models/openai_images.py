"""OpenAI's Images API (`POST /v1/images/generations`) for GPT Image models: a prompt in, a PNG out.

Documented shapes (platform.openai.com/docs/api-reference/images/create and /docs/guides/image-generation):
the request takes `model`, `prompt`, `size`, `quality` and `output_format`; GPT Image models always answer
`data[].b64_json` (no URL) and `usage: {input_tokens, input_tokens_details, output_tokens, total_tokens}`,
the output tokens being the image's. Those are priced as output tokens by the catalog (`genai-prices`:
`gpt-image-1-mini` output $8 per million, its image output price).
"""

from __future__ import annotations

import base64
from typing import Any

from cadre_core.models.base import Attachment, ModelRequest, ModelResponse, ProviderModel, Usage
from cadre_core.models.status import bad_response, sdk_errors

QUALITY = "medium"
"""Enough for UI mock-ups and icons; a quarter of `high`'s tokens."""
OUTPUT_TOKENS = {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568}
"""Image tokens at medium quality by size (the image generation guide's "Cost and latency" table, the same
for GPT Image 1, 1 Mini and 1.5): what the budget reserves for the output."""


class OpenAIImageModel(ProviderModel):
    provider = "openai"
    key_env = "OPENAI_API_KEY"
    sdk_modules = ("openai",)
    supports_tools = False
    supports_output_schema = False

    def make_client(self, api_key: str) -> Any:
        import openai

        return openai.AsyncOpenAI(
            api_key=api_key, base_url=self.base_url, timeout=self.timeout_s, http_client=self.http_client, max_retries=0
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        import openai

        prompt = "\n\n".join(m.text for m in request.messages if m.role == "user")
        size = request.image_size or "1024x1024"
        with sdk_errors(openai, self):
            response = await self.client.images.generate(
                model=self.model_name, prompt=prompt, size=size, quality=QUALITY, output_format="png", n=1
            )
        data = response.data[0].b64_json if response.data else None
        if not data or response.usage is None:
            raise bad_response("malformed response: no image or usage", provider=self.provider, model=self.model_name)
        png = base64.b64decode(data)
        usage = Usage(input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens)
        return ModelResponse(
            text=f"a {size} PNG image, {len(png):,} bytes",  # what the answer detectors and the ledger see
            usage=usage,
            model=self.name,
            images=[Attachment(png, "image/png", "generated.png")],
        )
