"""HTTPS, and mutual TLS, with a CA made for the run (tests/support/tls.py).

Two registries start from config files: one serving TLS, one that also demands
a client certificate signed by the test CA. Authentication stays on, so skopeo
also fetches its token over HTTPS from the realm the challenge names. Nothing
here turns verification off: clients trust the test CA through `--cert-dir`
(skopeo) or an SSL context (httpx).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.auth.conftest import (
    ADMIN,
    Account,
    AuthServer,
    add_user,
    auth_server,
    challenge_of,
    dockyard_batch,
)
from tests.clients.tools import COMMAND_TIMEOUT, Skopeo, require_tool
from tests.support.oci_layout import OciLayout, write_image
from tests.support.tls import (
    CertificateAuthority,
    KeyPair,
    Pki,
    containers_cert_dir,
    make_pki,
)

WRITER = Account("wade", "wade-pass-8121")


def tls_context(ca_cert: Path, client: KeyPair | None = None) -> ssl.SSLContext:
    """Trust the test CA; present `client` when the server asks for a certificate."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def start_tls_server(folder: Path, pki: Pki, *, mutual: bool) -> AuthServer:
    settings: dict[str, dict[str, str]] = {
        "tls": {"cert": str(pki.server.cert), "key": str(pki.server.key)}
    }
    if mutual:
        settings["tls"]["client_ca"] = str(pki.ca_cert)
    config = folder / "dockyard.yaml"
    config.write_text(yaml.safe_dump(settings))
    client = pki.client if mutual else None
    server = auth_server(
        folder,
        extra_args=("--config", str(config)),
        tls=tls_context(pki.ca_cert, client),
    )
    server.start()
    try:
        dockyard_batch(
            server.data_dir,
            [
                add_user(WRITER),
                ["namespace", "create", "acme"],
                ["namespace", "grant", "acme", WRITER.username, "writer"],
            ],
        )
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[AuthServer]:
    server = start_tls_server(tmp_path_factory.mktemp("tls"), pki, mutual=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[AuthServer]:
    server = start_tls_server(tmp_path_factory.mktemp("mtls"), pki, mutual=True)
    yield server
    server.stop()


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    """skopeo with a registries.conf that marks nothing insecure."""
    conf = tmp_path / "registries.conf"
    conf.write_text("unqualified-search-registries = []\n")
    auth_file = tmp_path / "auth.json"
    auth_file.write_text('{"auths": {}}')
    return Skopeo(require_tool("skopeo"), conf, {"REGISTRY_AUTH_FILE": str(auth_file)})


def push_and_pull(
    skopeo: Skopeo, server: AuthServer, cert_dir: Path, folder: Path
) -> None:
    """Copy an image in and out over HTTPS, verifying the server all the way."""
    image = write_image(folder / "source", "v1", seed=401, layer_count=2)
    remote = f"docker://{server.host}/acme/tls-{uuid.uuid4().hex[:8]}:v1"

    skopeo.run(
        "copy", "--quiet", "--dest-cert-dir", str(cert_dir),
        "--dest-creds", WRITER.creds, f"oci:{folder / 'source'}:v1", remote,
    )  # fmt: skip
    skopeo.run(
        "copy", "--quiet", "--src-cert-dir", str(cert_dir),
        "--src-creds", WRITER.creds, remote, f"oci:{folder / 'pulled'}:v1",
    )  # fmt: skip

    assert OciLayout(folder / "pulled").resolve("v1")["digest"] == image.digest


# -- TLS -------------------------------------------------------------------------------


@pytest.mark.clients
def test_skopeo_pushes_and_pulls_over_https_trusting_test_ca(
    skopeo: Skopeo, tls_server: AuthServer, pki: Pki, tmp_path: Path
) -> None:
    cert_dir = containers_cert_dir(tmp_path / "certs", pki.ca_cert)

    push_and_pull(skopeo, tls_server, cert_dir, tmp_path)


def test_httpx_trusting_test_ca_reaches_registry(
    tls_server: AuthServer, pki: Pki
) -> None:
    with httpx.Client(verify=tls_context(pki.ca_cert)) as http:
        anonymous = http.get(f"{tls_server.url}/v2/")
        logged_in = http.get(f"{tls_server.url}/v2/", auth=ADMIN.basic)

    assert tls_server.url.startswith("https://")
    assert anonymous.status_code == 401
    # The token realm is on the same HTTPS origin the client came in by.
    assert challenge_of(anonymous)["realm"] == f"{tls_server.url}/auth/token"
    assert logged_in.status_code == 200


def test_client_without_test_ca_rejects_server_certificate(
    tls_server: AuthServer,
) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.url}/v2/")


def test_plain_http_to_tls_port_fails(tls_server: AuthServer) -> None:
    plain = f"http://{tls_server.host}/v2/"
    try:
        response = httpx.get(plain, auth=ADMIN.basic, timeout=5.0)
    except httpx.TransportError:
        return  # the server answered in TLS, which is no HTTP at all
    # Some TLS servers answer plain HTTP with an error page: never the registry.
    assert response.status_code >= 400
    assert "docker-distribution-api-version" not in response.headers


# -- mutual TLS ------------------------------------------------------------------------


def test_client_without_certificate_is_refused_by_mutual_tls(
    mtls_server: AuthServer, pki: Pki
) -> None:
    # TLS 1.3 finishes the client's side of the handshake first, so the server's
    # "certificate required" alert surfaces on the first read.
    with (
        pytest.raises(httpx.TransportError, match="(?i)certificate.required"),
        httpx.Client(verify=tls_context(pki.ca_cert)) as http,
    ):
        http.get(f"{mtls_server.url}/v2/", auth=ADMIN.basic)


def test_client_certificate_from_another_ca_is_refused(
    mtls_server: AuthServer, pki: Pki, tmp_path: Path
) -> None:
    rogue = CertificateAuthority.create(tmp_path, "rogue")
    impostor = rogue.issue_client(tmp_path, "impostor")

    with (
        pytest.raises(httpx.TransportError, match="(?i)alert"),
        httpx.Client(verify=tls_context(pki.ca_cert, impostor)) as http,
    ):
        http.get(f"{mtls_server.url}/v2/", auth=ADMIN.basic)


def test_client_with_certificate_from_test_ca_is_served(
    mtls_server: AuthServer, pki: Pki
) -> None:
    with httpx.Client(verify=tls_context(pki.ca_cert, pki.client)) as http:
        response = http.get(f"{mtls_server.url}/v2/", auth=ADMIN.basic)

    assert response.status_code == 200, response.text


@pytest.mark.clients
def test_skopeo_with_client_certificate_pushes_and_pulls(
    skopeo: Skopeo, mtls_server: AuthServer, pki: Pki, tmp_path: Path
) -> None:
    cert_dir = containers_cert_dir(tmp_path / "certs", pki.ca_cert, pki.client)

    push_and_pull(skopeo, mtls_server, cert_dir, tmp_path)


@pytest.mark.clients
def test_skopeo_without_client_certificate_is_refused_by_mutual_tls(
    skopeo: Skopeo, mtls_server: AuthServer, pki: Pki, tmp_path: Path
) -> None:
    cert_dir = containers_cert_dir(tmp_path / "certs", pki.ca_cert)
    remote = f"docker://{mtls_server.host}/acme/anything:v1"
    command = [
        skopeo.binary, "--registries-conf", str(skopeo.registries_conf),
        "inspect", "--cert-dir", str(cert_dir), "--creds", WRITER.creds, remote,
    ]  # fmt: skip

    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **skopeo.env},
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

    assert result.returncode != 0
    assert "certificate" in result.stderr.lower(), result.stderr


def _served_certificate(server: AuthServer, context: ssl.SSLContext) -> bytes:
    address = ("127.0.0.1", server.port)
    with (
        socket.create_connection(address, timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_sighup_puts_a_renewed_certificate_in_place(tmp_path: Path) -> None:
    for folder in ("pki", "server", "renewed"):
        (tmp_path / folder).mkdir()
    pki = make_pki(tmp_path / "pki")
    server = start_tls_server(tmp_path / "server", pki, mutual=False)
    try:
        context = tls_context(pki.ca_cert)
        first = ssl.PEM_cert_to_DER_cert(pki.server.cert.read_text())
        assert _served_certificate(server, context) == first
        renewed = pki.ca.issue_server(tmp_path / "renewed")
        shutil.copyfile(renewed.cert, pki.server.cert)
        shutil.copyfile(renewed.key, pki.server.key)

        assert server.process is not None
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        # Until the old worker is gone: asked to stop, it may still accept a
        # connection in its last instant.
        while not all(line in server.logs() for line in ("reloaded", "worker stopped")):
            assert time.monotonic() < deadline, "no reload"
            time.sleep(0.1)

        second = ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())
        assert second != first
        assert _served_certificate(server, context) == second
    finally:
        server.stop()
