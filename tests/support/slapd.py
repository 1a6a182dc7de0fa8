"""A throwaway OpenLDAP slapd on loopback, with a small directory loaded.

The directory, under dc=example,dc=org:

    ou=people   alice, bob ({SSHA} password), carol (no groups), and a user
                whose uid holds DN and filter special characters
    ou=groups   developers, admins, oddballs; readable by any bound user
    ou=teams    blue; readable only by the service account cn=reader
    cn=reader   the service account

slapd runs as a daemon, started from a slapd.conf in a temporary folder, and
is stopped by the PID in its pidfile. It also offers StartTLS with a
certificate for 127.0.0.1 signed by a CA made for the run (`ca_file`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3 import Connection, Server

from tests.support.server import free_port

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
TEAMS = f"ou=teams,{SUFFIX}"
# Every character the DN and filter grammars treat specially, in one uid.
ODD_UID = "o*)(dd, user\\"

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class User:
    uid: str
    password: str
    hashed: bool = False

    @property
    def dn(self) -> str:
        return f"uid={_escape_dn_value(self.uid)},{PEOPLE}"


ALICE = User("alice", "alice-secret")
BOB = User("bob", "bob-secret", hashed=True)
CAROL = User("carol", "carol-secret")
ODD = User(ODD_UID, "odd-secret")
USERS = (ALICE, BOB, CAROL, ODD)

# group base -> group name -> members
GROUP_MEMBERS: dict[str, dict[str, tuple[User, ...]]] = {
    GROUPS: {"developers": (ALICE, BOB), "admins": (ALICE,), "oddballs": (ODD,)},
    TEAMS: {"blue": (ALICE, BOB)},
}


def slapd_binary() -> Path:
    """slapd's path; skips the test when it is missing, or fails it under CI."""
    found = shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin")
    if found is None:
        message = "slapd is not installed (apt-get install slapd ldap-utils)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


class Slapd:
    """One slapd process serving the directory above on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.binary = slapd_binary()
        self.pidfile = workdir / "slapd.pid"
        self.ca_file = workdir / "ca.pem"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> Slapd:
        _write_certificates(self.workdir)
        (self.workdir / "data").mkdir()
        config = self.workdir / "slapd.conf"
        config.write_text(_config(self.workdir))
        ldif = self.workdir / "directory.ldif"
        ldif.write_text(_directory_ldif())
        _run(self.binary.parent / "slapadd", "-q", "-f", config, "-l", ldif)
        # slapd reports configuration errors, then detaches.
        _run(self.binary, "-f", config, "-h", f"{self.url}/")
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        # slapd removes its pidfile as it exits; a zombie still answers kill(0).
        while self.pidfile.exists() and _alive(pid):
            if time.monotonic() > deadline:
                _signal(pid, signal.SIGKILL)
                break
            time.sleep(0.05)

    def __enter__(self) -> Slapd:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not answer on {self.url}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        server = Server(self.url, connect_timeout=1)
        connection = Connection(server, ROOT_DN, ROOT_PASSWORD, receive_timeout=1)
        try:
            return bool(connection.bind())
        except Exception:
            return False
        finally:
            connection.unbind()


def ssha(password: str) -> str:
    """A salted SHA-1 userPassword value, as slappasswd makes by default."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _escape_dn_value(value: str) -> str:
    # RFC 4514, section 2.4; enough for the uids above.
    for char in '\\,+"<>;=':
        value = value.replace(char, "\\" + char)
    return value


def _config(workdir: Path) -> str:
    schemas = "\n".join(
        f"include {SCHEMA_DIR / name}.schema"
        for name in ("core", "cosine", "inetorgperson")
    )
    return f"""{schemas}
modulepath {MODULE_DIR}
moduleload back_mdb
pidfile {workdir / "slapd.pid"}
argsfile {workdir / "slapd.args"}
TLSCertificateFile {workdir / "server.pem"}
TLSCertificateKeyFile {workdir / "server-key.pem"}

database mdb
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {workdir / "data"}

access to attrs=userPassword
    by anonymous auth
    by * none
access to dn.subtree="{TEAMS}"
    by dn.exact="{READER_DN}" read
    by * none
access to *
    by users read
    by * none
"""


def _directory_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "dc: example\no: Example",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\n"
        f"objectClass: simpleSecurityObject\ncn: reader\n"
        f"userPassword: {READER_PASSWORD}",
    ]
    for base in (PEOPLE, GROUPS, TEAMS):
        name = base.split(",")[0].removeprefix("ou=")
        entries.append(f"dn: {base}\nobjectClass: organizationalUnit\nou: {name}")
    entries.extend(_user_entry(user) for user in USERS)
    for base, groups in GROUP_MEMBERS.items():
        for name, members in groups.items():
            lines = [
                f"dn: cn={name},{base}",
                "objectClass: groupOfNames",
                f"cn: {name}",
            ]
            lines.extend(f"member: {member.dn}" for member in members)
            entries.append("\n".join(lines))
    return "\n\n".join(entries) + "\n"


def _user_entry(user: User) -> str:
    password = ssha(user.password) if user.hashed else user.password
    return (
        f"dn: {user.dn}\nobjectClass: inetOrgPerson\nuid: {user.uid}\n"
        f"cn: {user.uid}\nsn: {user.uid}\nuserPassword: {password}"
    )


def _write_certificates(workdir: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, valid for a day."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ldap ca")])
    ca = (
        _certificate_builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    address = ipaddress.ip_address("127.0.0.1")
    server = (
        _certificate_builder(server_name, ca_name, server_key.public_key())
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(address)]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (workdir / "ca.pem").write_bytes(ca.public_bytes(pem))
    (workdir / "server.pem").write_bytes(server.public_bytes(pem))
    (workdir / "server-key.pem").write_bytes(
        server_key.private_bytes(
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _run(*command: str | Path) -> None:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()}")


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
