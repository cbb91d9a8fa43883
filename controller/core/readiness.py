"""The readiness check a Workspace defines, as the Docker health check the runtime runs.

It runs inside the container (so it works wherever the controller is), as the exec form of
``/bin/sh -c SCRIPT readiness URL TIMEOUT``: the URL and the timeout are positional arguments, never
parsed by a shell. The script uses whichever HTTP client the image has: curl, then busybox or GNU wget,
then python3; an image with none of them fails the check and says so in Docker's health log. wget gets
no timeout of its own (busybox 1.35's `wget -T` crashes): Docker's timeout stops it.
"""

from __future__ import annotations

from controller.api.workspace import ReadinessCheck
from controller.port.values import HealthCheck

PROBE_SCRIPT = (
    "u=$1 t=$2; "
    'if command -v curl >/dev/null 2>&1; then exec curl -fsS -o /dev/null -m "$t" "$u"; fi; '
    'if command -v wget >/dev/null 2>&1; then exec wget -q -O /dev/null "$u"; fi; '
    "if command -v python3 >/dev/null 2>&1; then exec python3 -c "
    '"import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))" '
    '"$u" "$t"; fi; '
    'echo "readiness check: the image has none of curl, wget, python3" >&2; exit 1'
)


def probe_url(check: ReadinessCheck) -> str:
    return f"http://127.0.0.1:{check.http_get.port}{check.http_get.path}"


def health_check(check: ReadinessCheck | None) -> HealthCheck | None:
    """Docker's health check for `check`; None (the image's own HEALTHCHECK) when the spec sets none."""
    if check is None:
        return None
    return HealthCheck(
        test=("/bin/sh", "-c", PROBE_SCRIPT, "readiness", probe_url(check), str(check.timeout_seconds)),
        interval_seconds=check.period_seconds,
        # A second more than the client's own limit: its error, not Docker's kill, is what the log shows.
        timeout_seconds=check.timeout_seconds + 1,
        retries=check.failure_threshold,
        start_period_seconds=check.initial_delay_seconds,
    )


def describe(check: ReadinessCheck) -> str:
    """How status messages name the check, e.g. `GET http://127.0.0.1:8000/ready`."""
    return f"GET {probe_url(check)}"
