"""`cadre-search` / `python -m cadre_search`: serve over stdio."""

from __future__ import annotations

import argparse

from cadre_core.serve import serve_main
from cadre_search.server import NAME, create_server


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watch", action="store_true", help="re-index in the background as files change")


def main(argv: list[str] | None = None) -> None:
    serve_main(NAME, create_server, argv, options=_options)


if __name__ == "__main__":
    main()
