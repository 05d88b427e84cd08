"""Run a real nginx with the repo's config in front of one or more API instances.

The native stack (tests, `recsys bench outage`) uses the same server block as
docker-compose (nginx/templates/recsys.conf.template), wrapped in a throwaway main
config whose every path lies in a work folder, so nginx runs without root-owned paths
or a daemon.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "nginx" / "templates" / "recsys.conf.template"
STARTUP_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0

# Every temp folder nginx would otherwise create under its compiled-in root-owned
# prefix; the last three only exist when their modules are compiled in.
_TEMP_PATHS = {
    "client_body_temp_path": None,
    "proxy_temp_path": None,
    "fastcgi_temp_path": "http_fastcgi_module",
    "uwsgi_temp_path": "http_uwsgi_module",
    "scgi_temp_path": "http_scgi_module",
}


class NginxError(RuntimeError):
    """nginx is missing, rejected the config, or did not start; the message says why."""


def find_nginx() -> str:
    """Path of the nginx binary (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise NginxError("nginx not found: install it (apt-get install -y nginx-light)")
    return found


@dataclass(frozen=True)
class Limits:
    """The rate limit per client address (compose: NGINX_RATE_LIMIT, NGINX_RATE_BURST)."""

    rate: str = "50r/s"
    burst: int = 100


def installed() -> bool:
    try:
        find_nginx()
    except NginxError:
        return False
    return True


def render_template(
    upstreams: list[str], port: int, limits: Limits | None = None, template: Path = TEMPLATE
) -> str:
    """The server block with only our variables filled in, as the image's envsubst does.

    Not string.Template: it would also try to substitute nginx's own `$request_id` & co.
    """
    limits = limits or Limits()
    values = {
        "NGINX_PORT": str(port),
        "RECSYS_UPSTREAM_SERVERS": " ".join(f"server {u};" for u in upstreams),
        "NGINX_RATE_LIMIT": limits.rate,
        "NGINX_RATE_BURST": str(limits.burst),
    }
    text = template.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def write_config(
    nginx: str, upstreams: list[str], port: int, workdir: Path, limits: Limits | None
) -> Path:
    """Write the rendered server block and a standalone nginx.conf; return the latter."""
    workdir.mkdir(parents=True, exist_ok=True)
    server_block = workdir / "recsys.conf"
    server_block.write_text(render_template(upstreams, port, limits))
    compiled = _compiled_options(nginx)
    temp_paths = "\n".join(
        f"    {directive} {workdir / directive.removesuffix('_path')};"
        for directive, module in _TEMP_PATHS.items()
        if module is None or f"--without-{module}" not in compiled
    )
    # As root, nginx would hand requests to `nobody` workers, which cannot enter a
    # private temp folder (pytest's tmp_path is 0700) to buffer large responses.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} info;

events {{
    worker_connections 256;
}}

http {{
    # No mime.types include: the API and the JSON error pages set their own types.
    default_type application/octet-stream;
    access_log {workdir / "access.log"};
{temp_paths}
    include {server_block};
}}
"""
    )
    return conf


@contextmanager
def run_nginx(
    upstreams: list[str], port: int, workdir: Path, limits: Limits | None = None
) -> Iterator[str]:
    """Run nginx on `port` proxying to `upstreams` (host:port each); yield its base URL.

    The server block logs requests to stdout, which lands in workdir/access.log.
    """
    nginx = find_nginx()
    conf = write_config(nginx, upstreams, port, workdir, limits)
    error_log = workdir / "error.log"
    command = [nginx, "-c", str(conf), "-p", f"{workdir}/", "-e", str(error_log)]
    _check_config(command, error_log)
    if _accepts_connections(port):
        raise NginxError(f"port {port} is already in use")
    with (workdir / "access.log").open("ab") as stdout:
        # Own session, so a kill on the way out also reaches the workers.
        process = subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_listening(process, port, error_log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _compiled_options(nginx: str) -> str:
    result = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr  # nginx prints its build options on stderr


def _check_config(command: list[str], error_log: Path) -> None:
    result = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NginxError(
            f"nginx rejected its config ({command[2]}):\n{result.stdout}{result.stderr}"
            f"{_read(error_log)}"
        )


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, error_log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxError(
                f"nginx exited with code {process.returncode} on start:\n{_read(error_log)}"
            )
        if _accepts_connections(port):
            return
        time.sleep(0.05)
    _stop(process)
    raise NginxError(
        f"nginx did not listen on port {port} within {STARTUP_TIMEOUT_SECONDS:.0f}s:\n"
        f"{_read(error_log)}"
    )


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # SIGTERM: nginx's fast shutdown, workers included
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no error log written)"
