"""Command line: ``central-server`` (serve), ``central-server migrate|downgrade|revision``."""

from __future__ import annotations

import argparse
import sys

from central import __version__


#: s an idle HTTP/1.1 connection is kept open (uvicorn's default is 5 s). Longer than the 5 s after which
#: httpx, the cameras' client, stops reusing an idle connection: with equal timeouts a camera could send
#: a request on a connection the server is closing at that moment and get a transport error
#: (``ReadError``) instead of an answer; the fleet benchmark saw 2-3 per run.
KEEP_ALIVE_S = 20


def _settings():  # noqa: ANN202 - CentralSettings, imported lazily
    from central.config import ConfigError, configure_logging, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    return settings


def _serve(workers: int | None = None) -> int:
    """Serve; with several workers (``--workers`` / ``CENTRAL_WORKERS``) uvicorn forks them after this
    process migrated the database and printed the bootstrap password once."""
    import logging

    import uvicorn

    from central.app import create_app, prepare_database

    settings = _settings()
    workers = workers or settings.workers
    options = dict(host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                   access_log=settings.log_level == "DEBUG", timeout_graceful_shutdown=5,
                   timeout_keep_alive=KEEP_ALIVE_S,
                   log_config=None,  # uvicorn's lines use the server's format (configure_logging)
                   **settings.uvicorn_proxy_options())
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    if settings.resolved_database_url().startswith("sqlite"):
        logging.getLogger("central").warning(
            "%d workers on SQLite: SQLite is meant for one server process. The workers share the file but "
            "each writes in turn, and a pairing made through one worker reaches a camera waiting on another "
            "only at its next database check (up to 10 s); use PostgreSQL (DATABASE_URL) for several "
            "processes (docs/central.md#several-processes)", workers)
    prepare_database(settings)
    uvicorn.run("central.app:worker_app", factory=True, workers=workers, **options)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``central-server``; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="central-server", description="Pi Camera Service central server")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (default); migrates the database first")
    for p, default in ((parser, None), (serve, argparse.SUPPRESS)):
        p.add_argument("--workers", type=int, default=default, metavar="N",
                       help="uvicorn worker processes (default CENTRAL_WORKERS, 1); several need PostgreSQL")
    up = sub.add_parser("migrate", help="migrate the database (default: to the newest schema)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate the database down to REVISION ('base' drops every table)")
    down.add_argument("revision")
    sub.add_parser("revision", help="print the database's schema revision and the newest one")
    args = parser.parse_args(argv)

    if args.command in (None, "serve"):
        if args.workers is not None and not 1 <= args.workers <= 64:
            parser.error(f"--workers must be 1..64, not {args.workers}")
        return _serve(args.workers)
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
