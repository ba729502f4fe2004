"""Configuration validation: every bad key names itself, its line and what was expected."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from rtclean import config
from rtclean.errors import ConfigError
from tests.conftest import ROOT


def test_defaults_round_trip():
    cfg = config.parse("")
    assert cfg == config.Config()
    assert cfg.record.segment_s == 60.0 and cfg.repair.max_hold_ms == 1000.0


@pytest.mark.parametrize("name", ["rtclean.yaml", "demo.yaml"])
def test_shipped_configs_load(name):
    config.load(ROOT / "config" / name)


def test_shipped_config_documents_every_option():
    """config/rtclean.yaml shows every key with its default value."""
    data = yaml.safe_load((ROOT / "config" / "rtclean.yaml").read_text())
    flat = {}

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = v

    walk(data)
    options = {path: default for path, default, _ in config.describe()}
    assert set(flat) == set(options)
    # Only the Pi-specific choices differ from the built-in defaults.
    differ = {k for k in options if flat[k] != options[k]}
    assert differ == {"record.dir", "live.host"}


@pytest.mark.parametrize("text, needle", [
    ("source:\n  kind: v4l2\n  colour: red\n", "<t>:3: source.colour: unknown key"),
    ("record:\n  segment_s: 0\n", "<t>:2: record.segment_s: expected a number in [1, 3600], got 0.0"),
    ("record:\n  segment_s: soon\n", "<t>:2: record.segment_s: expected a number in [1, 3600], got 'soon'"),
    ("live:\n  port: 70000\n", "live.port: expected an integer in [0, 65535], got 70000"),
    ("live:\n  port: 80.5\n", "live.port: expected an integer"),
    ("live:\n  enabled: 1\n", "live.enabled: expected true or false, got 1"),
    ("repair:\n  on_lost: blank\n", "repair.on_lost: expected one of overlay, raw, got 'blank'"),
    ("detect:\n  threshold: true\n", "detect.threshold: expected a number in [0, 1], got True"),
    ("source:\n  v4l2: [1, 2]\n", "<t>:2: source.v4l2: expected a mapping"),
    ("source:\n  kind: [demo]\n", "source.kind: expected one of v4l2, picamera2, file, demo"),
    ("nonsense: 1\n", "<t>:1: nonsense: unknown key"),
    ("record: {dir: x\n", "<t>:2: not valid YAML"),
])
def test_bad_values_name_key_line_and_expectation(text, needle):
    with pytest.raises(ConfigError) as e:
        config.parse(text, "<t>")
    assert needle in str(e.value)
    assert e.value.exit_code == 2


def test_set_option_validates_like_yaml():
    cfg = config.Config()
    config.set_option(cfg, "repair.max_hold_ms", "250")
    assert cfg.repair.max_hold_ms == 250.0
    config.set_option(cfg, "source.v4l2.device", "2")
    assert cfg.source.v4l2.device == "2"
    with pytest.raises(ConfigError, match="repair.max_hold: unknown key"):
        config.set_option(cfg, "repair.max_hold", "1")
    with pytest.raises(ConfigError, match="record: is a section"):
        config.set_option(cfg, "record", "1")
    with pytest.raises(ConfigError, match="live.port: expected an integer"):
        config.set_option(cfg, "live.port", "-1")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path / "nope.yaml")


def test_cli_exits_2_with_one_line(tmp_path, rtclean_cmd):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source:\n  kind: demo\nrecord:\n  segmnt_s: 10\n")
    r = subprocess.run(rtclean_cmd + ["run", "--config", str(bad), "--duration", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"rtclean: {bad}:4: record.segmnt_s: unknown key (expected one of: enabled, dir, raw, "
                     "clean, segment_s, queue_s, codec, crf, preset, bitrate_kbps, sidecar, auto, start_after_s, "
                     "stop_after_s, min_free_mb, mp4, lookahead_ms)"]
    r = subprocess.run(rtclean_cmd + ["run", "--demo", "--set", "live.port=http", "--duration", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "live.port: expected an integer" in r.stderr
    assert "Traceback" not in r.stderr
