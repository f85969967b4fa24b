"""How the oracle advertises itself to the app (entry point `cadre.servers`); imports nothing,
so the server's own start pays nothing for it; cadre_core.servers reads it as a ServerInfo."""

SERVER = dict(
    name="oracle",
    module="cadre_oracle.server",
    tool="consult_oracle",
    role="oracle",
    script="cadre-oracle",
    description="Second opinions and deep reasoning from another vendor's strongest model.",
    other_roles={"review": "review_change"},
)
