"""How vision advertises itself to the app (entry point `cadre.servers`); imports nothing,
so the server's own start pays nothing for it; cadre_core.servers reads it as a ServerInfo."""

SERVER = dict(
    name="vision",
    module="cadre_vision.server",
    tool="analyze_visual",
    role="vision",
    script="cadre-vision",
    description="Screenshots, PDFs and diagrams read by the strongest multimodal model.",
)
