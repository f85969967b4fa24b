"""How the oracle advertises itself to the app (entry point `cadre.servers`); imports no server code."""

from cadre_core.servers import ServerInfo

SERVER = ServerInfo(
    name="oracle",
    module="cadre_oracle.server",
    tool="consult_oracle",
    role="oracle",
    script="cadre-oracle",
    description="Second opinions and deep reasoning from another vendor's strongest model.",
    other_roles={"review": "review_change"},
)
