"""Fixtures that run a real continuumd for the tests.

The daemon binary comes from $CONTINUUMD when set (make test builds it once),
else it is built here with `go build ./cmd/continuumd` into a temp folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


class Daemon:
    """One continuumd process on a private socket folder."""

    def __init__(self, binary: str, root: str, extra=()):
        self.binary = binary
        self.root = root
        self.extra = list(extra)
        os.makedirs(os.path.join(root, "run"), mode=0o700, exist_ok=True)
        self.socket = os.path.join(root, "run", "d.sock")
        self.state = os.path.join(root, "state")
        self.proc = None

    def start(self) -> "Daemon":
        log = open(os.path.join(self.root, "continuumd.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--socket", self.socket, "--state-dir", self.state, *self.extra],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None:
                raise RuntimeError("continuumd exited: " + open(os.path.join(self.root, "continuumd.log")).read())
            if time.monotonic() > deadline:
                raise RuntimeError("continuumd did not start listening")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def continuumd_binary():
    binary = os.environ.get("CONTINUUMD")
    if binary:
        yield binary
        return
    d = tempfile.mkdtemp(prefix="continuumd-bin-")
    binary = os.path.join(d, "continuumd")
    subprocess.run(["go", "build", "-o", binary, "./cmd/continuumd"], cwd=REPO, check=True)
    yield binary
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def daemon(continuumd_binary):
    root = tempfile.mkdtemp(prefix="continuum-py-")
    d = Daemon(continuumd_binary, root).start()
    yield d
    d.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_daemon(continuumd_binary):
    """A daemon of the test's own, for tests that stop and restart it."""
    root = tempfile.mkdtemp(prefix="continuum-py-")
    d = Daemon(continuumd_binary, root).start()
    yield d
    d.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def client(daemon):
    from continuum_client import Client

    with Client(daemon.socket) as c:
        yield c
