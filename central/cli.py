"""Command line: ``central-server`` (serve), ``central-server migrate|downgrade|revision``."""

from __future__ import annotations

import argparse
import sys

from central import __version__


def _settings():  # noqa: ANN202 - CentralSettings, imported lazily
    from central.config import ConfigError, configure_logging, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    return settings


def _serve() -> int:
    import uvicorn

    from central.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=settings.log_level == "DEBUG", timeout_graceful_shutdown=5,
                log_config=None,  # uvicorn's lines use the server's format (configure_logging)
                **settings.uvicorn_proxy_options())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``central-server``; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="central-server", description="Pi Camera Service central server")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the server (default); migrates the database first")
    up = sub.add_parser("migrate", help="migrate the database (default: to the newest schema)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate the database down to REVISION ('base' drops every table)")
    down.add_argument("revision")
    sub.add_parser("revision", help="print the database's schema revision and the newest one")
    args = parser.parse_args(argv)

    if args.command in (None, "serve"):
        return _serve()
    from central import db

    url = _settings().resolved_database_url()
    if args.command == "migrate":
        db.upgrade(url, args.revision)
    elif args.command == "downgrade":
        db.downgrade(url, args.revision)
    engine = db.make_engine(url)
    print(f"database revision: {db.current_revision(engine) or 'none'} (newest: {db.head_revision()})")
    engine.dispose()
    return 0
