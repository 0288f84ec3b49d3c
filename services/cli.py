"""The `conveyor` command: one subcommand per service, `dev` for the whole platform on one
machine, and `schema` for the message contract. Services are imported only when chosen."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError
from shared.logging import configure_logging
from shared.settings import Settings, load_settings, unknown_variables

SERVICES = ("gateway", "scheduler", "worker", "logger")
CLIENT_COMMANDS = ("submit", "status", "logs", "jobs")
DEV_DATA_DIR = Path(".conveyor/dev")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conveyor", description="Conveyor: a self-hosted job platform."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SERVICES:
        sub = commands.add_parser(name, help=f"run the {name} service")
        sub.add_argument("--env-file", type=Path, metavar="PATH",
                         help="read CONVEYOR_* settings from this file (the environment wins)")
        sub.add_argument("--port", type=port_number,
                         help=f"HTTP port (default: CONVEYOR_{name.upper()}_PORT)")
        if name == "worker":
            sub.add_argument("--region", help="region to serve (default: CONVEYOR_DEFAULT_REGION)")
            sub.add_argument("--concurrency", type=positive_int,
                             help="tasks run at once (default: CONVEYOR_WORKER_CONCURRENCY)")

    dev = commands.add_parser("dev", help="run the whole platform on this machine")
    dev.add_argument("--env-file", type=Path, metavar="PATH")
    dev.add_argument("--port", type=port_number, default=8080,
                     help="the one port serving every HTTP endpoint (default 8080)")
    dev.add_argument("--data-dir", type=Path, metavar="D",
                     help="state of the local servers and conveyor.env (default .conveyor/dev; "
                          "with --ephemeral a temporary directory)")
    dev.add_argument("--workers", type=non_negative_int, default=1,
                     help="worker processes per region (default 1; 0: external workers only)")
    dev.add_argument("--ephemeral", action="store_true",
                     help="on stop, remove this instance's queues, exchanges and data directory")
    dev.add_argument("--regions", help="comma-separated regions (default: CONVEYOR_REGIONS)")
    dev.add_argument("--no-demo", action="store_true", help="do not load the demo sample")

    publish = commands.add_parser(
        "publish", help="publish a job straight onto RabbitMQ, as an internal producer does"
    )
    publish.add_argument("job_file", type=Path, metavar="JOB.json")
    publish.add_argument("--organization-id", required=True, help="organization of the job")
    publish.add_argument("--user-id", help="user recorded as the job's submitter")
    publish.add_argument("--env-file", type=Path, metavar="PATH")

    admin = commands.add_parser("admin", help="organizations, users and API keys")
    admin.add_argument("--env-file", type=Path, metavar="PATH")
    from services.admin import add_admin_commands

    add_admin_commands(admin)

    from services.client import add_client_commands

    add_client_commands(commands)

    commands.add_parser("schema", help="print the JSON Schema of every message")
    return parser


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(args.env_file, **{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    if args.command == "schema":
        from shared.messages import dump_schema

        sys.stdout.write(dump_schema())
        return 0
    if args.command in CLIENT_COMMANDS:
        from services.client import main as client_main

        return client_main(args, dict(os.environ))
    if args.command == "admin":
        from services.admin import main as admin_main

        settings = settings_from(args)
        configure_logging(settings.log_level, settings.log_format)
        return admin_main(settings, args)
    if args.command == "publish":
        from services.producer import main as publish_main

        settings = settings_from(args)
        configure_logging(settings.log_level, settings.log_format)
        return publish_main(settings, args.job_file, args.organization_id, args.user_id)
    if args.command == "dev":
        from services.dev.main import main as dev_main

        settings = dev_settings(args)
        configure_logging(settings.log_level, settings.log_format)
        data_dir = args.data_dir or (None if args.ephemeral else DEV_DATA_DIR)
        return dev_main(settings, port=args.port, data_dir=data_dir, workers=args.workers,
                        demo=not args.no_demo, ephemeral=args.ephemeral)

    port_field = f"{args.command}_port"
    overrides: dict[str, Any] = {port_field: args.port}
    if args.command == "worker":
        overrides["worker_concurrency"] = args.concurrency
    settings = settings_from(args, **overrides)
    configure_logging(settings.log_level, settings.log_format)
    _warn_unknown_variables()
    if args.command == "gateway":
        from services.gateway.main import main as service_main
    elif args.command == "scheduler":
        from services.scheduler.main import main as service_main
    elif args.command == "logger":
        from services.logger.main import main as service_main
    else:
        from services.worker.main import main as worker_main

        return worker_main(settings, region=args.region)
    return service_main(settings)


def dev_settings(args: argparse.Namespace) -> Settings:
    """`--regions` replaces CONVEYOR_REGIONS; the default region stays when it is still one
    of them, else becomes the first."""
    if not args.regions:
        return settings_from(args)
    regions = [part.strip() for part in args.regions.split(",") if part.strip()]
    try:
        default = settings_from(args).default_region
    except ConfigError:
        default = ""
    return settings_from(
        args, regions=regions, default_region=default if default in regions else
        (regions[0] if regions else None),
    )


def _warn_unknown_variables() -> None:
    import structlog

    for name in unknown_variables():
        structlog.get_logger(__name__).warning("unknown setting ignored", variable=name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"conveyor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
