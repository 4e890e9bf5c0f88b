"""Real network parts for tests: tinyproxy on loopback, a small HTTP file server (PAC
files), and a private certificate authority made on the spot.

Each is started with a generated configuration on a free port and stopped by its
context manager, so tests running side by side never share one.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import http.server
import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.backend import free_port
from tests.support.waiting import wait_until


@dataclass
class Tinyproxy:
    """A running tinyproxy: its address and what its log says."""

    port: int
    log_file: Path
    credentials: tuple[str, str] | None

    def url(self, *, with_credentials: bool = True) -> str:
        """``http://[user:password@]127.0.0.1:port``."""
        if with_credentials and self.credentials is not None:
            user, password = self.credentials
            return f"http://{user}:{password}@127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tunnels_to(self, port: int) -> int:
        """How many CONNECT requests for 127.0.0.1:``port`` the proxy received."""
        return len(re.findall(rf"CONNECT 127\.0\.0\.1:{port} ", self.log()))

    def established(self) -> int:
        """How many connections the proxy opened to a server for its clients."""
        return self.log().count('Established connection to host "127.0.0.1"')


@contextlib.contextmanager
def tinyproxy(workdir: Path, credentials: tuple[str, str] | None = None) -> Iterator[Tinyproxy]:
    """Run Debian's tinyproxy on a free loopback port, optionally with Basic auth."""
    binary = shutil.which("tinyproxy") or (
        "/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None
    )
    if binary is None:
        pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o777)  # tinyproxy may drop to another user to write its log
    port = free_port()
    log_file = workdir / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 600",
        f'LogFile "{log_file}"',
        "LogLevel Info",
        "MaxClients 50",
        "Allow 127.0.0.1",
    ]
    if credentials is not None:
        lines.append(f"BasicAuth {credentials[0]} {credentials[1]}")
    config = workdir / "tinyproxy.conf"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.Popen(
        [binary, "-d", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = Tinyproxy(port, log_file, credentials)
    try:
        wait_until(
            lambda: "Accepting connections" in proxy.log() or proc.poll() is not None,
            timeout=10,
            what="tinyproxy to listen",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"tinyproxy exited with {proc.returncode}: {proxy.log()}")
        yield proxy
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Microsocks:
    """A running microsocks (SOCKS5): its address and the connections it made."""

    port: int
    log_file: Path
    credentials: tuple[str, str] | None

    def url(self, scheme: str = "socks5h", *, with_credentials: bool = True) -> str:
        if with_credentials and self.credentials is not None:
            user, password = self.credentials
            return f"{scheme}://{user}:{password}@127.0.0.1:{self.port}"
        return f"{scheme}://127.0.0.1:{self.port}"

    def connections_to(self, port: int) -> int:
        """How many connections to 127.0.0.1:``port`` the proxy made for its clients."""
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return len(re.findall(rf"connected to 127\.0\.0\.1:{port}\b", text))


@contextlib.contextmanager
def microsocks(workdir: Path, credentials: tuple[str, str] | None = None) -> Iterator[Microsocks]:
    """Run Debian's microsocks on a free loopback port, optionally with user/password."""
    binary = shutil.which("microsocks")
    if binary is None:
        pytest.skip("microsocks is not installed (apt-get install microsocks)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_file = workdir / "microsocks.log"
    command = [binary, "-i", "127.0.0.1", "-p", str(port)]
    if credentials is not None:
        command += ["-u", credentials[0], "-P", credentials[1]]
    with log_file.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    proxy = Microsocks(port, log_file, credentials)
    try:
        wait_until(lambda: _accepts(port) or proc.poll() is not None, what="microsocks")
        if proc.poll() is not None:
            raise RuntimeError(f"microsocks exited with {proc.returncode}")
        yield proxy
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".pac": "application/x-ns-proxy-autoconfig",
    }

    def log_message(self, format: str, *args: object) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


@dataclass
class FileServer:
    port: int
    requests: list[str]
    scheme: str = "http"

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def file_server(directory: Path, tls: PrivateCa | None = None) -> Iterator[FileServer]:
    """Serve ``directory`` over HTTP (HTTPS with ``tls``'s server certificate) on a free
    loopback port, from a thread of this process."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.server_cert, tls.server_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    requests: list[str] = []
    server.requests = requests  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(int(server.server_address[1]), requests, "https" if tls else "http")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class PrivateCa:
    """A CA made for one test, and a server certificate it signed for 127.0.0.1."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_private_ca(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> PrivateCa:
    """Create a CA and a server certificate it signed (for ``hosts``) as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Deskbell Test Company CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = PrivateCa(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
