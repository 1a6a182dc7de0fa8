"""Run the selected workloads on every server, ``--runs`` times, in turns.

Within a run each workload measures every server back to back, so the two
samples of a pair meet the same machine; who goes first alternates between
runs. A workload whose preparation failed on a server records the failure as
that server's sample in every run, so the table shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from benchlib.measure import FAILURES, Measurement
from benchlib.servers import RunningServer
from benchlib.workloads import RunFiles, Settings, Workload

Show = Callable[[Measurement], None]


def in_turn(servers: Sequence[RunningServer], run: int) -> list[RunningServer]:
    """The servers in run order: reversed every other run."""
    return list(servers) if run % 2 else list(servers)[::-1]


class Runner:
    """Prepares the workloads, then measures them run by run into ``samples``."""

    def __init__(
        self,
        servers: Sequence[RunningServer],
        workloads: Sequence[Workload],
        settings: Settings,
        show: Show,
    ) -> None:
        self.servers = list(servers)
        self.workloads = list(workloads)
        self.settings = settings
        self.show = show
        self.samples: list[Measurement] = []
        self._broken: dict[tuple[str, str], str] = {}

    def prepare(self) -> None:
        """Run every workload's untimed preparation on every server."""
        names = ", ".join(workload.name for workload in self.workloads)
        print(f"preparing {names} ...", flush=True)
        for workload in self.workloads:
            for server in self.servers:
                try:
                    workload.prepare(server)
                except FAILURES as error:
                    message = f"preparation failed: {type(error).__name__}: {error}"
                    print(f"!! {workload.name} on {server.name}: {message}")
                    self._broken[(workload.name, server.name)] = message

    def run(self, runs: int) -> None:
        """Measure every workload ``runs`` times (first-run-only ones once)."""
        for run in range(1, runs + 1):
            files = RunFiles(run, self.settings)
            try:
                for workload in self.workloads:
                    if run > 1 and workload.first_run_only:
                        continue
                    for server in in_turn(self.servers, run):
                        for sample in self._measure(workload, server, files):
                            self.samples.append(sample)
                            self.show(sample)
            finally:
                files.cleanup()

    def _measure(
        self, workload: Workload, server: RunningServer, files: RunFiles
    ) -> list[Measurement]:
        broken = self._broken.get((workload.name, server.name))
        if broken is None:
            try:
                return workload.measure(server, files)
            except FAILURES as error:
                # Outside any one sample, such as writing the run's files.
                broken = f"{type(error).__name__}: {error}"
        return [
            Measurement(server.name, row, files.run, error=broken)
            for row in workload.rows
        ]
