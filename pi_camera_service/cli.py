"""Command line: ``pi-camera-service`` runs the service; ``pi-camera-service hash-password`` prints an argon2 hash."""

from __future__ import annotations

import argparse
import getpass
import sys

from pi_camera_service import __version__


def _hash_password(password: str | None) -> int:
    from pi_camera_service.auth import hash_password

    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Repeat password: ") != password:
                print("error: the passwords do not match", file=sys.stderr)
                return 2
    if not password:
        print("error: the password must not be empty", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _serve() -> int:
    from pi_camera_service.config import ConfigError, configure_logging, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    import uvicorn

    from pi_camera_service.api.app import create_app
    from pi_camera_service.sources.base import SourceOpenError

    try:
        app = create_app(settings)
    except (ConfigError, SourceOpenError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        timeout_graceful_shutdown=5,
        log_config=None,  # uvicorn's lines use the service's format (configure_logging)
        **settings.uvicorn_proxy_options(),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pi-camera-service`` console script; returns the exit status (2 = bad input)."""
    parser = argparse.ArgumentParser(
        prog="pi-camera-service",
        description="Raspberry Pi camera service. With no command, runs the service "
        "(configured by CAMERA_* environment variables or .env).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    hp = sub.add_parser("hash-password", help="print an argon2 hash for CAMERA_PASSWORD_HASH")
    hp.add_argument("--password", help="the password (prompted for when absent; read from stdin when not a terminal)")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        return _hash_password(args.password)
    return _serve()


if __name__ == "__main__":
    sys.exit(main())
