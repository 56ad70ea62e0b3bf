"""scripts/install-tools.sh (``make test``'s container-tools) without touching the machine.

Every case runs the script against a fake root (``ACTIVESCI_TOOLS_ROOT``: tools, ``apt-get`` and
``apt-cache`` are looked up only there) and a fake ``/etc/os-release`` (``ACTIVESCI_OS_RELEASE``).
The fake ``apt-get`` "installs" a package by creating its executable under the fake root.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-tools.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'
MINT = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\n'

#: apt-cache show of Ubuntu's transitional chromium-browser (abridged)
SNAP_STUB = """Package: chromium-browser
Version: 2:1snap1-0ubuntu2
Pre-Depends: debconf, snapd
Depends: debconf (>= 0.5) | debconf-2.0
Description-en: Transitional package - chromium-browser -> chromium snap
"""
#: apt-cache show of a real chromium (Debian's, or a PPA's on Ubuntu)
REAL = """Package: chromium
Version: 131.0.6778.85-1~deb12u1
Depends: libc6 (>= 2.34), chromium-common (= 131.0.6778.85-1~deb12u1)
Description-en: web browser
"""
#: where the fake apt-get puts each package's executable
BINARIES = {
    "podman": "usr/bin/podman",
    "runc": "usr/sbin/runc",
    "debootstrap": "usr/sbin/debootstrap",
    "chromium": "usr/bin/chromium",
    "chromium-browser": "usr/bin/chromium-browser",
}


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _fake_root(tmp_path: Path, *, apt: dict[str, str] | None = None, fail=()) -> Path:
    """A root with apt-get/apt-cache that know the packages ``apt`` (name: apt-cache show)."""
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    if apt is None:
        return root
    (root / "apt").mkdir()
    for name, show in apt.items():
        (root / "apt" / name).write_text(show)
    _executable(
        root / "usr" / "bin" / "apt-cache",
        f'#!/bin/sh\n[ "$1" = show ] || exit 1\ncat "{root}/apt/$3" 2>/dev/null || exit 100\n',
    )
    cases = "".join(
        f"    {pkg}) mkdir -p \"$(dirname {root}/{rel})\" && printf '#!/bin/sh\\n' > {root}/{rel}"
        f" && chmod +x {root}/{rel} ;;\n"
        for pkg, rel in BINARIES.items()
        if pkg not in fail
    )
    _executable(
        root / "usr" / "bin" / "apt-get",
        f'#!/bin/sh\necho "$*" >> {root}/apt-get.log\n[ "$1" = update ] && exit 0\n'
        f"for pkg; do :; done\ncase $pkg in\n{cases}    *) exit 100 ;;\nesac\n",
    )
    return root


def run(tmp_path: Path, root: Path, os_release: str, *args: str, **env: str):
    release = tmp_path / "os-release"
    release.write_text(os_release)
    environ = {k: v for k, v in os.environ.items() if k != "ACTIVESCI_CHROMIUM"}
    environ |= {"ACTIVESCI_TOOLS_ROOT": str(root), "ACTIVESCI_OS_RELEASE": str(release), **env}
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environ, timeout=60
    )
    lines = dict(
        line.removeprefix("install-tools: ").split(": ", 1)
        for line in done.stdout.splitlines()
        if line.count(": ") >= 2
    )
    return done, lines


def test_debian_dry_run_installs_each_tool_on_its_own(tmp_path):
    root = _fake_root(tmp_path, apt={"chromium": REAL})
    done, lines = run(tmp_path, root, DEBIAN, "--dry-run")
    assert done.returncode == 0
    assert lines == {
        tool: f"would install (apt-get install {tool})"
        for tool in ("podman", "runc", "debootstrap", "chromium")
    }
    assert not (root / "apt-get.log").exists()  # a dry run runs no apt-get


@pytest.mark.parametrize("os_release", [UBUNTU, MINT], ids=["ubuntu", "mint"])
def test_ubuntu_skips_the_chromium_snap_stub_and_installs_the_rest(tmp_path, os_release):
    root = _fake_root(tmp_path, apt={"chromium-browser": SNAP_STUB})
    done, lines = run(tmp_path, root, os_release, "--dry-run")
    assert done.returncode == 0
    assert lines["podman"] == "would install (apt-get install podman)"
    assert lines["debootstrap"] == "would install (apt-get install debootstrap)"
    why = lines["chromium"]
    assert why.startswith("skipped: ")
    assert "apt's chromium-browser is the snap stub (it depends on snapd)" in why
    assert "apt has no chromium" in why and "ACTIVESCI_CHROMIUM" in why


def test_ubuntu_installs_a_real_chromium_package(tmp_path):
    root = _fake_root(tmp_path, apt={"chromium": REAL, "chromium-browser": SNAP_STUB})
    _, lines = run(tmp_path, root, UBUNTU, "--dry-run", "chromium")
    assert lines == {"chromium": "would install (apt-get install chromium)"}


def test_install_goes_on_after_a_failure_and_never_fails(tmp_path):
    root = _fake_root(tmp_path, apt={"chromium": REAL}, fail=("debootstrap",))
    _executable(root / "usr" / "bin" / "podman")
    done, lines = run(tmp_path, root, DEBIAN)
    assert done.returncode == 0
    if os.geteuid() != 0:
        assert lines["runc"].startswith("skipped: installing needs root")
        return
    assert lines["podman"] == f"already there ({root}/usr/bin/podman)"
    assert lines["runc"] == f"installed ({root}/usr/sbin/runc, apt package runc)"
    assert lines["debootstrap"] == "skipped: apt-get install debootstrap failed"
    assert lines["chromium"] == f"installed ({root}/usr/bin/chromium, apt package chromium)"
    log = (root / "apt-get.log").read_text().splitlines()
    assert log[0] == "update -qq" and log.count("update -qq") == 1
    assert [line.split()[-1] for line in log[1:]] == ["runc", "debootstrap", "chromium"]


def test_without_apt_get_every_tool_is_skipped_with_the_reason(tmp_path):
    root = _fake_root(tmp_path)
    done, lines = run(tmp_path, root, FEDORA)
    assert done.returncode == 0 and len(lines) == 4
    assert set(lines.values()) == {
        "skipped: no apt-get on fedora (install it with the system's package manager)"
    }


def test_find_chromium_rejects_snaps_and_their_wrappers(tmp_path):
    root = _fake_root(tmp_path)
    find = ("--find-chromium",)
    done, _ = run(tmp_path, root, UBUNTU, *find)
    assert done.returncode == 1 and "no chromium at" in done.stderr

    # Ubuntu's /usr/bin/chromium-browser wrapper and a link into /snap are not browsers
    wrapper = (
        '#!/bin/sh\nif ! [ -x /snap/bin/chromium ]; then\n  echo "snap install chromium"\nfi\n'
    )
    _executable(root / "usr" / "bin" / "chromium-browser", wrapper)
    (root / "usr" / "bin" / "chromium").symlink_to("/snap/bin/chromium")
    done, _ = run(tmp_path, root, UBUNTU, *find)
    assert done.returncode == 1
    assert "chromium is a snap (/snap/bin/chromium)" in done.stderr
    assert "chromium-browser is Ubuntu's wrapper that runs the chromium snap" in done.stderr
    _, lines = run(tmp_path, root, UBUNTU, "--dry-run", "chromium")
    assert lines["chromium"].startswith("skipped: ")  # the stubs do not count as there

    # Debian's launcher script (no snap in it) and an explicit choice are
    real = _executable(root / "usr" / "lib" / "chromium" / "chromium", "\x7fELF fake binary")
    done, _ = run(tmp_path, root, DEBIAN, *find)
    assert done.returncode == 0 and done.stdout.strip() == str(real)
    mine = _executable(tmp_path / "mine" / "chrome")
    done, _ = run(tmp_path, root, UBUNTU, *find, ACTIVESCI_CHROMIUM=str(mine))
    assert done.returncode == 0 and done.stdout.strip() == str(mine)


def test_unknown_arguments_are_refused(tmp_path):
    done, _ = run(tmp_path, _fake_root(tmp_path), DEBIAN, "--dry-rnu")
    assert done.returncode == 2 and "unknown argument '--dry-rnu'" in done.stderr
