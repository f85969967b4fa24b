"""How the librarian advertises itself to the app (entry point `cadre.servers`); imports no server code."""

from cadre_core.servers import ServerInfo

SERVER = ServerInfo(
    name="librarian",
    module="cadre_librarian.server",
    tool="research",
    role="librarian",
    script="cadre-librarian",
    description="Researches libraries and docs across sources and answers with citations.",
)
