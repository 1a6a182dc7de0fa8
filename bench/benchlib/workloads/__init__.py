"""The workloads, in the order a run measures them, selectable by name."""

from __future__ import annotations

from benchlib.servers import RunningServer
from benchlib.skopeo import Skopeo
from benchlib.workloads.auth import TokenAuth
from benchlib.workloads.base import RunFiles, Settings, Workload
from benchlib.workloads.memory import BigTransfer
from benchlib.workloads.requests import (
    CpuPerRequest,
    ManifestRequests,
    MissingBlobs,
    SmallImages,
    TagList,
)
from benchlib.workloads.skopeo_copy import SkopeoCopies
from benchlib.workloads.transfers import Pulls, Pushes
from benchlib.workloads.uploads import SmallPushes

__all__ = ["WORKLOAD_NAMES", "RunFiles", "Settings", "Workload", "build_workloads"]

WORKLOAD_NAMES = (
    "push",
    "pull",
    "manifest",
    "missing",
    "tags",
    "small",
    "skopeo",
    "cpu",
    "auth",
    "memory",
)


def build_workloads(
    names: list[str],
    settings: Settings,
    auth: RunningServer | None,
    skopeo: Skopeo | None,
) -> list[Workload]:
    """The selected workloads, in ``WORKLOAD_NAMES`` order.

    ``skopeo`` is None when skopeo is missing; its workload is then left out.
    """
    images = SmallImages()
    made: dict[str, Workload] = {
        "push": Pushes(settings),
        "pull": Pulls(settings),
        "manifest": ManifestRequests(settings, images),
        "missing": MissingBlobs(settings, images),
        "tags": TagList(settings),
        "small": SmallPushes(settings),
        "cpu": CpuPerRequest(settings, images),
        "auth": TokenAuth(settings, images, auth),
        "memory": BigTransfer(settings),
    }
    if skopeo is not None:
        made["skopeo"] = SkopeoCopies(settings, skopeo)
    return [made[name] for name in WORKLOAD_NAMES if name in names and name in made]
