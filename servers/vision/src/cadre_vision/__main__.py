"""`cadre-vision` / `python -m cadre_vision`: serve over stdio."""

from __future__ import annotations

from cadre_core.serve import serve_main
from cadre_vision.server import NAME, create_server


def main(argv: list[str] | None = None) -> None:
    serve_main(NAME, create_server, argv)


if __name__ == "__main__":
    main()
