"""What token authentication costs Dockyard on its hottest path.

Within one run, the manifest HEAD load goes to the plain Dockyard, then to a
second Dockyard with authentication on, every request carrying a bearer
token. The row's ratio is the second rate over the first. Distribution has
no built-in token server, so it takes no part.
"""

from __future__ import annotations

from benchlib import BenchError
from benchlib.blobs import blob_digest
from benchlib.loadgen import LoadSpec
from benchlib.measure import Measurement, guarded
from benchlib.registry import MANIFEST_ACCEPT, RegistryClient
from benchlib.rows import TOKEN_AUTH
from benchlib.servers import DOCKYARD, RunningServer
from benchlib.workloads.base import RunFiles, Settings, Workload
from benchlib.workloads.requests import (
    IMAGE_REPO,
    IMAGE_TAG,
    SmallImages,
    load_sample,
    manifest_url,
)

TOKEN_SERVICE = "dockyard"
PULL_SCOPE = f"repository:{IMAGE_REPO}:pull"
# Seconds a token must still be valid after the longest sample could end.
TOKEN_MARGIN = 30.0


class TokenAuth(Workload):
    """Manifest HEAD rate with a bearer token over the rate without auth."""

    name = "auth"
    rows = (TOKEN_AUTH,)

    def __init__(
        self, settings: Settings, images: SmallImages, auth: RunningServer | None
    ) -> None:
        super().__init__(settings)
        self.images = images
        self.auth = auth

    def prepare(self, server: RunningServer) -> None:
        if server.name == DOCKYARD and self.auth is not None:
            self.images.manifest(server)
            self.images.manifest(self.auth)

    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        if server.name != DOCKYARD:
            return []
        auth = self.auth

        def action(sample: Measurement) -> Measurement:
            if auth is None:
                raise BenchError("the Dockyard with authentication on did not start")
            off = self._without_auth(server, files.run)
            bearer = f"Bearer {self._fresh_token(auth)}"
            self._check_token(auth, bearer)
            load_sample(sample, auth, self._spec(auth, bearer), self.settings)
            sample.details["auth_off"] = off.value
            sample.details["auth_off_details"] = off.details
            return sample

        return [guarded(Measurement(DOCKYARD, TOKEN_AUTH, files.run), action)]

    def _spec(self, server: RunningServer, bearer: str | None) -> LoadSpec:
        headers = {"Accept": MANIFEST_ACCEPT}
        if bearer:
            headers["Authorization"] = bearer
        return LoadSpec(
            manifest_url(server),
            "HEAD",
            headers,
            self.settings.sizes.connections,
            duration=self.settings.duration,
        )

    def _without_auth(self, server: RunningServer, run: int) -> Measurement:
        sample = Measurement(server.name, TOKEN_AUTH, run)
        load_sample(sample, server, self._spec(server, None), self.settings)
        return sample

    def _fresh_token(self, auth: RunningServer) -> str:
        with auth.client() as client:
            token = client.fetch_token(TOKEN_SERVICE, PULL_SCOPE)
        settings = self.settings
        needed = settings.warmup + settings.quiet.max_wait + settings.duration
        if needed + TOKEN_MARGIN > token.expires_in:
            raise BenchError(
                f"the token lives {token.expires_in:.0f} s, a sample may take "
                f"{needed:.0f} s: shorten --duration, --warmup or --quiet-wait"
            )
        return token.value

    def _check_token(self, auth: RunningServer, bearer: str) -> None:
        """Without the token the server refuses; with it, it answers right."""
        manifest = self.images.manifest(auth)
        with RegistryClient(auth.port) as anonymous:
            status, _ = anonymous.head_manifest(IMAGE_REPO, IMAGE_TAG)
        if status != 401:
            raise BenchError(f"manifest HEAD without a token gave {status}, not 401")
        with RegistryClient(auth.port, bearer) as client:
            status, digest = client.head_manifest(IMAGE_REPO, IMAGE_TAG)
        if status != 200 or digest != blob_digest(manifest):
            raise BenchError(f"manifest HEAD with a token gave {status}, {digest!r}")
