"""The automatic upgrade installs only verified code, and fetches and builds it without root.

roles/upgrade/files/sealmail-upgrade-build is run here as it runs on a host: as an unprivileged
user, against a real git repository whose commits are signed (or not) with real SSH keys, and
verified by git itself (``git verify-commit``/``verify-tag`` with ``gpg.format=ssh`` and an
allowed-signers file, see ssh-keygen(1) ALLOWED SIGNERS). The whole upgrade on a host (switch,
health check, rollback) is the Molecule scenario ``upgrade``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "roles/upgrade/files/sealmail-upgrade-build"
ORCHESTRATOR = ROOT / "roles/upgrade/templates/usr/local/sbin/sealmail-auto-upgrade.j2"
IS_ROOT = os.geteuid() == 0
BUILDER = "nobody"  # stands for sealmail-build: any account without privileges

pytestmark = pytest.mark.tool("ssh-keygen")


@dataclass
class Repo:
    url: str
    signers: Path
    commits: dict[str, str]  # branch or tag -> commit id
    work: Path


def _git(cwd: Path, *args: str, key: Path | None = None) -> str:
    config = ["-c", "user.name=Release", "-c", "user.email=release@example.test", "-c", "gpg.format=ssh"]
    if key is not None:
        config += ["-c", f"user.signingkey={key}"]
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    result = subprocess.run(["git", *config, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A directory the unprivileged user can read (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="sealmail-upgrade-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="module")
def repo(base: Path) -> Repo:
    keys = base / "keys"
    keys.mkdir(mode=0o700)
    for name in ("release", "attacker"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name)], check=True)
    signers = base / "allowed_signers"
    signers.write_text(f'release@example.test namespaces="git" {(keys / "release.pub").read_text()}')
    signers.chmod(0o644)
    release, attacker = keys / "release", keys / "attacker"

    src = base / "src"
    (src / "app").mkdir(parents=True)
    (src / "app/pyproject.toml").write_text('[project]\nname = "sealmail"\nversion = "1.0"\n')
    _git(src, "init", "-q", "-b", "main")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-S", "-m", "1.0, signed by the release key", key=release)
    commits = {"main": _git(src, "rev-parse", "HEAD")}
    _git(src, "tag", "-s", "-m", "1.0", "v1.0", key=release)

    # An unsigned commit on top of the signed one (someone with push access, or a mirror).
    _git(src, "checkout", "-q", "-b", "unsigned")
    (src / "app/backdoor.py").write_text("import os\n")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "unsigned")
    commits["unsigned"] = _git(src, "rev-parse", "HEAD")
    # An annotated but unsigned tag on it; and a signed tag on it (the tag vouches for the commit).
    _git(src, "tag", "-a", "-m", "looks official", "v1.1-unsigned")
    _git(src, "tag", "-s", "-m", "1.1", "v1.1", key=release)

    # Signed, with a key that is not an allowed signer, in the release manager's name.
    _git(src, "checkout", "-q", "-b", "forged", "main")
    (src / "app/backdoor.py").write_text("import os\n")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-S", "-m", "signed by another key", key=attacker)
    commits["forged"] = _git(src, "rev-parse", "HEAD")

    # The release key's real signature, copied onto a commit with other content.
    signed = _git(src, "cat-file", "commit", commits["main"])
    tampered = signed.replace("1.0, signed by the release key", "1.0, signed by the release key!") + "\n"
    (base / "tampered").write_text(tampered)
    commits["tampered"] = _git(src, "hash-object", "-t", "commit", "-w", str(base / "tampered"))
    _git(src, "branch", "tampered", commits["tampered"])
    commits["v1.0"] = commits["main"]
    commits["v1.1"] = commits["v1.1-unsigned"] = commits["unsigned"]

    bare = base / "sealmail.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    keys.chmod(0o700)
    if IS_ROOT:  # git refuses a repository another user owns ("dubious ownership")
        subprocess.run(["chown", "-R", BUILDER, str(bare)], check=True)
    return Repo(url=f"file://{bare}", signers=signers, commits=commits, work=base)


@pytest.fixture
def dest(repo: Repo) -> Iterator[Path]:
    """The staging directory, owned by the build user as on a host."""
    work = Path(tempfile.mkdtemp(prefix="stage-", dir=repo.work))
    if IS_ROOT:
        user = pwd.getpwnam(BUILDER)
        os.chown(work, user.pw_uid, user.pw_gid)
    yield work / "src"
    shutil.rmtree(work)


def fetch(repo: Repo, dest: Path, ref: str, *, signers: bool = True, pin: str = "", as_root: bool = False):
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(dest.parent)}
    if signers:
        env["UPGRADE_ALLOWED_SIGNERS"] = str(repo.signers)
    if pin:
        env["UPGRADE_PINNED_COMMIT"] = pin
    command = ["bash", str(HELPER), "fetch", repo.url, ref, str(dest)]
    if IS_ROOT and not as_root:
        command = ["setpriv", f"--reuid={BUILDER}", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def _accepted(result, repo: Repo, dest: Path, ref: str) -> None:
    assert result.returncode == 0, result.stderr
    commit, timestamp = result.stdout.split()
    assert commit == repo.commits[ref]
    assert timestamp.isdigit()
    assert (dest / "app/pyproject.toml").is_file()  # checked out


def _refused(result, dest: Path, reason: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "REFUSED" in result.stderr
    assert reason in result.stderr
    assert result.stdout == ""  # no commit for the installer to build
    assert not (dest / "app").exists()  # nothing checked out


def test_a_commit_signed_by_an_allowed_signer_is_accepted(repo, dest):
    """git verify-commit with gpg.format=ssh: a good signature by a key in the allowed signers."""
    _accepted(fetch(repo, dest, "main"), repo, dest, "main")


def test_an_unsigned_commit_on_top_of_a_signed_one_is_refused(repo, dest):
    _refused(fetch(repo, dest, "unsigned"), dest, "has no good signature by an allowed signer (git says: N")


def test_a_commit_signed_by_a_key_that_is_not_allowed_is_refused(repo, dest):
    _refused(fetch(repo, dest, "forged"), dest, "has no good signature by an allowed signer (git says: U")


def test_a_real_signature_copied_onto_other_content_is_refused(repo, dest):
    _refused(fetch(repo, dest, "tampered"), dest, "has no good signature by an allowed signer (git says: B")


def test_a_signed_tag_vouches_for_the_commit_it_names(repo, dest):
    """git verify-tag: an annotated tag signed by an allowed signer."""
    _accepted(fetch(repo, dest, "v1.1"), repo, dest, "v1.1")


def test_an_unsigned_tag_on_an_unsigned_commit_is_refused(repo, dest):
    _refused(fetch(repo, dest, "v1.1-unsigned"), dest, "has no good signature")


def test_nothing_is_installed_without_signers_or_a_pin(repo, dest):
    """The default: no verification configured means no automatic upgrade at all."""
    _refused(fetch(repo, dest, "main", signers=False), dest, "no allowed signers and no pinned commit")


def test_a_pinned_commit_is_installed_whatever_its_signature(repo, dest):
    """The operator reviewed this exact commit: its id is the check."""
    result = fetch(repo, dest, "main", signers=False, pin=repo.commits["unsigned"])
    _accepted(result, repo, dest, "unsigned")


def test_a_pin_and_signers_together_need_both(repo, dest):
    _refused(fetch(repo, dest, "main", pin=repo.commits["unsigned"]), dest, "has no good signature")


@pytest.mark.parametrize("pin", ["main", "v1.0", "abc123"])
def test_a_pin_must_be_a_full_commit_id(repo, dest, pin):
    _refused(fetch(repo, dest, "main", signers=False, pin=pin), dest, "is not a full commit id")


@pytest.mark.skipif(not IS_ROOT, reason="needs root to become the build user")
def test_the_fetch_runs_and_writes_as_the_build_user(repo, dest):
    result = fetch(repo, dest, "main")
    _accepted(result, repo, dest, "main")
    builder = pwd.getpwnam(BUILDER).pw_uid
    owners = {path.stat().st_uid for path in [dest, *dest.rglob("*")]}
    assert owners == {builder}


@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_the_helper_refuses_to_run_as_root(repo, dest):
    result = fetch(repo, dest, "main", as_root=True)
    assert result.returncode == 1
    assert "never as root" in result.stderr
    assert not dest.exists()


def test_the_orchestrator_runs_fetch_build_and_new_code_only_as_other_users():
    """Root only switches: every call of the helper and of the new release's programs goes
    through the sandbox as the build user (fetch, build) or the service user (checks)."""
    text = ORCHESTRATOR.read_text()
    runs = [line.strip() for line in text.splitlines() if re.search(r"\$HELPER|\$new/bin/", line)]
    assert runs, "the orchestrator no longer runs the helper?"
    for line in runs:
        assert re.search(r"\bas_user (\"\$BUILDER\"|\"\$SERVICE_USER\")", line), line
    assert re.search(r"^BUILDER=.*sealmail-build|upgrade__build_user", text, re.M)
    assert "--uid=" in text  # as_user: systemd-run --uid=...
