"""The pool manager against the in-memory runtime: slots made with a token of their own, held while a
Workspace's inputs are read, and bound without a copy of the token when the Workspace was given the very
token its slot holds (written when it was not: another token, or a slot this process did not make)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from controller.api.workspace import AUTH_TOKEN_FILE, WorkspaceSpec
from controller.core import naming
from controller.core.causes import Cause
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.core.policy import DEFAULT_GRANT
from controller.core.pools import SLOT_ANNOTATION, Slot, bound_ref, slot_ref
from controller.reconcile.hosts import HostRegistry
from controller.reconcile.pools import PoolManager, SlotTemplate, warm_plan
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.fake_runtime import FakeRuntime
from tests.support.hosts import one_host

PREFIX = "reg.local/m"
IMAGE = f"{PREFIX}/workspace-template-langgraph:latest"
SETTINGS = ControllerSettings(instance="t", registry_prefix=PREFIX)
NS, POOL, TEMPLATE = "team", "p", "agent"
MODEL = WorkspaceSpec.model_validate(
    {
        "config": {"files": [{"path": "config.yaml", "content": "name: agent\n"}]},
        "authToken": {"generate": True},
    }
)
TOKEN_PATH = f"/configs/{AUTH_TOKEN_FILE}"
ALICE = WorkspaceRef(uid="0b9e6d1c-1111-4222-8333-944455556666", namespace=NS, name="alice")
BOB = WorkspaceRef(uid="7c1d2e3f-2222-4333-8444-a55566667777", namespace=NS, name="bob")


def plan(ref: WorkspaceRef, token: str) -> ContainerPlan:
    made = plan_workspace(ref, MODEL, ResolvedInputs(auth_token=token), SETTINGS, DEFAULT_GRANT)
    assert isinstance(made, ContainerPlan), made
    return made


def manager(hosts: HostRegistry, kube: FakeKube) -> PoolManager:
    async def planner(namespace: str, pool: str, spec: Any) -> SlotTemplate | Cause:
        # As the reconciler's: the template's plan with a stand-in token (the slot gets its own).
        return SlotTemplate(
            lambda slot: plan(slot_ref(namespace, pool, slot), "stand-in"),
            hosts.scheduler.request(MODEL.tier),
            MODEL.placement,
        )

    made = PoolManager(hosts=hosts, kube=kube, settings=SETTINGS, planner=planner)
    pool = {
        "metadata": {"namespace": NS, "name": POOL, "generation": 1},
        "spec": {"templateRef": {"name": TEMPLATE}, "replicas": 2},
    }
    made.pool_event("ADDED", pool)
    return made


async def filled(pools: PoolManager, count: int) -> list[Slot]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await pools.pass_once()
        found = pools.candidates(NS, TEMPLATE)
        if len(found) == count:
            return found
        await asyncio.sleep(0.01)  # the slot-making tasks run in between
    raise AssertionError(f"the pool did not fill: {pools.candidates(NS, TEMPLATE)}")


async def world() -> tuple[FakeRuntime, FakeKube, HostRegistry]:
    runtime = FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64})
    kube = FakeKube()
    for ref in (ALICE, BOB):
        kube.objects[(ref.namespace, ref.name)] = {"metadata": {"uid": ref.uid, "name": ref.name}}
    return runtime, kube, await one_host(runtime, SETTINGS, kube)


def token_in(runtime: FakeRuntime, slot: Slot) -> bytes:
    container = next(c for c in runtime.containers.values() if c.id == slot.container_id)
    return container.files[TOKEN_PATH]


def test_each_slot_is_made_with_a_token_of_its_own() -> None:
    async def scenario() -> None:
        runtime, kube, hosts = await world()
        pools = manager(hosts, kube)
        slots = await filled(pools, 2)
        tokens = {token_in(runtime, s) for s in slots}
        assert len(tokens) == 2
        assert b"stand-in" not in tokens
        assert all(len(t) >= 40 for t in tokens)  # 32 random bytes, URL-safe
        await pools.close()

    asyncio.run(scenario())


def test_a_held_slot_offers_its_token_to_one_workspace_only() -> None:
    async def scenario() -> None:
        runtime, kube, hosts = await world()
        pools = manager(hosts, kube)
        first, second = await filled(pools, 2)
        offered = pools.hold(first, ALICE.uid)
        assert offered is not None
        assert offered.encode() == token_in(runtime, first)
        assert pools.hold(first, BOB.uid) is None  # another's while Alice's inputs are read
        assert [s.id for s in pools.candidates(NS, TEMPLATE)] == [second.id]
        pools.let_go(first.id, BOB.uid)  # not Bob's to let go
        assert [s.id for s in pools.candidates(NS, TEMPLATE)] == [second.id]
        pools.let_go(first.id, ALICE.uid)
        assert {s.id for s in pools.candidates(NS, TEMPLATE)} == {first.id, second.id}
        await pools.close()

    asyncio.run(scenario())


def test_a_workspace_given_its_slots_token_is_bound_without_a_copy() -> None:
    async def scenario() -> None:
        runtime, kube, hosts = await world()
        pools = manager(hosts, kube)
        slot = (await filled(pools, 2))[0]
        offered = pools.hold(slot, ALICE.uid)
        assert offered is not None
        writes = runtime.count("write_files")
        assert await pools.bind(ALICE, slot, plan(bound_ref(ALICE, slot.id), offered))
        assert runtime.count("write_files") == writes
        container = runtime.by_name(naming.container_name(slot.id))
        assert container is not None
        assert container.id == slot.container_id
        assert container.files[TOKEN_PATH] == offered.encode()
        annotations = kube.objects[(NS, ALICE.name)]["metadata"]["annotations"]
        assert annotations == {SLOT_ANNOTATION: slot.id}
        assert slot.id not in {s.id for s in pools.candidates(NS, TEMPLATE)}
        await pools.close()

    asyncio.run(scenario())


def test_another_token_is_written_into_the_slot_when_bound() -> None:
    async def scenario() -> None:
        runtime, kube, hosts = await world()
        pools = manager(hosts, kube)
        slot = (await filled(pools, 2))[0]
        writes = runtime.count("write_files")
        # Alice's token Secret existed before the claim: her token, not the slot's, is the one to hold.
        assert await pools.bind(ALICE, slot, plan(bound_ref(ALICE, slot.id), "alices-own-token"))
        assert runtime.count("write_files") == writes + 1
        assert token_in(runtime, slot) == b"alices-own-token"
        await pools.close()

    asyncio.run(scenario())


def test_a_slot_this_process_did_not_make_has_the_workspaces_token_written() -> None:
    async def scenario() -> None:
        runtime, kube, hosts = await world()
        maker = manager(hosts, kube)
        slot = (await filled(maker, 2))[0]
        made_with = token_in(runtime, slot).decode()
        await maker.close()
        restarted = manager(hosts, kube)  # a restart, or another replica: no memory of the tokens
        (found,) = [s for s in await filled(restarted, 2) if s.id == slot.id]
        assert restarted.hold(found, ALICE.uid) is None
        writes = runtime.count("write_files")
        # Even the same value is written: this process cannot know the slot holds it.
        assert await restarted.bind(ALICE, found, plan(bound_ref(ALICE, found.id), made_with))
        assert runtime.count("write_files") == writes + 1
        await restarted.close()

    asyncio.run(scenario())


def test_a_slot_held_by_one_workspace_is_not_bound_to_another() -> None:
    async def scenario() -> None:
        _, kube, hosts = await world()
        pools = manager(hosts, kube)
        slot = (await filled(pools, 2))[0]
        assert pools.hold(slot, ALICE.uid) is not None
        assert not await pools.bind(BOB, slot, plan(bound_ref(BOB, slot.id), "t"))
        assert "annotations" not in kube.objects[(NS, BOB.name)]["metadata"]
        await pools.close()

    asyncio.run(scenario())


def test_the_warm_plan_carries_the_slots_token_or_none() -> None:
    base = plan(slot_ref(NS, POOL, "5f0c2b1a-aaaa-4bbb-8ccc-dddddddddddd"), "stand-in")
    warm = warm_plan(base, "slot-token")
    assert warm.name == naming.warm_name("5f0c2b1a-aaaa-4bbb-8ccc-dddddddddddd")
    assert warm.files.files[AUTH_TOKEN_FILE].content == b"slot-token"
    assert warm.files.files[AUTH_TOKEN_FILE].mode == base.files.files[AUTH_TOKEN_FILE].mode
    assert AUTH_TOKEN_FILE not in warm_plan(base, None).files.files
    assert warm.config_hash == base.config_hash  # the token's value is not in the hash


def test_a_slot_whose_token_went_to_a_workspace_not_bound_to_it_is_replaced() -> None:
    async def scenario() -> None:
        runtime, kube, hosts = await world()
        pools = manager(hosts, kube)
        first, second = await filled(pools, 2)
        assert pools.hold(first, ALICE.uid) is not None
        # Alice's Secret was made with the slot's token, and she was made cold (an override, say).
        pools.let_go(first.id, ALICE.uid, token_given=True)
        assert pools.hold(first, BOB.uid) is None  # never offered again
        pools.let_go(first.id, BOB.uid)
        slots = await filled(pools, 2)
        assert first.id not in {s.id for s in slots}
        assert second.id in {s.id for s in slots}
        assert runtime.by_name(naming.warm_name(first.id)) is None
        await pools.close()

    asyncio.run(scenario())
