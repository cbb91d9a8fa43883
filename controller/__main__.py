"""`python -m controller`: run the Workspace controller against the current cluster and Docker daemon."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
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
        default=os.environ.get("WC_LIVENESS", "http://127.0.0.1:8081/healthz"),
        help="kopf's liveness endpoint (env WC_LIVENESS)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("WC_METRICS_PORT", "8080")),
        help="port of the Prometheus /metrics endpoint; 0 disables it (env WC_METRICS_PORT)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("WC_LOG_FORMAT", "text"),
        help="log line format (env WC_LOG_FORMAT)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("WC_LOG_LEVEL", "INFO"),
        help="log level (env WC_LOG_LEVEL)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from controller.logs import configure_logging
    from controller.operator import run

    configure_logging(args.log_format, args.log_level)
    logging.getLogger(__name__).info(
        "workspace-controller starting (namespaces: %s)", ", ".join(args.namespace) or "all"
    )
    return run(
        namespaces=tuple(args.namespace),
        liveness=args.liveness or None,
        metrics_port=args.metrics_port,
    )


if __name__ == "__main__":
    raise SystemExit(main())
