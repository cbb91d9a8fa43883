"""spec.imageUpdate: does the container run the image its tag names in the registry now, and what then.

The registry is asked for the tag's digest without pulling (see `reconcile.registry_digests`, which asks
once per image per interval for every Workspace). Here, purely: whether there is an update, whether to
apply it (Auto, or Manual with a new applyRequestedAt), and which request is handled by that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.api.workspace import ImageStatus, ImageUpdate
from controller.core.conditions import format_time
from controller.core.image_refs import parse_image_ref, split_reference


@dataclass(frozen=True)
class Answer:
    """The registry's answer for a tag: its digest, or why there is none."""

    digest: str | None
    """`sha256:...`, or None when the check failed (`error` says why)."""
    error: str | None
    checked_at: datetime
    asked_at: float
    """Monotonic seconds."""


@dataclass(frozen=True)
class Verdict:
    update_available: str | None
    """`repo@sha256:...`: the registry's digest for the tag, when it is not the one running."""
    apply: bool
    """Pull the tag again and replace the container now."""
    handled: str | None
    """The applyRequestedAt token to report handled once this pass succeeds."""


def checks(update: ImageUpdate | None, image: str) -> bool:
    """Whether the registry is asked about `image` at all: opted in, and a tag rather than a digest pin."""
    return update is not None and not parse_image_ref(image).digest


def digest_part(ref: str | None) -> str | None:
    """`sha256:...` of `repo@sha256:...` (None for None)."""
    return ref.rpartition("@")[2] if ref else None


def judge(
    update: ImageUpdate,
    *,
    running: str | None,
    latest: str | None,
    handled: str | None,
    applied: str | None,
) -> Verdict:
    """What spec.imageUpdate asks for in this pass.

    running: `repo@sha256` of the running container's image (None: not known, nothing is judged).
    latest: `repo@sha256` the tag names in the registry at the last check (None: not known yet).
    handled: the last applyRequestedAt acted on.
    applied: the latest digest an update was already applied for. It is never applied twice: if the
      image the pull brought still shows another digest (a registry serving the tag inconsistently),
      replacing again would loop; the update stays reported instead.
    """
    request = update.apply_requested_at
    pending = request is not None and request != handled
    available = latest if latest and running and digest_part(latest) != digest_part(running) else None
    if available is None:
        # Nothing newer: a pending request is answered by there being nothing to apply.
        return Verdict(None, apply=False, handled=request if pending else handled)
    wanted = update.policy == "Auto" or pending
    if not wanted or available == applied:
        return Verdict(available, apply=False, handled=request if pending else handled)
    return Verdict(available, apply=True, handled=request if pending else handled)


@dataclass(frozen=True)
class Check:
    """One pass's look at the registry: the answer, the tag's digest as `repo@sha256`, the verdict."""

    answer: Answer
    latest: str | None
    verdict: Verdict


def check(
    update: ImageUpdate,
    image: str,
    answer: Answer,
    *,
    running: str | None,
    handled: str | None,
    applied: str | None,
) -> Check:
    latest = f"{split_reference(image)[0]}@{answer.digest}" if answer.digest else None
    verdict = judge(update, running=running, latest=latest, handled=handled, applied=applied)
    return Check(answer, latest, verdict)


def image_status(
    update: ImageUpdate, seen: Check, *, running: str | None, applied: str | None
) -> ImageStatus:
    """status.image after a successful pass; `running` is the digest running at its end (after an
    update was applied, the new one: nothing is available any more)."""
    after = judge(update, running=running, latest=seen.latest, handled=seen.verdict.handled, applied=applied)
    return ImageStatus(
        latest=seen.latest,
        update_available=after.update_available,
        checked_at=format_time(seen.answer.checked_at),
        last_apply_handled=seen.verdict.handled,
        error=seen.answer.error[:1024] if seen.answer.error else None,
    )
