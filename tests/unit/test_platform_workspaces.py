"""Serving the platform: its workspace IDs, its tokens, files it owns in /configs, and taking over what its
Go provisioner made (driven through the reconciler on the fake runtime; the e2e tests do it on Docker)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from controller.core import labels, naming
from controller.core.adoption import volume_verdict
from controller.core.causes import Cause
from controller.core.identity import Claim, WorkspaceRef, holder, id_conflict
from controller.kube.workspace_object import WorkspaceObject
from controller.port.values import ObservedVolume
from controller.reconcile.identities import IdentityIndex
from tests.support.fake_runtime import FakeContainer
from tests.support.plans import make_plan
from tests.unit.test_reconciler import INSTANCE, NS, UID, World

PLATFORM_ID = "9b2e4c1a-7f3d-4e8b-a1c2-0d9e8f7a6b5c"
SHORT = PLATFORM_ID[:12]
GO_LABELS = {labels.MANAGED_LABEL: labels.MANAGED_VALUE}


# --- the platform's ID ------------------------------------------------------------------------------


def test_every_name_the_environment_and_the_status_come_from_the_platforms_id() -> None:
    async def scenario() -> None:
        world = platform_world(workspaceID=PLATFORM_ID)
        await world.reconcile()

        container = platform_container(world)
        assert container.name == f"ws-{SHORT}"
        assert f"WORKSPACE_ID={PLATFORM_ID}" in container.spec.env
        assert set(world.runtime.volumes) == {f"ws-{SHORT}-configs", f"ws-{PLATFORM_ID}-workspace"}
        # Still owned by the Workspace's uid: the ID names things, the uid owns them.
        assert container.labels[labels.UID_LABEL] == UID
        assert world.status["workspaceID"] == PLATFORM_ID
        assert world.status["internalURL"] == f"http://ws-{SHORT}:8000"

    asyncio.run(scenario())


def test_without_the_platforms_id_the_uid_names_everything_as_before() -> None:
    async def scenario() -> None:
        world = World()
        await world.reconcile()
        assert world.container().name == naming.container_name(UID)
        assert naming.workspace_volume_name(UID) in world.runtime.volumes
        assert world.status["workspaceID"] == UID

    asyncio.run(scenario())


def platform_world(**spec: Any) -> World:
    """A Workspace in a namespace granted the platform's IDs (a WorkspacePolicy with platformIdentity)."""
    world = World(**spec)
    world.policies.policy_event(
        "ADDED",
        {
            "metadata": {"name": "platform", "generation": 1},
            "spec": {"namespaceSelector": {}, "platformIdentity": True},
        },
    )
    return world


def platform_container(world: World) -> FakeContainer:
    container = world.runtime.by_name(f"ws-{SHORT}")
    assert container is not None, f"no container ws-{SHORT}"
    return container


def ref(uid: str, name: str, platform_id: str = "") -> WorkspaceRef:
    return WorkspaceRef(uid=uid, namespace=NS, name=name, platform_id=platform_id)


def test_the_oldest_claim_holds_an_id_unless_another_already_holds_it() -> None:
    old = Claim(ref("u-2", "old", PLATFORM_ID), created="2026-01-01T00:00:00Z")
    new = Claim(ref("u-1", "new", PLATFORM_ID), created="2026-02-01T00:00:00Z")
    assert holder([new, old]) == old
    established = Claim(new.ref, created=new.created, established=True)
    assert holder([old, established]) == established
    tie = Claim(ref("u-0", "tie", PLATFORM_ID), created=old.created)
    assert holder([old, tie]) == tie  # the uid breaks a tie, the same on every controller


def test_the_second_claimant_is_told_whose_id_it_is_and_an_id_sharing_the_names_too() -> None:
    old = Claim(ref("u-1", "old", PLATFORM_ID), created="2026-01-01T00:00:00Z")
    second = ref("u-2", "second", PLATFORM_ID)
    cause = id_conflict(second, [old, Claim(second, "2026-02-01T00:00:00Z")], SHORT)
    assert cause is not None
    assert cause.reason == "IDConflict"
    assert f"workspaceID {PLATFORM_ID} is already Workspace {NS}/old's" in cause.message

    lookalike = ref("u-3", "lookalike", SHORT + "-something-else")
    cause = id_conflict(lookalike, [old, Claim(lookalike, "2026-03-01T00:00:00Z")], SHORT)
    assert cause is not None
    assert f"both begin {SHORT}" in cause.message
    assert id_conflict(old.ref, [old, Claim(second, "2026-02-01T00:00:00Z")], SHORT) is None


def body(
    uid: str, name: str, created: str, platform_id: str | None = None, held: bool = False
) -> dict[str, Any]:
    spec = {"workspaceID": platform_id} if platform_id else {}
    status = {"workspaceID": platform_id or uid} if held else {}
    return {
        "metadata": {"uid": uid, "namespace": NS, "name": name, "creationTimestamp": created},
        "spec": spec,
        "status": status,
    }


def test_the_index_wakes_the_rivals_when_the_holder_goes() -> None:
    index = IdentityIndex()
    first = body("u-1", "first", "2026-01-01T00:00:00Z", PLATFORM_ID)
    second = body("u-2", "second", "2026-01-02T00:00:00Z", PLATFORM_ID)
    other = body("u-3", "other", "2026-01-03T00:00:00Z")
    assert index.observe("ADDED", first) == set()
    assert index.observe("ADDED", second) == set()  # the holder did not change
    assert index.observe("ADDED", other) == set()
    assert index.conflict(ref("u-1", "first", PLATFORM_ID)) is None
    conflict = index.conflict(ref("u-2", "second", PLATFORM_ID))
    assert conflict is not None
    assert conflict.reason == "IDConflict"
    assert index.conflict(ref("u-3", "other")) is None

    assert index.observe("DELETED", first) == {"u-2"}
    assert index.conflict(ref("u-2", "second", PLATFORM_ID)) is None


def test_a_holder_that_already_holds_the_id_is_not_displaced_by_an_older_looking_claim() -> None:
    index = IdentityIndex()
    index.observe("ADDED", body("u-new", "new", "2026-01-02T00:00:00Z", PLATFORM_ID, held=True))
    index.observe("ADDED", body("u-old", "old", "2026-01-01T00:00:00Z", PLATFORM_ID))
    assert index.conflict(ref("u-new", "new", PLATFORM_ID)) is None
    assert index.conflict(ref("u-old", "old", PLATFORM_ID)) is not None


def test_a_workspace_whose_id_is_taken_is_stalled_and_creates_nothing() -> None:
    async def scenario() -> None:
        world = platform_world(workspaceID=PLATFORM_ID)
        await world.start()
        holder_body = body("u-holder", "holder", "2020-01-01T00:00:00Z", PLATFORM_ID, held=True)
        world.reconciler.identities.observe("ADDED", holder_body)
        world.body["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        world.reconciler.identities.observe("ADDED", world.body)

        await world.reconcile()

        assert world.cond("Stalled") == ("True", "IDConflict")
        assert world.runtime.count("create_container") == 0
        assert world.runtime.count("ensure_volume") == 0
        assert "workspaceID" not in world.status
        assert world.warnings() == ["IDConflict"]

    asyncio.run(scenario())


# --- the token ----------------------------------------------------------------------------------------


def test_a_generated_token_is_written_once_and_never_over_the_one_the_agent_saved() -> None:
    async def scenario() -> None:
        world = World(authToken={"generate": True})
        await world.reconcile()
        container = world.container()
        generated = base64.b64decode(world.kube.secrets[(NS, "w-auth-token")]["data"]["token"])
        assert container.files["/configs/.auth_token"] == generated
        assert world.status["authTokenSecretName"] == "w-auth-token"

        # The platform issues the agent its own token at registration; the agent saves it.
        world.runtime.save(container, "/configs/.auth_token", b"issued-by-the-platform")
        world.change_spec(restartRequestedAt="r1")  # a recreate
        await world.reconcile()

        recreated = world.container()
        assert recreated.id != container.id
        assert recreated.files["/configs/.auth_token"] == b"issued-by-the-platform"

    asyncio.run(scenario())


def test_the_platforms_token_from_a_secret_wins_and_a_new_value_recreates_the_container() -> None:
    async def scenario() -> None:
        world = World(authToken={"secretRef": {"name": "tok"}})
        world.kube.add_secret(NS, "tok", {"token": "first"})
        await world.reconcile()
        container = world.container()
        assert container.files["/configs/.auth_token"] == b"first"

        world.kube.add_secret(NS, "tok", {"token": "rotated"})
        await world.reconcile()

        rotated = world.container()
        assert rotated.id != container.id
        assert rotated.files["/configs/.auth_token"] == b"rotated"
        assert world.status["authTokenSecretName"] == "tok"

    asyncio.run(scenario())


def test_without_an_auth_token_the_one_in_the_volume_is_left_alone() -> None:
    async def scenario() -> None:
        world = World()
        await world.reconcile()
        container = world.container()
        world.runtime.save(container, "/configs/.auth_token", b"the-agents")
        world.change_spec(restartRequestedAt="r1")
        await world.reconcile()
        assert world.container().files["/configs/.auth_token"] == b"the-agents"
        assert (NS, "w-auth-token") not in world.kube.secrets

    asyncio.run(scenario())


# --- who owns a config file -------------------------------------------------------------------------


def files(*entries: tuple[str, str, str]) -> dict[str, Any]:
    return {"files": [{"path": p, "content": c, "writePolicy": w} for p, c, w in entries]}


def test_an_if_not_present_file_keeps_the_volumes_copy_and_an_always_file_is_rewritten() -> None:
    async def scenario() -> None:
        world = World(
            config=files(("config.yaml", "model: seed\n", "IfNotPresent"), ("rules.md", "r1", "Always"))
        )
        await world.reconcile()
        container = world.container()
        assert container.files["/configs/config.yaml"] == b"model: seed\n"

        # Edited through the platform's Files API (inside the container), then a drift recreate.
        world.runtime.save(container, "/configs/config.yaml", b"model: edited\n")
        world.runtime.save(container, "/configs/rules.md", b"edited too")
        world.change_spec(restartRequestedAt="r1")
        await world.reconcile()

        recreated = world.container()
        assert recreated.id != container.id
        assert recreated.files["/configs/config.yaml"] == b"model: edited\n"
        assert recreated.files["/configs/rules.md"] == b"r1"

    asyncio.run(scenario())


def test_editing_an_if_not_present_seed_in_the_spec_does_not_restart_the_agent() -> None:
    async def scenario() -> None:
        world = World(config=files(("config.yaml", "model: seed\n", "IfNotPresent")))
        await world.reconcile()
        container = world.container()
        world.change_spec(config=files(("config.yaml", "model: new seed\n", "IfNotPresent")))
        mark = world.mark()
        await world.reconcile()
        assert world.container().id == container.id
        assert world.writes_since(mark) == []

        world.change_spec(config=files(("config.yaml", "model: new seed\n", "Always")))
        await world.reconcile()
        assert world.container().id != container.id
        assert world.container().files["/configs/config.yaml"] == b"model: new seed\n"

    asyncio.run(scenario())


# --- taking over the Go provisioner's objects ---------------------------------------------------------


def go_workspace(world: World) -> str:
    """The container and volumes the Go provisioner made for PLATFORM_ID, with the agent's state."""
    for name in (f"ws-{SHORT}-configs", f"ws-{SHORT}-claude-sessions"):
        world.runtime.volumes[name] = ObservedVolume(name, dict(GO_LABELS))
    # Made by the bind, so without labels (the Go provisioner never labelled it).
    world.runtime.volumes[f"ws-{PLATFORM_ID}-workspace"] = ObservedVolume(f"ws-{PLATFORM_ID}-workspace", {})
    world.runtime.volume_files[f"ws-{SHORT}-configs"] = {
        "config.yaml": b"from: go\n",
        ".auth_token": b"go-tok",
    }
    world.runtime.volume_files[f"ws-{PLATFORM_ID}-workspace"] = {"repo/README": b"work"}
    return world.runtime.add_foreign(f"ws-{SHORT}", GO_LABELS).id


def test_the_go_provisioners_container_is_a_name_conflict_unless_adoption_is_asked_for() -> None:
    async def scenario() -> None:
        world = platform_world(workspaceID=PLATFORM_ID)
        go_id = go_workspace(world)
        await world.reconcile(fresh=True)

        assert world.cond("Stalled") == ("True", "NameConflict")
        condition = world.condition("Stalled")
        assert condition is not None
        assert "set spec.adopt: true" in condition["message"]
        assert go_id in world.runtime.containers
        assert world.runtime.count("remove_container") == 0
        assert "workspaceID" not in world.status  # a pass stalled on a conflict holds no ID
        assert "adopted" not in world.status

    asyncio.run(scenario())


def test_adoption_recreates_the_container_as_ours_on_the_same_volumes_with_their_data() -> None:
    async def scenario() -> None:
        world = platform_world(
            workspaceID=PLATFORM_ID,
            adopt=True,
            runtime="claude-code",
            config=files(("config.yaml", "model: seed\n", "IfNotPresent")),
        )
        go_id = go_workspace(world)
        await world.reconcile(fresh=True)

        assert go_id not in world.runtime.containers
        container = platform_container(world)
        assert container.name == f"ws-{SHORT}"
        assert labels.read_owner(container.labels, INSTANCE) is not None
        assert container.files["/configs/config.yaml"] == b"from: go\n"  # kept: IfNotPresent
        assert container.files["/configs/.auth_token"] == b"go-tok"  # kept: no token asked for
        assert container.files["/workspace/repo/README"] == b"work"
        adopted = world.status["adopted"]
        assert adopted["container"] == f"ws-{SHORT} ({go_id[:12]})"
        assert set(adopted["volumes"]) == {
            f"ws-{SHORT}-configs",
            f"ws-{SHORT}-claude-sessions",
            f"ws-{PLATFORM_ID}-workspace",
        }
        assert "Adopted" in world.kube.reasons()
        assert world.cond("Ready") == ("True", "ContainerRunning")

        # Once adopted, the opt-in may go: a recreate still uses the volumes it took over.
        world.change_spec(adopt=False, restartRequestedAt="r1")
        await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert platform_container(world).files["/configs/config.yaml"] == b"from: go\n"

        # Deleted with deletionPolicy Delete (the default): the volumes it took over go too.
        await world.finalize()
        assert world.runtime.volumes == {}

    asyncio.run(scenario())


def test_go_volumes_without_their_container_are_not_used_unless_adoption_is_asked_for() -> None:
    async def scenario() -> None:
        world = platform_world(workspaceID=PLATFORM_ID, runtime="claude-code")
        go_workspace(world)
        world.runtime.containers.clear()  # the container is gone, the volumes stay
        await world.reconcile(fresh=True)

        assert world.cond("Stalled") == ("True", "VolumeConflict")
        condition = world.condition("Stalled")
        assert condition is not None
        assert "made by the Go provisioner" in condition["message"]
        assert world.runtime.count("create_container") == 0

    asyncio.run(scenario())


def test_a_container_of_another_controller_instance_is_never_adopted() -> None:
    async def scenario() -> None:
        world = platform_world(workspaceID=PLATFORM_ID, adopt=True)
        other = {**GO_LABELS, labels.INSTANCE_LABEL: "another-instance"}
        foreign = world.runtime.add_foreign(f"ws-{SHORT}", other)
        await world.reconcile(fresh=True)
        assert world.cond("Stalled") == ("True", "NameConflict")
        assert foreign.id in world.runtime.containers

    asyncio.run(scenario())


ME = WorkspaceRef(UID, NS, "w")


# --- pure parts -------------------------------------------------------------------------------------------


def test_a_volume_is_used_when_it_is_this_workspaces_or_adoption_covers_it() -> None:
    ours = labels.workspace_labels(INSTANCE, WorkspaceRef(UID, NS, "w"), "Delete")
    other_ws = labels.workspace_labels(INSTANCE, WorkspaceRef("other-uid", NS, "x"), "Retain")
    other_instance = labels.workspace_labels("elsewhere", WorkspaceRef(UID, NS, "w"), "Delete")

    def verdict(found: dict[str, str], *, adopt: bool = False, adopted: tuple[str, ...] = ()) -> str:
        result = volume_verdict(
            "v",
            found,
            instance=INSTANCE,
            workspace=ME,
            adopt=adopt,
            adopted=adopted,
            platform_named=True,
        )
        return result if isinstance(result, str) else result.reason

    assert verdict(ours) == "own"
    assert verdict({**ours, labels.DELETION_POLICY_LABEL: "Retain"}) == "own"  # its policy changed since
    assert verdict(GO_LABELS) == "VolumeConflict"
    assert verdict({}) == "VolumeConflict"
    assert verdict(GO_LABELS, adopt=True) == "adopt"
    assert verdict({}, adopted=("v",)) == "adopt"  # taken over before: spec.adopt may be gone
    # Made by this controller for another Workspace, or by another controller: never shared.
    assert verdict(other_ws, adopt=True) == "VolumeConflict"
    assert verdict(other_instance, adopt=True) == "VolumeConflict"

    # Named from the uid, nobody else's: one without labels is its own that lost them (a daemon crash).
    def uid_named(found: dict[str, str]) -> object:
        return volume_verdict(
            "v",
            found,
            instance=INSTANCE,
            workspace=WorkspaceRef(UID, NS, "w"),
            adopt=False,
            adopted=(),
            platform_named=False,
        )

    assert uid_named({}) == "own"
    assert uid_named(GO_LABELS) == "own"
    assert isinstance(uid_named(other_ws), Cause)


def test_the_platforms_id_reaches_the_plan_and_if_not_present_content_stays_out_of_the_hash() -> None:
    spec = {"workspaceID": PLATFORM_ID, "config": {"files": [{"path": "config.yaml", "content": "a"}]}}
    plan = make_plan(spec)
    assert plan.name == f"ws-{SHORT}"
    assert f"ws-{PLATFORM_ID}-workspace:/workspace" in plan.container.binds
    assert plan.workspace.workspace_id == PLATFORM_ID

    def seeded(content: str, policy: str) -> str:
        files = [{"path": "config.yaml", "content": content, "writePolicy": policy}]
        return make_plan({"config": {"files": files}}).config_hash

    assert seeded("a", "IfNotPresent") == seeded("b", "IfNotPresent")
    assert seeded("a", "Always") != seeded("b", "Always")
    assert seeded("a", "IfNotPresent") != seeded("a", "Always")


def test_a_workspace_object_reads_the_platforms_id_from_its_spec() -> None:
    obj = WorkspaceObject.from_body(body("u-1", "w", "2026-01-01T00:00:00Z", PLATFORM_ID))
    assert obj.ref.workspace_id == PLATFORM_ID
    assert WorkspaceObject.from_body(body("u-1", "w", "2026-01-01T00:00:00Z")).ref.workspace_id == "u-1"


def test_claims_of_the_start_up_list_the_watch_never_confirms_are_dropped() -> None:
    index = IdentityIndex()
    ghost = body("u-ghost", "ghost", "2026-01-01T00:00:00Z", PLATFORM_ID, held=True)
    index.seed([ghost])
    # Re-created for the same ID while the controller was away: the ghost's seeded claim holds it.
    assert index.observe(None, body("u-new", "new", "2026-01-02T00:00:00Z", PLATFORM_ID)) == set()
    assert index.conflict(ref("u-new", "new", PLATFORM_ID)) is not None
    assert index.forget_unseen() == {"u-new"}
    assert index.conflict(ref("u-new", "new", PLATFORM_ID)) is None
    # A seeded claim the watch confirms stays.
    index.seed([ghost])
    index.observe(None, ghost)
    assert index.forget_unseen() == set()
    assert index.follows("u-ghost")


def test_the_holders_own_updates_wake_nobody() -> None:
    index = IdentityIndex()
    holder_body = body("u-1", "first", "2026-01-01T00:00:00Z", PLATFORM_ID)
    index.observe("ADDED", holder_body)
    index.observe("ADDED", body("u-2", "second", "2026-01-02T00:00:00Z", PLATFORM_ID))
    assert (
        index.observe("MODIFIED", body("u-1", "first", "2026-01-01T00:00:00Z", PLATFORM_ID, held=True))
        == set()
    )


def test_a_volume_retained_by_a_workspace_that_is_gone_is_taken_over_only_when_asked() -> None:
    retained = labels.workspace_labels(INSTANCE, WorkspaceRef("gone-uid", NS, "old"), "Retain")
    deleted = labels.workspace_labels(INSTANCE, WorkspaceRef("gone-uid", NS, "old"), "Delete")

    def verdict(found: dict[str, str], *, adopt: bool, exists: bool = False) -> str:
        result = volume_verdict(
            "v",
            found,
            instance=INSTANCE,
            workspace=ME,
            adopt=adopt,
            adopted=(),
            platform_named=True,
            exists=lambda _: exists,
        )
        return result if isinstance(result, str) else result.message

    assert verdict(retained, adopt=True) == "adopt"
    assert "was retained by Workspace ns/old, which is gone; set spec.adopt: true" in verdict(
        retained, adopt=False
    )
    assert "never shared" in verdict(retained, adopt=True, exists=True)
    assert "never shared" in verdict(deleted, adopt=True)


def test_a_changed_id_the_schema_let_through_renames_nothing() -> None:
    async def scenario() -> None:
        world = platform_world(workspaceID=PLATFORM_ID)
        await world.reconcile()
        container = platform_container(world)
        world.change_spec(workspaceID="0" * 12 + "-other")
        mark = world.mark()
        await world.reconcile()
        assert world.cond("Stalled") == ("True", "InvalidSpec")
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "spec.workspaceID is immutable" in stalled["message"]
        assert world.writes_since(mark) == []
        assert world.runtime.containers[container.id] is container

    asyncio.run(scenario())


def test_a_workspace_without_the_grant_is_denied_the_platforms_id() -> None:
    async def scenario() -> None:
        world = World(workspaceID=PLATFORM_ID)
        await world.reconcile()
        assert world.cond("Stalled") == ("True", "PolicyDenied")
        assert world.runtime.count("create_container") == 0

    asyncio.run(scenario())
