"""How search advertises itself to the app (entry point `cadre.servers`); imports nothing,
so the server's own start pays nothing for it; cadre_core.servers reads it as a ServerInfo."""

SERVER = dict(
    name="search",
    module="cadre_search.server",
    tool="search_codebase",
    role="search",
    script="cadre-search",
    description="Ranked codebase search, offline, in one call; deep mode adds a fast model.",
)
