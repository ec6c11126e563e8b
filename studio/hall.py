"""A lecture hall on one machine, to try it out: ``python -m studio.hall --replicas 3`` (``make hall
REPLICAS=3``) starts a local Ray head, that many app servers (``studio.serve``) sharing the
checkpoint folder, the classroom's queue on the cluster (``classroom.hall``) and one cookie secret,
and HAProxy in front of them at one address (``deploy/haproxy.cfg``); Ctrl-C stops them all. The
README's "A lecture hall" says how to spread the same over several machines.

    hall(replicas=2, port=8501, checkpoint_dir=folder, logs=folder / "logs")   # the same, from Python
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from classroom.hall import NAMESPACE, ClassroomServer
from vae.settings import ROOT, settings

BALANCER_CONFIG = ROOT / "deploy" / "haproxy.cfg"
RAY_PORT = 6380
REPLICA_PORTS = 8511  # the first replica's; the next ones count up from it
REPLICA_COOKIE = "VAE_STUDIO_REPLICA"  # the balancer's cookie (deploy/haproxy.cfg): the replica a browser is pinned to
STATS_PORT = 8404  # the balancer's page of each replica's state and sessions (on 127.0.0.1: the operator's)
START_S = 180  # for each part to answer: an app server imports torch and reads MNIST first
STOP_S = 5  # for each part to end when asked, before SIGKILL


class HallError(RuntimeError):
    """A part of the hall did not start; the message says which, with the end of its log."""


@dataclass
class Hall:
    """A running hall: its address, each replica's own, the Ray cluster's, and its parts' processes."""

    url: str
    replica_urls: list[str]
    ray_address: str
    logs: Path
    stats_url: str
    processes: dict[str, subprocess.Popen]  # "ray", "r1", "r2", ..., "balancer"

    def kill(self, part: str) -> None:
        """SIGKILL a part and what it started, as a crash would end it (a replica: "r1")."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[part].pid, signal.SIGKILL)
        self.processes[part].wait()

    def classroom_pid(self) -> int | None:
        """The process of the classroom's actor (``classroom.hall``) on this hall's Ray head, if it runs."""
        head = str(self.processes["ray"].pid)  # its session: every Ray process it started, workers too
        found = subprocess.run(["pgrep", "-s", head, "-f", f"ray::{ClassroomServer.__name__}"], capture_output=True,
                               text=True).stdout.split()
        return int(found[0]) if found else None

    def kill_classroom(self) -> None:
        """SIGKILL the classroom's actor, as a crash would end it (Ray starts it again)."""
        os.kill(self.classroom_pid(), signal.SIGKILL)

    def replicas(self) -> dict[str, dict]:
        """Each replica's state as the balancer sees it: {"r1": {"status": "UP", "sessions": 3}, ...}."""
        with urllib.request.urlopen(f"{self.stats_url}/;csv", timeout=5) as response:
            rows = csv.DictReader(response.read().decode().removeprefix("# ").splitlines())
            return {row["svname"]: {"status": row["status"], "sessions": int(row["scur"])} for row in rows
                    if row["pxname"] == "replicas" and row["svname"] not in ("FRONTEND", "BACKEND")}


@contextlib.contextmanager
def hall(replica_ports: list[int], port: int, checkpoint_dir: Path, logs: Path, *, host: str = "127.0.0.1",
         ray_port: int = RAY_PORT, stats_port: int = STATS_PORT, public_url: str = "") -> Iterator[Hall]:
    """The whole hall, a replica on each of ``replica_ports``, up and answering at ``http://host:port``
    until the block ends (then stopped, its parts' logs kept in ``logs``). Raises HallError, saying
    which part, if one does not start."""
    logs.mkdir(parents=True, exist_ok=True)
    ray_address = f"127.0.0.1:{ray_port}"
    environment = {**os.environ,
                   "RAY_AUTH_MODE": "token",  # as `ray start` sets its cluster up: its token, in ~/.ray
                   "VAE_CHECKPOINT_DIR": str(checkpoint_dir.resolve()),
                   "VAE_DATA_DIR": str(settings().data_dir.resolve()),
                   "VAE_STUDIO_RAY_ADDRESS": ray_address,
                   "VAE_STUDIO_PUBLIC_URL": public_url or f"http://{_visible(host)}:{port}",  # the class links
                   # One secret for every replica, so that a browser sent to another keeps its uploads' and
                   # forms' XSRF cookie valid.
                   "STREAMLIT_SERVER_COOKIE_SECRET": os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET")
                   or secrets.token_hex(32)}
    processes: dict[str, subprocess.Popen] = {}
    try:
        ray = str(Path(sys.executable).with_name("ray"))  # this environment's
        processes["ray"] = _start([ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port",
                                   str(ray_port), "--num-cpus", str(len(os.sched_getaffinity(0))),
                                   "--include-dashboard", "false", "--disable-usage-stats"], environment,
                                  logs / "ray.log")
        _until(lambda: "Ray runtime started" in _tail(logs / "ray.log"), "the Ray head", processes["ray"],
               logs / "ray.log")
        replica_urls = []
        here = "127.0.0.1" if host in ("0.0.0.0", "") else host  # how the balancer, on this machine, reaches them
        for n, replica_port in enumerate(replica_ports, start=1):
            processes[f"r{n}"] = _start([sys.executable, "-m", "studio.serve", "--server.port", str(replica_port),
                                         "--server.address", host, "--server.headless", "true",
                                         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                                        environment, logs / f"r{n}.log")
            replica_urls.append(f"http://{here}:{replica_port}")
        for n, url in enumerate(replica_urls, start=1):
            _until(lambda url=url: _answers(url), f"app server r{n}", processes[f"r{n}"], logs / f"r{n}.log")
        config = logs / "haproxy.cfg"
        config.write_text(BALANCER_CONFIG.read_text() + "".join(
            f"    server r{n} {url.removeprefix('http://')} cookie r{n} check\n"
            for n, url in enumerate(replica_urls, start=1)))
        processes["balancer"] = _start(["haproxy", "-db", "-f", str(config)],
                                       {**environment, "HALL_BIND": f"{host}:{port}",
                                        "HALL_STATS_BIND": f"127.0.0.1:{stats_port}"}, logs / "balancer.log")
        url = f"http://{here}:{port}"
        _until(lambda: _answers(url), "the balancer", processes["balancer"], logs / "balancer.log")
        yield Hall(url, replica_urls, ray_address, logs, f"http://127.0.0.1:{stats_port}", processes)
    finally:  # the balancer and the replicas together, then the Ray head they were connected to
        _stop([process for name, process in processes.items() if name != "ray"], signal.SIGTERM)
        if "ray" in processes:
            _stop([processes["ray"]], signal.SIGINT)  # `ray start --block` stops on SIGINT, ignores SIGTERM


def _start(command: list[str], environment: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: stopped with what it started


def _until(ready, part: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            why = f"exited with code {process.returncode}" if process.poll() is not None else \
                f"did not answer within {START_S} s"
            raise HallError(f"{part} {why}; the end of {log}:\n{_tail(log)}")
        time.sleep(0.25)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else ""


def _stop(parts: list[subprocess.Popen], first: signal.Signals) -> None:
    """Send each part ``first``, then SIGKILL what is left of their process groups after STOP_S."""
    for process in parts:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, first)
    deadline = time.monotonic() + STOP_S
    for process in parts:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(deadline - time.monotonic(), 0))
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def network_host() -> str:
    """This machine's address on its network, "" when it has none but its loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # sends nothing: it picks the interface a packet would leave by
            host = probe.getsockname()[0]
        except OSError:
            return ""
    return "" if host.startswith("127.") else host


def _visible(host: str) -> str:
    """The address other machines reach a server bound to ``host`` at."""
    return (network_host() or "localhost") if host in ("0.0.0.0", "") else host


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studio.hall", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=3, help="app servers behind the balancer (default: %(default)s)")
    p.add_argument("--port", type=int, default=8501, help="the balancer's, the hall's address (default: %(default)s)")
    p.add_argument("--host", default="0.0.0.0", help="the address the balancer and the replicas listen on "
                   "(default: %(default)s, every interface; 127.0.0.1: this machine's browsers only)")
    p.add_argument("--public-url", default=settings().public_url,
                   help="the address students use, for class links (default: $VAE_STUDIO_PUBLIC_URL, else this "
                        "machine's network address and --port)")
    p.add_argument("--ray-port", type=int, default=RAY_PORT, help="the Ray head's port (default: %(default)s)")
    p.add_argument("--logs", type=Path, help="the parts' logs (default: a new temporary folder)")
    args = p.parse_args(argv)
    if args.replicas < 1:
        p.error("--replicas is at least 1")
    if shutil.which("haproxy") is None:
        print("error: the balancer, HAProxy, is not installed: `make hall` installs it (Debian's haproxy).",
              file=sys.stderr)
        return 1
    logs = args.logs or Path(tempfile.mkdtemp(prefix="vae-hall-"))
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop the parts, even where a shell started this with Ctrl-C ignored
        signal.signal(sig, signal.default_int_handler)
    print(f"Starting a Ray head, {args.replicas} app servers and the balancer (logs in {logs})...", flush=True)
    try:
        with hall(list(range(REPLICA_PORTS, REPLICA_PORTS + args.replicas)), args.port, settings().checkpoint_dir,
                  logs, host=args.host, ray_port=args.ray_port, public_url=args.public_url) as running:
            print(f"The hall is open at {running.url}; app servers at {', '.join(running.replica_urls)}, Ray at "
                  f"{running.ray_address} (namespace {NAMESPACE}), the balancer's page of them at {running.stats_url}. "
                  "Ctrl-C stops it.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while all(process.poll() is None for process in running.processes.values()):
                    time.sleep(1)
            ended = [name for name, process in running.processes.items() if process.poll() is not None]
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C would leave parts running
            print(f"{', '.join(ended)} ended. " * bool(ended) + "Stopping the hall...", flush=True)
    except HallError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # while it started
        return 130
    return 1 if ended else 0

if __name__ == "__main__":
    sys.exit(main())
