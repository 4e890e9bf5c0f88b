"""A real reverse proxy on loopback in front of a test server: Debian's haproxy or
nginx, started on a free port with a generated configuration, set up the way
docs/operations.md tells operators to (WebSocket upgrade, X-Forwarded-For appended), or
haproxy as a layer-4 balancer that sends the PROXY protocol header."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.backend import free_port

HAPROXY = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client  30s
    timeout server  30s
    timeout tunnel  1h
    option  forwardfor
frontend deskbell
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    server n1 127.0.0.1:{backend}
"""

NGINX = """
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 90s;
        }}
    }}
}}
"""

HAPROXY_L4 = """
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client  30s
    timeout server  30s
frontend deskbell
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    server n1 127.0.0.1:{backend} {send_proxy}
"""

PROXIES = {"haproxy": "/usr/sbin/haproxy", "nginx": "/usr/sbin/nginx"}
"""Proxy name -> its binary (Debian packages haproxy and nginx-light)."""


def binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(PROXIES[name])


class ReverseProxy:
    """``name`` (haproxy or nginx) listening on a free port, forwarding to ``backend``;
    ``send_proxy`` (haproxy only: ``send-proxy`` or ``send-proxy-v2``) makes it a
    layer-4 balancer that announces each client with the PROXY protocol instead."""

    def __init__(self, name: str, backend: int, folder: Path, send_proxy: str | None = None):
        self.name = name
        self.send_proxy = send_proxy
        self.backend = backend
        self.folder = folder
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        path = binary(self.name)
        assert path is not None, f"{self.name} is not installed"
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / f"{self.name}.conf"
        if self.name == "haproxy":
            template = HAPROXY_L4 if self.send_proxy else HAPROXY
            config.write_text(
                template.format(port=self.port, backend=self.backend, send_proxy=self.send_proxy)
            )
            command = [path, "-db", "-f", str(config)]
        else:
            text = NGINX.format(port=self.port, backend=self.backend, folder=self.folder)
            config.write_text(text)
            command = [path, "-e", str(self.folder / "error.log"), "-c", str(config)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while not self._listening():
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"{self.name} did not start: {error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not listen on port {self.port}")
            time.sleep(0.01)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
