"""How the librarian advertises itself to the app (entry point `cadre.servers`); imports nothing,
so the server's own start pays nothing for it; cadre_core.servers reads it as a ServerInfo."""

SERVER = dict(
    name="librarian",
    module="cadre_librarian.server",
    tool="research",
    role="librarian",
    script="cadre-librarian",
    description="Researches libraries and docs across sources and answers with citations.",
)
