"""`python -m controller`: run the Workspace controller against the current cluster and Docker daemon."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from controller.settings import ControllerSettings


def parse_args(argv: Sequence[str], defaults: ControllerSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m controller",
        description="Reconcile molecule.ai/v1alpha1 Workspaces into Docker containers.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; glob patterns allowed); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        default=defaults.liveness,
        help="kopf's liveness endpoint; empty disables it (env WC_LIVENESS)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        help="port of the Prometheus /metrics endpoint; 0 disables it (env WC_METRICS_PORT)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=defaults.log_format,
        help="log line format (env WC_LOG_FORMAT)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        default=defaults.log_level,
        help="log level (env WC_LOG_LEVEL)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from_env = ControllerSettings.from_env(os.environ)
    args = parse_args(sys.argv[1:] if argv is None else argv, from_env)
    settings = from_env.model_copy(
        update={
            "liveness": args.liveness,
            "metrics_port": args.metrics_port,
            "log_format": args.log_format,
            "log_level": args.log_level,
        }
    )
    from controller.logs import configure_logging
    from controller.operator import run

    configure_logging(settings.log_format, settings.log_level)
    logging.getLogger(__name__).info(
        "workspace-controller starting (namespaces: %s)", ", ".join(args.namespace) or "all"
    )
    return run(settings, namespaces=tuple(args.namespace))


if __name__ == "__main__":
    raise SystemExit(main())
