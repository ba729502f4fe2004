"""install.sh staged into a directory, and the systemd unit checked by systemd itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


def verify_unit(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    unit = tmp_path / "rtclean.service"
    unit.write_text(unit_text)
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)


@pytest.mark.slow
def test_staged_install_tree_and_unit(tmp_path):
    stage = tmp_path / "stage"
    r = subprocess.run([str(ROOT / "install.sh"), "--root", str(stage)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    assert "installed default config" in r.stdout
    for rel in ("opt/rtclean/venv/bin/rtclean", "etc/rtclean/rtclean.yaml",
                "etc/systemd/system/rtclean.service", "var/lib/rtclean/recordings", "opt/rtclean/models"):
        assert (stage / rel).exists(), rel
    # The installed program runs and validates the installed config.
    exe = stage / "opt/rtclean/venv/bin/rtclean"
    assert subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.startswith("rtclean ")
    # An edited config survives a second run.
    cfg = stage / "etc/rtclean/rtclean.yaml"
    cfg.write_text(cfg.read_text().replace("segment_s: 60", "segment_s: 30"))
    r2 = subprocess.run([str(ROOT / "install.sh"), "--root", str(stage)], capture_output=True, text=True,
                        timeout=900)
    assert r2.returncode == 0 and "kept existing config" in r2.stdout
    assert "segment_s: 30" in cfg.read_text()
    if shutil.which("systemd-analyze"):
        unit = (stage / "etc/systemd/system/rtclean.service").read_text()
        v = verify_unit(unit.replace("/opt/rtclean", str(stage / "opt/rtclean")), tmp_path)
        assert v.returncode == 0 and v.stderr.strip() == "", v.stderr


def test_unit_keys(tmp_path):
    text = (ROOT / "systemd" / "rtclean.service").read_text()
    for line in ("Type=notify", "RestartPreventExitStatus=2", "Restart=on-failure", "WatchdogSec=",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=rtclean"):
        assert line in text
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    # A misspelt key is only a warning for systemd: make sure we would see it.
    v = verify_unit(text.replace("/opt/rtclean/venv/bin/rtclean", "/bin/true").replace(
        "NoNewPrivileges", "NoNewPrivilege"), tmp_path)
    assert "Unknown key" in v.stderr or "unknown" in v.stderr.lower()
    v = verify_unit(text.replace("/opt/rtclean/venv/bin/rtclean", "/bin/true"), tmp_path)
    assert v.returncode == 0 and v.stderr.strip() == "", v.stderr


def test_install_rejects_unknown_option():
    r = subprocess.run([str(ROOT / "install.sh"), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
