"""Hostile Workspaces, generated: hypothesis writes Workspaces a careless or malicious tenant could, and each
goes through the real kube-apiserver (kubectl apply) to a running controller and the real Docker Engine.

What is generated: odd Unicode in every free-text field (NUL, control characters, right-to-left marks,
astral planes), every path trick in config file names and host paths (`..`, `.`, absolute paths, `//`,
the controller's own token file, the Docker socket, the host's root, trailing slashes), lists past their
bounds, texts at and past the inline budget, unknown runtimes and images from anywhere, pull policies and
tiers out of range, references to Secrets, keys and ConfigMaps that do not exist (optional or not), and
fields the schema does not know.

What must hold: each one is either refused by `kubectl apply` with the apiserver's message, or accepted and
then reported (Ready, Stalled with a reason, or Synced=False with a reason) for its generation. Meanwhile the
controller does not crash, does not loop hot (its own Kubernetes writes and Docker creates stay flat over
five resyncs once everything is reported), never removes what it does not own (a look-alike container of
another instance claiming one of the Workspaces, an unlabelled volume named like a workspace volume),
never shows a Secret's value in its logs or in any status or event, and valid Workspaces created before,
among and after the hostile ones become and stay Ready.
Long-running: marked `long`.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.workspace import (
    API_VERSION,
    FORBIDDEN_HOST_PATH_ROOTS,
    INLINE_TEXT_BUDGET,
    MAX_CONFIG_FILES,
    MAX_ENV,
    RESERVED_ENV_NAMES,
    TOKEN_MAX_LENGTH,
)
from tests.support.kubectl import KubectlError
from tests.support.metrics import ControllerMetrics, docker_calls
from tests.support.polling import wait_until
from tests.support.stack import Registry
from tests.support.workspaces import (
    INSTANCE_LABEL,
    MANAGED_LABEL,
    UID_LABEL,
    WorkspaceHarness,
    condition,
    is_ready,
    secret_manifest,
    workspace_manifest,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

EXAMPLES = 100
VERDICT_TIMEOUT = 240.0
QUIET_PASSES = 5
SECRET_NAME = "tenant-secret"
BINARY_SECRET = "binary-secret"
WRITES = ("POST", "PUT", "PATCH", "DELETE")

# --- what a hostile tenant writes ---------------------------------------------------------------------

ODD = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from("\x00\x1b\u202e\u200b\ufeff\n\t"),
    max_size=40,
)
NAMEISH = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z") | ODD
RUNTIMES = st.sampled_from(["langgraph", "claude-code", "hermes", "no-such-runtime"]) | ODD
PATH_TRICKS = st.sampled_from(
    [
        "config.yaml",
        "a/b/c.txt",
        "../escape",
        "a/../../b",
        "./x",
        ".",
        "..",
        "a//b",
        "/etc/passwd",
        ".auth_token",
        "x" * 254,
        "é/ü",
        "trailing/",
        "-",
    ]
)
HOST_PATHS = st.sampled_from(
    [
        "/",
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/tmp/../etc",
        "/tmp/ok",
        "/home/tenant",
        "relative/path",
        "",
        "/etc/",
        "//etc",
        "/tmp/" + "a" * 1100,
        *FORBIDDEN_HOST_PATH_ROOTS,
    ]
) | ODD.map(lambda s: "/tmp/" + s)


def key_ref(existing: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.sampled_from([existing, "missing-secret"]) | NAMEISH,
            "key": st.sampled_from(["token", "nope"]),
        },
        optional={"optional": st.booleans()},
    )


ENV = st.fixed_dictionaries(
    {"name": st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z").filter(lambda n: n != "AGENT_EXIT")
     | st.sampled_from(RESERVED_ENV_NAMES) | ODD},
    optional={
        "value": ODD | st.just("v" * (INLINE_TEXT_BUDGET + 1)),
        "valueFrom": st.one_of(
            st.fixed_dictionaries({"secretKeyRef": key_ref(SECRET_NAME)}),
            st.fixed_dictionaries({"configMapKeyRef": key_ref("missing-map")}),
            st.just({}),
        ),
    },
)  # fmt: skip
FILES = st.fixed_dictionaries(
    {"path": PATH_TRICKS | ODD, "content": ODD | st.just("c" * (INLINE_TEXT_BUDGET // 2))}
)
CONFIG_MAPS = st.fixed_dictionaries({"name": NAMEISH}, optional={"optional": st.booleans()})
ACCESS = st.sampled_from(["none", "read_only", "read_write", "rw"])
PLATFORM_ID = "0b6c7a9e-2d41-4f0e-9c3b-5a8d1e2f3a4b"
# Anything at all, field by field: most of these the schema refuses.
HOSTILE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "runtime": RUNTIMES,
    "image": st.sampled_from(["REGISTRY/churn:none", "docker.io/library/busybox", "127.0.0.1:1/x"]) | ODD,
    "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never", "always", ""]),
    "imagePullSecrets": st.lists(st.fixed_dictionaries({"name": NAMEISH}), max_size=10),
    "tier": st.integers(-2, 6),
    "env": st.lists(ENV, max_size=70),
    "config": st.fixed_dictionaries(
        {},
        optional={
            "files": st.lists(FILES, max_size=66),
            "fromConfigMaps": st.lists(CONFIG_MAPS, max_size=17),
        },
    ),
    "authToken": st.fixed_dictionaries({"secretRef": key_ref(SECRET_NAME)})
    | st.fixed_dictionaries(
        {}, optional={"generate": st.booleans() | ODD, "secretRef": key_ref(SECRET_NAME)}
    ),
    "workspaceID": st.sampled_from(["ABC-1", "../../etc", "a" * 70, "", "-x-", PLATFORM_ID]) | ODD,
    "adopt": st.booleans() | ODD,
    "progressDeadlineSeconds": st.integers(-5, 100_000),
    "updateStrategy": st.sampled_from(["startfirst", "", "BlueGreen", "Recreate "]) | ODD,
    "imageUpdate": st.fixed_dictionaries(
        {},
        optional={
            "policy": st.sampled_from(["Auto", "Manual", "auto", ""]) | ODD,
            "intervalSeconds": st.integers(-1, 100_000),
            "applyRequestedAt": ODD,
        },
    ),
    # Never valid (no port is one, or httpGet is missing): a valid check that never passes would wait
    # out its progress deadline, which PLAUSIBLE below shortens.
    "readiness": st.fixed_dictionaries(
        {
            "httpGet": st.fixed_dictionaries(
                {"port": st.sampled_from([0, -1, 65536, "8000"])}, optional={"path": ODD}
            )
        },
        optional={"periodSeconds": st.integers(-1, 4000), "failureThreshold": st.integers(-1, 200) | ODD},
    )
    | st.fixed_dictionaries({}, optional={"periodSeconds": st.integers(1, 10)}),
    "workspace": st.fixed_dictionaries({}, optional={"hostPath": HOST_PATHS, "access": ACCESS}),
    "session": st.fixed_dictionaries({"resetRequestedAt": ODD}),
    "restartRequestedAt": ODD,
    "platformURL": st.sampled_from(["http://platform:8080", "ftp://x", "javascript:alert(1)"]) | ODD,
    "awareness": st.fixed_dictionaries({"namespace": ODD, "url": ODD}),
    "suspend": st.booleans(),
    "deletionPolicy": st.sampled_from(["Delete", "Retain", "delete"]),
    "bogus": st.integers(),
}

# What the schema admits, at its most awkward: odd Unicode values, lists at their bounds, references to
# nothing, host paths and tiers and images no policy grants, runtimes no registry has.
SHORT_ODD = ODD.map(lambda s: s[:TOKEN_MAX_LENGTH])
DNS_NAME = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?\Z")
ENV_NAME = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,30}\Z").filter(
    lambda n: n not in RESERVED_ENV_NAMES and n != "AGENT_EXIT"
)
SECRET_REF = st.fixed_dictionaries(
    {
        "name": st.sampled_from([SECRET_NAME, BINARY_SECRET, "missing-secret"]),
        "key": st.sampled_from(["token", "nope"]),
    },
    optional={"optional": st.booleans()},
)
FROM_SECRET = st.fixed_dictionaries({"secretKeyRef": SECRET_REF})
PLAUSIBLE_ENV: st.SearchStrategy[list[dict[str, Any]]] = st.lists(
    st.fixed_dictionaries({"name": ENV_NAME, "value": ODD})
    | st.fixed_dictionaries({"name": ENV_NAME, "valueFrom": FROM_SECRET}),
    max_size=MAX_ENV,
    unique_by=lambda e: str(e["name"]),
)
CONFIG_PATH = st.from_regex(r"\A[a-z0-9_.-]{1,12}(/[a-z0-9_.-]{1,12}){0,3}\Z").filter(
    lambda p: not ({".", ".."} & set(p.split("/"))) and p != ".auth_token"
)
PLAUSIBLE_FILES = st.lists(
    st.fixed_dictionaries(
        {"path": st.just("config.yaml") | CONFIG_PATH, "content": ODD},
        optional={"writePolicy": st.sampled_from(["Always", "IfNotPresent"])},
    ),
    max_size=MAX_CONFIG_FILES,
    unique_by=lambda f: f["path"],
)
PLAUSIBLE_CONFIG = st.fixed_dictionaries(
    {"files": PLAUSIBLE_FILES},
    optional={
        "fromConfigMaps": st.lists(
            st.fixed_dictionaries({"name": DNS_NAME}, optional={"optional": st.booleans()}), max_size=3
        )
    },
)
PLAUSIBLE_IMAGES = [
    "REGISTRY/churn:none",
    "REGISTRY/workspace-template-langgraph:latest",
    "docker.io/library/busybox",
]
TOKEN_REF = st.fixed_dictionaries(
    {"name": st.sampled_from([SECRET_NAME, "missing-secret"]), "key": st.sampled_from(["token", "nope"])}
)
HOST_MOUNT = st.fixed_dictionaries(
    {
        "hostPath": st.sampled_from(["/tmp/tenant", "/home/tenant", "/srv/data/"]),
        "access": st.sampled_from(["read_only", "read_write"]),
    }
)
PLAUSIBLE = st.fixed_dictionaries(
    {"config": PLAUSIBLE_CONFIG},
    optional={
        "runtime": st.sampled_from(["langgraph", "hermes", "no-such-runtime"]),
        "image": st.sampled_from(PLAUSIBLE_IMAGES),
        "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
        "imagePullSecrets": st.lists(st.fixed_dictionaries({"name": DNS_NAME}), max_size=8),
        "tier": st.integers(1, 4),
        "env": PLAUSIBLE_ENV,
        "authToken": st.fixed_dictionaries({"secretRef": TOKEN_REF}) | st.just({"generate": True}),
        # One shared ID among them all: the generated Workspaces claim it against each other.
        "workspaceID": st.just(PLATFORM_ID) | st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z"),
        "adopt": st.booleans(),
        "progressDeadlineSeconds": st.integers(10, 86_400),
        "updateStrategy": st.sampled_from(["Recreate", "StartFirst"]),
        "imageUpdate": st.fixed_dictionaries(
            {"policy": st.sampled_from(["Auto", "Manual"])},
            optional={"intervalSeconds": st.integers(10, 86_400), "applyRequestedAt": SHORT_ODD},
        ),
        "readiness": st.fixed_dictionaries(
            {
                "httpGet": st.fixed_dictionaries(
                    {
                        "path": st.sampled_from(["/health", "/nope?x=$(id)", "/"]),
                        "port": st.sampled_from([8000, 8001]),
                    }
                )
            },
            optional={"periodSeconds": st.integers(1, 3), "timeoutSeconds": st.integers(1, 60)},
        ),
        "workspace": HOST_MOUNT,
        "session": st.fixed_dictionaries({"resetRequestedAt": SHORT_ODD}),
        "restartRequestedAt": SHORT_ODD,
        "platformURL": st.sampled_from(["http://platform:8080", "https://exämple.test/ü?q=<script>"]),
        "awareness": st.fixed_dictionaries({"namespace": ODD.filter(bool), "url": st.just("http://aw:9000")}),
        "suspend": st.booleans(),
        "deletionPolicy": st.sampled_from(["Delete", "Retain"]),
    },
)
ONE_HOSTILE_FIELD = st.sampled_from(sorted(HOSTILE_FIELDS)).flatmap(
    lambda key: HOSTILE_FIELDS[key].map(lambda value: {key: value})
)


def _deadline_for_checks_that_never_pass(spec: dict[str, Any]) -> dict[str, Any]:
    """A readiness check the test agent never answers is reported by the progress deadline: a short one."""
    check = (spec.get("readiness") or {}).get("httpGet") or {}
    if check and (check.get("path"), check.get("port")) != ("/health", 8000):
        return {**spec, "progressDeadlineSeconds": 10}
    return spec


PLAUSIBLE = PLAUSIBLE.map(_deadline_for_checks_that_never_pass)
SPEC = PLAUSIBLE | st.builds(lambda spec, bad: {**spec, **bad}, PLAUSIBLE, ONE_HOSTILE_FIELD)


# --- bookkeeping ------------------------------------------------------------------------------------------


@dataclass
class Barrage:
    ws: WorkspaceHarness
    registry: Registry
    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def submit(self, spec: dict[str, Any]) -> None:
        name = f"hostile-{next(self.counter)}"
        image = spec.get("image")
        if isinstance(image, str) and image.startswith("REGISTRY/"):
            spec = {**spec, "image": image.replace("REGISTRY", self.registry.prefix, 1)}
        body = {"apiVersion": API_VERSION, "kind": "Workspace", "metadata": {"name": name}, "spec": spec}
        manifest = yaml.safe_dump(body)
        try:
            self.ws.kubectl.run("apply", "-f", "-", stdin=manifest)
        except KubectlError as exc:
            message = str(exc)
            # The apiserver's own words, naming the field at fault.
            assert "is invalid" in message or "Error from server" in message, message
            assert "spec" in message, message
            self.refused.append(name)
        else:
            self.accepted.append(name)


def reported(obj: dict[str, Any]) -> bool:
    """Reported for its generation: Ready, Stalled or Synced=False with a reason, or suspended."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return False
    if is_ready(obj) or status.get("phase") == "Suspended":
        return True
    for type_, value in (("Stalled", "True"), ("Synced", "False")):
        found = condition(obj, type_)
        if found and found["status"] == value and found.get("reason") and found.get("message"):
            return True
    return False


def verdict(obj: dict[str, Any]) -> str:
    if is_ready(obj):
        return "Ready"
    for type_, value in (("Stalled", "True"), ("Synced", "False"), ("Ready", "False")):
        found = condition(obj, type_)
        if found and found["status"] == value:
            return f"{type_}/{found.get('reason')}"
    return "unreported"


def conditions_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    conditions: list[dict[str, Any]] = (item.get("status") or {}).get("conditions") or []
    return conditions


def writes(metrics: ControllerMetrics) -> float:
    return sum(
        value
        for (name, labels), value in metrics.scrape().items()
        if name == "rest_client_requests_total" and dict(labels).get("method") in WRITES
    )


def creations(ws: WorkspaceHarness, since: float) -> Counter[str]:
    """Containers of this controller instance created since `since` (epoch seconds), per Workspace uid,
    as the Docker Engine's own event log has them."""
    made: Counter[str] = Counter()
    events = ws.docker.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create", "label": f"{INSTANCE_LABEL}={ws.instance}"},
    )
    for event in events:
        made[event.get("Actor", {}).get("Attributes", {}).get(UID_LABEL, "?")] += 1
    return made


def create_outcomes(metrics: ControllerMetrics) -> Counter[str]:
    return Counter(
        {
            dict(labels).get("outcome", "?"): int(value)
            for (name, labels), value in metrics.scrape().items()
            if name == "workspace_controller_docker_calls_total"
            and dict(labels).get("operation") == "create_container"
        }
    )


@pytest.fixture
def sentinels(docker_client: docker.DockerClient, registry: Registry) -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for obj in made:
        with contextlib.suppress(docker.errors.NotFound):
            obj.remove(force=True)


# --- the test ---------------------------------------------------------------------------------------------


def test_generated_hostile_workspaces_are_refused_or_reported_and_harm_nothing(
    ws: WorkspaceHarness, registry: Registry, sentinels: list[Any]
) -> None:
    token = secrets.token_urlsafe(24)
    ws.apply(secret_manifest(SECRET_NAME, {"token": token}))
    # A binary Secret: its value cannot be an environment variable, and must not be quoted saying so.
    binary_tail = secrets.token_hex(12)
    binary = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": BINARY_SECRET}}
    binary["data"] = {"token": base64.b64encode(b"bin\x00" + binary_tail.encode()).decode()}
    ws.apply(yaml.safe_dump(binary))
    proc = ws.start_controller(WC_RESYNC_SECONDS="1")
    metrics = ControllerMetrics.of(proc)
    for name in ("valid-before", "valid-retained"):
        ws.apply(workspace_manifest(name, {"deletionPolicy": "Retain" if "retained" in name else "Delete"}))
    uid = ws.wait_ready("valid-before")["metadata"]["uid"]

    # Look-alikes the controller must never remove: another instance's container claiming this Workspace,
    # and an unlabelled volume named as a workspace volume is.
    impostor = ws.docker.containers.create(
        registry.image("langgraph"),
        labels={MANAGED_LABEL: "true", INSTANCE_LABEL: f"{ws.instance}-other", UID_LABEL: uid},
    )
    lookalike = ws.docker.volumes.create(f"ws-{secrets.token_hex(6)}-workspace")
    sentinels.extend([impostor, lookalike])
    barrage = Barrage(ws, registry)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(SPEC)
    def submit(spec: dict[str, Any]) -> None:
        barrage.submit(spec)

    submit()
    ws.apply(workspace_manifest("valid-after"))
    accepted = [*barrage.accepted, "valid-before", "valid-retained", "valid-after"]
    assert barrage.accepted, "some hostile Workspaces are valid enough to be accepted"
    assert barrage.refused, "and some are refused at apply"

    def unreported() -> list[str]:
        items = {i["metadata"]["name"]: i for i in ws.kubectl.get_json("workspaces")["items"]}
        return [n for n in accepted if not reported(items[n])]

    wait_until(lambda: not unreported(), timeout=VERDICT_TIMEOUT, interval=1, what="every Workspace reported")
    verdicts = Counter(verdict(item) for item in ws.kubectl.get_json("workspaces")["items"])
    # With Docker and the registry healthy, nothing is left retrying: a permanent problem is Stalled.
    retrying = {v: n for v, n in verdicts.items() if v.startswith("Synced/")}
    assert not retrying, f"retried forever instead of reported Stalled: {retrying}"
    for name in ("valid-before", "valid-retained", "valid-after"):
        assert is_ready(ws.get(name)), name

    # Quiet: over five resyncs, no Kubernetes writes and no container created beyond a handful.
    before_writes, before_creates = writes(metrics), docker_calls(metrics.scrape(), "create_container")
    quiet_since = time.time()
    creates_before = create_outcomes(metrics)
    assert before_writes >= len(accepted), "every status written is counted"
    # Resyncs, counted by their lists: each wakes every Workspace not settled Ready (the Stalled ones).
    start = docker_calls(metrics.scrape(), "list_containers")
    wait_until(
        lambda: docker_calls(metrics.scrape(), "list_containers") >= start + QUIET_PASSES,
        timeout=QUIET_PASSES * 30,
        interval=0.5,
        what=f"{QUIET_PASSES} resyncs",
    )
    quiet_writes = writes(metrics) - before_writes
    quiet_creates = docker_calls(metrics.scrape(), "create_container") - before_creates
    assert quiet_writes <= len(accepted), f"{quiet_writes} writes over {QUIET_PASSES} resyncs: a hot loop"
    if quiet_creates:
        by_uid = {i["metadata"]["uid"]: i for i in ws.kubectl.get_json("workspaces")["items"]}
        makers = {
            (by_uid[uid]["metadata"]["name"], n) if uid in by_uid else (uid, n): (
                by_uid[uid].get("spec"),
                conditions_of(by_uid[uid]),
            )
            if uid in by_uid
            else None
            for uid, n in creations(ws, quiet_since - 1).items()
        }
        outcomes = create_outcomes(metrics) - creates_before
        pytest.fail(
            f"{quiet_creates:.0f} containers created over {QUIET_PASSES} resyncs ({dict(outcomes)}), "
            f"by {makers}"
        )

    # Secrets: not in the logs, in any status, or in any event.
    everything = ws.kubectl.run("get", "workspaces,events", "-o", "json")
    written = [
        text
        for item in json.loads(everything)["items"]
        for text in [item.get("message") or "", *[c.get("message", "") for c in conditions_of(item)]]
    ]
    controls = [text for text in written if any(ord(ch) < 32 and ch != "\n" for ch in text)]
    assert not controls, f"control characters in what the controller wrote: {controls[:3]!r}"
    for value in (token, binary_tail):
        assert value not in ws.controller_logs()
        assert value not in everything
    assert "Traceback" not in ws.controller_logs()
    assert proc.running

    # Deleting them all removes what the controller owns and nothing else.
    ws.kubectl.run("delete", "workspaces", "--all", "--wait=false", timeout=300)
    wait_until(
        lambda: not ws.kubectl.get_json("workspaces")["items"],
        timeout=VERDICT_TIMEOUT,
        interval=1,
        what="every Workspace deleted, finalizers released",
    )
    impostor.reload()
    lookalike.reload()
    owned = ws.docker.containers.list(
        all=True, filters={"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={ws.instance}"]}
    )
    assert not owned
    print(
        f"\n{EXAMPLES} generated: {len(barrage.refused)} refused at apply, {len(barrage.accepted)} accepted "
        f"and reported; over {QUIET_PASSES} resyncs {quiet_writes:.0f} Kubernetes writes, "
        f"{quiet_creates:.0f} containers created; look-alikes kept; verdicts {dict(verdicts.most_common())}"
    )
