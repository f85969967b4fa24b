"""How search advertises itself to the app (entry point `cadre.servers`); imports no server code."""

from cadre_core.servers import ServerInfo

SERVER = ServerInfo(
    name="search",
    module="cadre_search.server",
    tool="search_codebase",
    role="search",
    script="cadre-search",
    description="Ranked codebase search, offline, in one call; deep mode adds a fast model.",
)
