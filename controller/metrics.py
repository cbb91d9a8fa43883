"""Prometheus metrics, named as controller-runtime names them so existing dashboards and alerts work."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONTROLLER = "workspace"

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller and result.",
    ["controller", "result"],
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller.",
    ["controller"],
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller.",
    ["controller"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DOCKER_MAX_CONCURRENT_CALLS = Gauge(
    "workspace_controller_docker_max_concurrent_calls",
    "Docker Engine API calls this controller makes at once at most (WC_DOCKER_CONCURRENCY).",
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers",
    "Number of reconciles currently running per controller.",
    ["controller"],
)
WORKSPACES = Gauge(
    "workspace_controller_workspaces",
    "Workspaces this controller runs a reconcile loop for.",
)
WORKSPACE_READY = Gauge(
    "workspace_controller_workspace_ready",
    "1 when the Workspace's Ready condition is True, else 0.",
    ["namespace", "name"],
)
WORKSPACE_STALLED = Gauge(
    "workspace_controller_workspace_stalled",
    "1 while the Workspace's Stalled condition is True (its reason is in the status), else 0.",
    ["namespace", "name"],
)
WORKSPACE_POLICY_DENIED = Gauge(
    "workspace_controller_workspace_policy_denied",
    "1 while the Workspace asks for more than its namespace is granted (Stalled/PolicyDenied), else 0.",
    ["namespace", "name"],
)
WORKSPACE_INFO = Gauge(
    "workspace_controller_workspace_info",
    "1 for each Workspace, labelled with its phase, tier, runtime and DockerHost ('' until known).",
    ["namespace", "name", "phase", "tier", "runtime", "host"],
)
WORKSPACE_CONDITION = Gauge(
    "workspace_controller_workspace_condition",
    "1 for each condition of each Workspace, labelled with the condition's type, status and reason.",
    ["namespace", "name", "type", "status", "reason"],
)
DOCKER_CALLS = Counter(
    "workspace_controller_docker_calls_total",
    "Docker Engine API calls by operation and outcome.",
    ["operation", "outcome"],
)
DOCKER_CALL_TIME = Histogram(
    "workspace_controller_docker_call_seconds",
    "Docker Engine API call latency by operation: the call itself, from when a worker began it (the wait "
    "for a free slot is workspace_controller_docker_call_wait_seconds).",
    ["operation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
DOCKER_SLOT_WAIT = Histogram(
    "workspace_controller_docker_call_wait_seconds",
    "How long Docker Engine API calls waited for one of the WC_DOCKER_CONCURRENCY slots, by operation. "
    "Long waits with short calls mean the concurrency, not the daemon, is the limit.",
    ["operation"],
    buckets=(0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
DOCKER_EVENTS = Counter(
    "workspace_controller_docker_events_total",
    "Docker events received for this controller's containers, by action.",
    ["action"],
)
CONTAINER_INSPECTS = Counter(
    "workspace_controller_container_inspects_total",
    "Inspects of a Workspace's container, by why the last list could not answer: asked (a Docker event "
    "named it, or a search for a container that may not be this controller's), no_list (the last list "
    "failed), changed (this controller changed it since the list), differs (the list shows another id, "
    "state, health or configuration than the last inspect), unknown (never inspected, and the status "
    "does not vouch for the listed run).",
    ["reason"],
)
KUBE_REQUESTS = Counter(
    "rest_client_requests_total",
    "Requests this controller made to the Kubernetes API itself (status, finalizer, events, secrets, "
    "policies), by HTTP method and status code ('<error>' when no answer came); kopf's watches are not "
    "counted. Writes that keep growing while nothing changes mean a hot loop.",
    ["code", "method"],
)
IMAGE_GC_REMOVED = Counter(
    "workspace_controller_image_gc_removed_total",
    "Workspace images the image GC removed (unused for WC_IMAGE_GC_AFTER seconds), by DockerHost.",
    ["host"],
)
IMAGE_GC_PASSES = Counter(
    "workspace_controller_image_gc_passes_total",
    "Image GC passes by DockerHost and outcome (completed|skipped: the daemon did not answer).",
    ["host", "outcome"],
)
SWEEP_REMOVED = Counter(
    "workspace_controller_sweep_removed_total",
    "Orphaned Docker objects removed by the sweep, by kind (container|volume).",
    ["kind"],
)
SWEEP_SKIPPED = Counter(
    "workspace_controller_sweep_skipped_total",
    "Orphan candidates the sweep left alone, by reason.",
    ["reason"],
)
SWEEP_ORPHANS = Gauge(
    "workspace_controller_sweep_orphans",
    "Orphans the last sweep pass that could see everything found, by kind (container|volume): removed, "
    "or in dry-run mode only reported.",
    ["kind"],
)
SWEEP_PASSES = Counter(
    "workspace_controller_sweep_passes_total",
    "Orphan sweep passes by outcome (completed|skipped|dry_run).",
    ["outcome"],
)

for _result in ("success", "error", "requeue_after"):
    RECONCILE_TOTAL.labels(CONTROLLER, _result)
RECONCILE_ERRORS.labels(CONTROLLER)
for _reason in ("asked", "no_list", "changed", "differs", "unknown"):
    CONTAINER_INSPECTS.labels(_reason)
for _action in ("connected", "disconnected", "reconnected"):  # the event stream's own, 0 until it happens
    DOCKER_EVENTS.labels(_action)
# At 0 from the start, so that rate() and increase() count the first sweep and its first removal.
for _outcome in ("completed", "skipped", "dry_run"):
    SWEEP_PASSES.labels(_outcome)
for _kind in ("container", "volume"):
    SWEEP_REMOVED.labels(_kind)
LEADER = Gauge(
    "leader_election_master_status",
    "1 while this replica holds the leader-election Lease `name` (and acts), else 0.",
    ["name"],
)
DOCKER_HOSTS_READY = Gauge(
    "workspace_controller_docker_host_ready",
    "1 when the DockerHost answers and its capacity is known, else 0.",
    ["host"],
)
REFERENCED_OBJECT_READS = Counter(
    "workspace_controller_referenced_object_reads_total",
    "Reads of the Secrets and ConfigMaps Workspaces reference, by kind and where they were answered "
    "(cache: kept by the watch; api: a GET, for a first reference or an entry past its age).",
    ["kind", "source"],
)
REFERENCED_OBJECTS = Gauge(
    "workspace_controller_referenced_objects",
    "Secrets and ConfigMaps kept because a Workspace references them (absent ones included).",
)

POOL_SLOTS = Gauge(
    "workspace_controller_pool_slots",
    "Warm slots of a WorkspacePool not bound to a Workspace, by state (ready, starting).",
    ["namespace", "pool", "state"],
)
POOL_CLAIMS = Counter(
    "workspace_controller_pool_claims_total",
    "Workspaces of a pooled template by how they were served: bound to a warm slot, or made cold "
    "(no ready slot whose container is theirs).",
    ["namespace", "template", "result"],
)
