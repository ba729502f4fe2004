"""`rtclean dataset sample` on the real clips, and the labelling server of
`rtclean dataset label` through real HTTP requests.

The browser side of labelling is in test_label_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

from helpers import count_frames, decode_frames
from rtclean.train.dataset import (DatasetError, class_folders, parse_classes, sample_indices,
                                   sample_videos)
from rtclean.train.label_server import LabelServer, LabelStore, class_keys

CARPHONE = "carphone_176x144.mp4"  # 120 frames
BIKES = "bikes_cuts_640x272.mp4"  # 250 frames


def names_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file() and p.suffix == ".png"} if folder.is_dir() else set()


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


# --------------------------------------------------------------------------- sample


def test_sample_every_writes_exact_frames_and_previous_frames(clips_dir, tmp_path, rtclean_cmd):
    out = tmp_path / "ds"
    r = run([*rtclean_cmd, "dataset", "sample", str(clips_dir / CARPHONE), str(clips_dir / BIKES),
             "--out", str(out), "--every", "25"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [".prev", "breakup", "clean"]
    assert not any((out / "breakup").iterdir()) and not any((out / "clean").iterdir())

    expected = set()
    for clip in (CARPHONE, BIKES):
        frames = decode_frames(clips_dir / clip)  # PyAV, independently of rtclean
        stem = Path(clip).stem
        for i in range(0, len(frames), 25):
            name = f"{stem}_{i:06d}.png"
            expected.add(name)
            png = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
            assert png is not None and png.shape == frames[i].shape
            assert np.array_equal(png, frames[i]), f"{name} is not the exact decoded frame"
            prev = out / ".prev" / name
            if i == 0:
                assert not prev.exists(), "the first frame of a video has no previous frame"
            else:
                assert np.array_equal(cv2.imread(str(prev), cv2.IMREAD_UNCHANGED), frames[i - 1])
    assert names_in(out) == expected
    assert names_in(out / ".prev") == {n for n in expected if not n.endswith("_000000.png")}
    assert f"{len(expected)} new frames from 2 of 2 videos" in r.stdout
    assert "rtclean dataset label" in r.stdout


def test_sample_count_spreads_frames_over_the_whole_video(clips_dir, tmp_path):
    n = count_frames(clips_dir / CARPHONE)
    report = sample_videos([clips_dir / CARPHONE], tmp_path / "ds", count=7, classes="ok,ko")
    names = sorted(names_in(tmp_path / "ds"))
    idx = [int(x.rsplit("_", 1)[1][:6]) for x in names]
    assert len(idx) == 7 and report.written == 7
    assert idx[0] == 0 and idx[-1] == n - 1, "the spread covers first to last frame"
    gaps = np.diff(idx)
    assert gaps.max() - gaps.min() <= 1, f"not evenly spread: {idx}"
    assert class_folders(tmp_path / "ds") == ["ko", "ok"]


def test_sample_indices():
    assert sample_indices(10, every=3).tolist() == [0, 3, 6, 9]
    assert sample_indices(5, count=9).tolist() == [0, 1, 2, 3, 4]
    assert sample_indices(101, count=5).tolist() == [0, 25, 50, 75, 100]
    assert sample_indices(0, count=5).tolist() == []


def test_bad_videos_get_one_line_each_and_the_others_are_sampled(clips_dir, tmp_path, rtclean_cmd):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video\n" * 50)
    cut = tmp_path / "cut.mp4"  # cup: moov first, so the first part still decodes
    cut.write_bytes((clips_dir / "cup_handheld_640x480.mp4").read_bytes()[:300_000])
    missing = tmp_path / "nope.mp4"
    out = tmp_path / "ds"
    r = run([*rtclean_cmd, "dataset", "sample", str(junk), str(clips_dir / CARPHONE), str(missing),
             str(cut), "--out", str(out)])  # default: every 10th frame
    assert r.returncode == 1, "a failed video makes the exit status non-zero"
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert len(lines) == 3, r.stderr
    assert lines[0].startswith(f"rtclean: {junk}:")
    assert lines[1] == f"rtclean: {missing}: no such file"
    assert lines[2].startswith(f"rtclean: warning: {cut}:") and "truncated" in lines[2]
    # The good clip after the bad one, and the decodable part of the cut one.
    good = count_frames(clips_dir / CARPHONE)
    assert {n for n in names_in(out) if n.startswith("carphone")} == \
        {f"carphone_176x144_{i:06d}.png" for i in range(0, good, 10)}
    n_cut = count_frames(cut)
    assert 0 < n_cut < 217
    assert {n for n in names_in(out) if n.startswith("cut_")} == {f"cut_{i:06d}.png" for i in range(0, n_cut, 10)}
    assert not any(n.startswith("junk") for n in names_in(out))
    assert "2 of 4 videos" in r.stdout and "2 failed" in r.stdout and "1 truncated" in r.stdout


def test_truncated_only_exits_3(clips_dir, tmp_path, rtclean_cmd):
    cut = tmp_path / "cut.avi"
    cut.write_bytes((clips_dir / "bag_handheld_480x360.avi").read_bytes()[:400_000])
    r = run([*rtclean_cmd, "dataset", "sample", str(cut), "--out", str(tmp_path / "ds"), "--every", "20"])
    assert r.returncode == 3, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "truncated" in r.stderr
    assert len(names_in(tmp_path / "ds")) == len(range(0, count_frames(cut), 20))


def test_rerun_never_overwrites_and_skips_labelled_frames(clips_dir, tmp_path):
    out = tmp_path / "ds"
    first = sample_videos([clips_dir / CARPHONE], out, every=20)
    assert first.written == 6 and first.skipped == 0
    # The user labelled one frame and (say) edited another.
    (out / "carphone_176x144_000020.png").rename(out / "clean" / "carphone_176x144_000020.png")
    (out / "carphone_176x144_000040.png").write_bytes(b"marker")
    again = sample_videos([clips_dir / CARPHONE], out, every=20)
    assert again.written == 0 and again.skipped == 6
    assert (out / "carphone_176x144_000040.png").read_bytes() == b"marker"
    assert not (out / "carphone_176x144_000020.png").exists(), "a labelled frame came back unlabelled"
    # A denser run adds only the names it has not written yet.
    denser = sample_videos([clips_dir / CARPHONE], out, every=10)
    assert denser.written == 6 and denser.skipped == 6
    assert (out / "carphone_176x144_000040.png").read_bytes() == b"marker"
    assert len(names_in(out)) + len(names_in(out / "clean")) == 12
    assert "6 new frames" in denser.summary() and "6 already there" in denser.summary()


def test_same_file_name_in_two_folders_gets_two_stems(clips_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(clips_dir / CARPHONE, a / "DVR0001.mp4")
    shutil.copy(clips_dir / "carphone_compressed_176x144.mp4", b / "DVR0001.mp4")
    out = tmp_path / "ds"
    rep = sample_videos([a, b], out, count=2)  # folders stand for the videos in them
    assert rep.written == 4
    assert names_in(out) == {"DVR0001_000000.png", "DVR0001_000119.png",
                             "DVR0001-2_000000.png", "DVR0001-2_000119.png"}
    # The second file's frames really are the second file's.
    frames_b = decode_frames(b / "DVR0001.mp4")
    assert np.array_equal(cv2.imread(str(out / "DVR0001-2_000119.png")), frames_b[119])
    # Re-running on b alone maps it to the same stem again: nothing new.
    assert sample_videos([b / "DVR0001.mp4"], out, count=2).skipped == 2
    assert json.loads((out / ".sources.json").read_text())["DVR0001-2"] == str((b / "DVR0001.mp4").resolve())


def test_sample_option_errors_are_one_line(clips_dir, tmp_path, rtclean_cmd):
    (tmp_path / "file").write_text("x")
    cases = [
        (["--classes", "breakup"], "at least two class names"),
        (["--classes", "a,../b"], "not a usable folder name"),
        (["--classes", "ok,OK"], "repeat"),
    ]
    for extra, msg in cases:
        r = run([*rtclean_cmd, "dataset", "sample", str(clips_dir / CARPHONE), "--out",
                 str(tmp_path / "ds"), *extra])
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and msg in r.stderr, (extra, r.stderr)
    r = run([*rtclean_cmd, "dataset", "sample", str(clips_dir / CARPHONE), "--out", str(tmp_path / "file")])
    assert r.returncode == 1 and r.stderr.strip() == f"rtclean: {tmp_path / 'file'}: exists and is not a folder"
    r = run([*rtclean_cmd, "dataset", "sample", str(clips_dir / CARPHONE), "--out", str(tmp_path / "d"),
             "--every", "2", "--count", "3"])
    assert r.returncode == 2 and "not allowed with" in r.stderr  # argparse: usage error
    with pytest.raises(DatasetError):
        parse_classes(",,")


def test_dataset_group_registers_synth_with_its_options(rtclean_cmd):
    from rtclean.cli import build_parser

    args = build_parser().parse_args(["dataset", "synth", "--clips", "a.mp4", "dir/", "--out", "o"])
    assert (args.clips, args.out, args.frames, args.seed, args.standard, args.breakup, args.sim) == \
        (["a.mp4", "dir/"], "o", 200, 0, "pal", 0.5, "analog")
    args = build_parser().parse_args(["dataset", "synth", "--clips", "x", "--out", "o", "--frames", "5",
                                      "--seed", "3", "--standard", "ntsc", "--breakup", "0.25", "--sim", "image"])
    assert (args.frames, args.seed, args.standard, args.breakup, args.sim) == (5, 3, "ntsc", 0.25, "image")
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", "x", "--out", "o", "--breakup", "2"])
    assert r.returncode == 2 and "must be from 0 to 1" in r.stderr
    r = run([*rtclean_cmd, "dataset", "synth", "--out", "o"])
    assert r.returncode == 2 and "--clips" in r.stderr


def test_synth_cli_content_variety(tmp_path, rtclean_cmd, clips_dir):
    """--passes/--demo/--compress reach the generator: varied passes and
    procedural scenery appear in the dataset; bad values are one line."""
    out = tmp_path / "v"
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"), "--out",
             str(out), "--frames", "12", "--sim", "image", "--passes", "2", "--demo", "1", "--compress", "0.5"])
    assert r.returncode == 0, r.stderr
    assert "(3 content passes)" in r.stdout
    names = {p.name for p in out.glob("*/*.png")}
    assert any("_v1_" in n for n in names) and any(n.startswith("demo_s") for n in names)
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"), "--out",
             str(tmp_path / "w"), "--frames", "4", "--sim", "image", "--demo", "-1"])
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "bad variety settings" in r.stderr


def test_synth_cli_h264_dvr(tmp_path, rtclean_cmd, clips_dir):
    """--dvr 1 --dvr-codec h264: every pass is stored as an H.264 DVR stream
    whose bitrate and GOP the labels record; the frame before each written
    frame (.prev) is the stream's previous picture, so a pair of
    consecutive written frames shares it."""
    import cv2

    out = tmp_path / "h"
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", str(clips_dir / "walk_pan_720x480.mkv"), "--out",
             str(out), "--frames", "8", "--sim", "image", "--dvr", "1", "--dvr-codec", "h264"])
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert recs and all(1000 <= r["dvr_h264_kbps"] <= 6000 and 12 <= r["dvr_h264_gop"] <= 60 for r in recs)
    assert all("dvr_jpeg_quality" not in r for r in recs)
    by_index = {r["index"]: r for r in recs}
    pairs = [(by_index[i - 1], by_index[i]) for i in by_index if i - 1 in by_index]
    assert pairs
    for before, cur in pairs:
        prev = cv2.imread(str(out / ".prev" / Path(cur["file"]).name))
        assert np.array_equal(prev, cv2.imread(str(out / before["file"])))
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", "x", "--out", "o", "--dvr-codec", "av1"])
    assert r.returncode == 2 and "--dvr-codec" in r.stderr
    # mix: each DVR pass is one of the two codecs (seeded draw: passes 0-2 H.264, pass 3 MJPEG here)
    out = tmp_path / "m"
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"), "--out",
             str(out), "--frames", "8", "--sim", "image", "--passes", "4", "--dvr", "1", "--dvr-codec", "mix"])
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    kinds = {r["seed"]: ("dvr_h264_kbps" in r, "dvr_jpeg_quality" in r) for r in recs}
    assert set(kinds.values()) == {(True, False), (False, True)}, kinds


def test_synth_cli_dvr_size(tmp_path, rtclean_cmd, clips_dir):
    """--dvr-size: each DVR pass records at one of the sizes given ('native'
    = the simulator's own 720x576), the label says which, and the frame
    before (.prev) went through the same DVR. A size without DVR passes, or
    a bad size, is one line."""
    import cv2

    out = tmp_path / "s"
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"), "--out",
             str(out), "--frames", "16", "--sim", "image", "--passes", "4", "--seed", "1", "--dvr", "1",
             "--dvr-size", "640x480", "native"])
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    sizes = {}
    for rec in recs:
        img = cv2.imread(str(out / rec["file"]))
        prev = cv2.imread(str(out / ".prev" / Path(rec["file"]).name))
        assert img.shape == prev.shape
        want = (480, 640) if rec.get("dvr_size") == "640x480" else (576, 720)
        assert "dvr_size" not in rec or rec["dvr_size"] == "640x480"
        assert img.shape[:2] == want, rec
        sizes.setdefault(rec["seed"], set()).add(img.shape[:2])
    assert {frozenset(v) for v in sizes.values()} == {frozenset({(480, 640)}), frozenset({(576, 720)})}, sizes
    for args, msg in ((["--dvr-size", "640x480"], "--dvr F"), (["--dvr", "1", "--dvr-size", "641x480"], "even")):
        r = run([*rtclean_cmd, "dataset", "synth", "--clips", str(clips_dir / "carphone_176x144.mp4"), "--out",
                 str(tmp_path / "bad"), "--frames", "4", "--sim", "image", *args])
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr
    from rtclean.errors import RtcleanError
    from rtclean.train.synth import Variety, synth_dataset

    with pytest.raises(RtcleanError, match="even"):  # the same check for callers of the Python API
        synth_dataset([str(clips_dir / "carphone_176x144.mp4")], str(tmp_path / "api"), 4, 0, sim="image",
                      variety=Variety(dvr=1.0, dvr_sizes=((640, 480), (641, 480))))



def test_synth_speed_plays_the_content_faster(tmp_path, rtclean_cmd, clips_dir):
    """--speed 3: every third frame of the clip, so frame j is frame 3j of
    the clip as recorded and its .prev is frame 3j - 3, not 3j - 1. Clean
    frames of the image simulator are the content itself, which makes the
    comparison exact. A speed out of range is one line."""
    from rtclean.errors import RtcleanError
    from rtclean.train.synth import Variety, synth_dataset

    clip = str(clips_dir / "carphone_176x144.mp4")
    synth_dataset([clip], str(tmp_path / "plain"), 30, 5, sim="image", breakup=0.0)
    synth_dataset([clip], str(tmp_path / "fast"), 10, 5, sim="image", breakup=0.0, variety=Variety(speeds=(3,)))
    plain = [json.loads(line) for line in (tmp_path / "plain" / "labels.jsonl").read_text().splitlines()]
    fast = [json.loads(line) for line in (tmp_path / "fast" / "labels.jsonl").read_text().splitlines()]
    assert len(plain) == 30 and len(fast) == 10
    assert all(r["speed"] == 3 for r in fast) and all("speed" not in r for r in plain)

    def img(root: Path) -> np.ndarray:
        return cv2.imread(str(root)).astype(np.int16)

    for j, rec in enumerate(fast[1:], 1):
        name = Path(rec["file"]).name
        assert np.array_equal(img(tmp_path / "fast" / rec["file"]), img(tmp_path / "plain" / plain[3 * j]["file"]))
        prev = img(tmp_path / "fast" / ".prev" / name)
        assert np.array_equal(prev, img(tmp_path / "plain" / plain[3 * j - 3]["file"]))
        assert not np.array_equal(prev, img(tmp_path / "plain" / plain[3 * j - 1]["file"]))
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", clip, "--out", str(tmp_path / "bad"), "--frames", "4",
             "--sim", "image", "--speed", "2", "20"])
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "--speed 20" in r.stderr, r.stderr
    with pytest.raises(RtcleanError, match="--speed 0"):
        synth_dataset([clip], str(tmp_path / "api"), 4, 0, sim="image", variety=Variety(speeds=(0,)))

def test_synth_osd_draws_the_flight_controllers_osd_over_the_content(tmp_path, rtclean_cmd, clips_dir):
    """--osd 1: every clip pass carries an OSD drawn before the simulator,
    its horizon moving from frame to frame. The image simulator's clean
    frames are the content itself, so a plain run with the same seed tells
    exactly which pixels the OSD added: the texts in the corners on every
    frame and its previous frame, and a horizon in the middle that is not
    where it was one frame before. Without --osd the datasets stay as they
    were (no 'osd' key)."""
    from rtclean.train.synth import Variety, synth_dataset

    clip = str(clips_dir / "carphone_176x144.mp4")
    synth_dataset([clip], str(tmp_path / "plain"), 8, 5, sim="image", breakup=0.0)
    synth_dataset([clip], str(tmp_path / "osd"), 8, 5, sim="image", breakup=0.0, variety=Variety(osd=1.0))
    plain = [json.loads(line) for line in (tmp_path / "plain" / "labels.jsonl").read_text().splitlines()]
    osd = [json.loads(line) for line in (tmp_path / "osd" / "labels.jsonl").read_text().splitlines()]
    assert len(plain) == len(osd) == 8
    assert all(r["osd"] is True for r in osd) and all("osd" not in r for r in plain)
    middles = []
    for a, b in zip(plain, osd):
        assert a["file"] == b["file"]
        for frame in (a["file"], f".prev/{Path(a['file']).name}"):
            x, y = (cv2.imread(str(tmp_path / run_ / frame)) for run_ in ("plain", "osd"))
            added = (x != y).any(axis=2)
            assert added[:80, :150].sum() > 100, "the voltage in the top left corner"
            assert (y[added] == 255).all(axis=1).sum() > 200, "white text"
            if frame == a["file"]:
                middles.append(added[200:376, 250:470])
    assert all(m.sum() > 100 for m in middles)
    assert sum((m1 != m2).sum() > 50 for m1, m2 in zip(middles, middles[1:])) >= 5, "the horizon moves"
    r = run([*rtclean_cmd, "dataset", "synth", "--clips", clip, "--out", str(tmp_path / "bad"), "--frames", "4",
             "--sim", "image", "--osd", "1.5"])
    assert r.returncode == 2 and "--osd" in r.stderr, r.stderr

def test_synth_comb_decodes_ntsc_as_capture_chips_do(tmp_path, rtclean_cmd, clips_dir):
    """--comb 1 (analog simulator, NTSC): every pass is decoded by a card
    that combs chroma, so the fine foliage's cross-colour, which a notch
    decoder leaves flipping from line to line, mostly cancels: the frames'
    colour stands out of their field's neighbour lines far less than with
    the same seed and no --comb (measured 6.4 -> 2.4). Labels say so. A
    comb is no option of PAL (its delay line always averages) nor of the
    image simulator: exit 2 naming --comb."""
    from rtclean.train.synth import Variety, synth_dataset

    clip = str(clips_dir / "foliage_pan_720x480.mkv")
    synth_dataset([clip], str(tmp_path / "notch"), 3, 5, standard="ntsc", sim="analog", breakup=0.0)
    synth_dataset([clip], str(tmp_path / "comb"), 3, 5, standard="ntsc", sim="analog", breakup=0.0,
                  variety=Variety(comb=1.0))
    stand_out = {}
    for run_ in ("notch", "comb"):
        recs = [json.loads(line) for line in (tmp_path / run_ / "labels.jsonl").read_text().splitlines()]
        assert len(recs) == 3 and all(r["class"] == "clean" for r in recs)
        assert all(r.get("comb") is (True if run_ == "comb" else None) for r in recs)
        c = np.stack([cv2.cvtColor(cv2.imread(str(tmp_path / run_ / r["file"])), cv2.COLOR_BGR2YCrCb)[:, 12:-12, 1:]
                      for r in recs]).astype(np.float32)
        stand_out[run_] = float(np.abs(c[:, 2:-2] - 0.5 * (c[:, :-4] + c[:, 4:])).mean())
    assert stand_out["comb"] < 0.5 * stand_out["notch"], stand_out
    for extra in (["--standard", "pal"], ["--standard", "ntsc", "--sim", "image"]):
        r = run([*rtclean_cmd, "dataset", "synth", "--clips", clip, "--out", str(tmp_path / "bad"), "--frames", "2",
                 "--comb", "0.5", *extra])
        assert r.returncode == 2 and "--comb" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "bad" / "labels.jsonl").exists()

# --------------------------------------------------------------------------- label server


@pytest.fixture(scope="session")
def sampled_template(clips_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("label-template") / "ds"
    sample_videos([clips_dir / CARPHONE], out, count=6)
    return out


@pytest.fixture
def dataset(sampled_template, tmp_path) -> Path:
    """A fresh copy of 6 sampled frames (index 0, 24, 48, 71, 95, 119) to label."""
    d = tmp_path / "ds"
    shutil.copytree(sampled_template, d)
    return d


@contextmanager
def label_server(folder: Path):
    """The real LabelServer on its own event loop thread; yields its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = LabelServer(LabelStore(folder), "127.0.0.1", 0)
    url = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield url.rstrip("/")
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _call(method: str, url: str, **kw) -> tuple[int, object]:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, **kw) as r:
            body = await r.read()
            if r.content_type == "application/json":
                return r.status, json.loads(body)
            return r.status, body


def http(method: str, url: str, **kw) -> tuple[int, object]:
    return asyncio.run(_call(method, url, **kw))


def test_state_lists_classes_keys_and_queue(dataset):
    with label_server(dataset) as url:
        status, st = http("GET", url + "/api/state")
    assert status == 200
    assert [(c["name"], c["keys"], c["count"]) for c in st["classes"]] == \
        [("breakup", ["1", "b"], 0), ("clean", ["2", "c"], 0)]
    assert st["total"] == 6 and st["unlabelled"] == 6 and st["labelled"] == 0
    assert st["queue"] == sorted(names_in(dataset))
    assert st["recent"] == [] and st["can_undo"] is False
    assert st["current_has_prev"] is False  # frame 0 has no previous frame


def test_label_moves_the_file_and_undo_moves_it_back(dataset):
    name = "carphone_176x144_000024.png"
    data = (dataset / name).read_bytes()
    with label_server(dataset) as url:
        status, st = http("POST", url + "/api/label", json={"name": name, "class": "breakup"})
        assert status == 200
        assert not (dataset / name).exists()
        assert (dataset / "breakup" / name).read_bytes() == data
        assert (dataset / ".prev" / name).is_file(), "the previous frame stays in .prev"
        assert st["labelled"] == 1 and st["classes"][0]["count"] == 1 and name not in st["queue"]
        assert st["recent"] == [{"name": name, "class": "breakup"}] and st["done"]["class"] == "breakup"
        # The labelled frame is served from its class folder, not as unlabelled.
        assert http("GET", f"{url}/img/breakup/{name}")[0] == 200
        assert http("GET", f"{url}/img/{name}")[0] == 404

        status, st = http("POST", url + "/api/undo")
        assert status == 200
        assert (dataset / name).read_bytes() == data and not (dataset / "breakup" / name).exists()
        assert st["queue"][0] == name, "the undone frame is shown again first"
        assert st["labelled"] == 0 and st["can_undo"] is False
        status, err = http("POST", url + "/api/undo")
        assert status == 409 and "nothing to undo" in err["error"]


def test_path_traversal_and_foreign_names_are_refused(dataset):
    secret = dataset.parent / "secret.png"
    secret.write_bytes(b"secret")
    (dataset / "notes.txt").write_text("not an image")
    with label_server(dataset) as url:
        for bad in ["../secret.png", str(secret), "breakup/x.png", "..", ".", "", ".prev", "a\\b.png",
                    "notes.txt", 5, None]:
            status, err = http("POST", url + "/api/label", json={"name": bad, "class": "clean"})
            assert status == 400, (bad, status, err)
        status, err = http("POST", url + "/api/label", json={"name": "missing.png", "class": "clean"})
        assert status == 404
        for path in ["/img/..%2Fsecret.png", "/img/%2E%2E/secret.png", "/img/..%2F..%2Fetc%2Fpasswd",
                     "/img/breakup/..%2F..%2Fsecret.png", "/img/missing.png", "/img/.prev/x.png",
                     "/img/notes.txt", "/static/..%2Flabel_server.py", "/static/../dataset.py"]:
            status, body = http("GET", url + path)
            assert status in (400, 404), (path, status)
            assert body != b"secret"
        status, err = http("POST", url + "/api/label", data=b"not json")
        assert status == 400 and "JSON" in err["error"]
    assert len(names_in(dataset)) == 6
    assert secret.read_bytes() == b"secret" and not any((dataset / "clean").iterdir())


def test_unknown_class_is_refused(dataset):
    name = "carphone_176x144_000000.png"
    with label_server(dataset) as url:
        for cls in ["dirty", ".prev", "../clean", "", None, "Clean"]:
            status, err = http("POST", url + "/api/label", json={"name": name, "class": cls})
            assert status == 400, cls
        assert "classes are breakup, clean" in err["error"]
    assert (dataset / name).is_file()


def test_double_labelling_is_a_conflict(dataset):
    name = "carphone_176x144_000048.png"
    with label_server(dataset) as url:
        async def both():
            async with aiohttp.ClientSession() as s:
                async def post(cls):
                    async with s.post(url + "/api/label", json={"name": name, "class": cls}) as r:
                        return r.status
                return await asyncio.gather(post("breakup"), post("clean"))

        statuses = sorted(asyncio.run(both()))
        assert statuses == [200, 409]
        # Exactly one copy, in exactly one class folder.
        where = [c for c in ("breakup", "clean") if (dataset / c / name).exists()]
        assert len(where) == 1 and not (dataset / name).exists()
        status, err = http("POST", url + "/api/label", json={"name": name, "class": "clean"})
        assert status == 409 and f"already labelled {where[0]}" in err["error"]


def test_existing_target_is_never_overwritten(dataset):
    name = "carphone_176x144_000071.png"
    (dataset / "clean" / name).write_bytes(b"older")
    with label_server(dataset) as url:
        # It is in a class folder already AND still unlabelled: the move must not replace it.
        status, err = http("POST", url + "/api/label", json={"name": name, "class": "clean"})
    assert status == 409 and "exists already" in err["error"]
    assert (dataset / "clean" / name).read_bytes() == b"older" and (dataset / name).is_file()


def test_skip_puts_the_frame_last(dataset):
    with label_server(dataset) as url:
        _, st = http("GET", url + "/api/state")
        first = st["queue"][0]
        status, st = http("POST", url + "/api/skip", json={"name": first})
        assert status == 200 and st["queue"][-1] == first and st["unlabelled"] == 6
        assert http("POST", url + "/api/skip", json={"name": "../x.png"})[0] == 400


def test_images_thumbnails_and_previous_frames(dataset):
    name = "carphone_176x144_000095.png"
    with label_server(dataset) as url:
        status, body = http("GET", f"{url}/img/{name}")
        assert status == 200 and body == (dataset / name).read_bytes()
        status, body = http("GET", f"{url}/img/{name}?w=88")
        thumb = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and thumb.shape == (72, 88, 3)
        status, body = http("GET", f"{url}/img/{name}?prev=1")
        assert status == 200 and body == (dataset / ".prev" / name).read_bytes()
        assert http("GET", f"{url}/img/carphone_176x144_000000.png?prev=1")[0] == 404
        assert http("GET", f"{url}/img/{name}?w=wide")[0] == 400
        status, page = http("GET", url + "/")
        assert status == 200 and b"label.js" in page


def test_class_keys_avoid_clashes():
    assert class_keys(["breakup", "clean"]) == {"breakup": ["1", "b"], "clean": ["2", "c"]}
    assert class_keys(["ko", "ok"]) == {"ko": ["1", "k"], "ok": ["2", "o"]}
    # Same first letter, or a command key (s = skip, u = undo): digits only.
    assert class_keys(["bad", "blurry", "sharp"]) == {"bad": ["1"], "blurry": ["2"], "sharp": ["3"]}


def test_label_command_serves_until_interrupted(dataset, rtclean_cmd):
    proc = subprocess.Popen([*rtclean_cmd, "dataset", "label", str(dataset), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "labelling 6 frames" in line, line + proc.stderr.read() if proc.poll() is not None else line
        url = line.split(" at ")[1].split()[0].rstrip("/")
        status, st = http("GET", url + "/api/state")
        assert status == 200 and st["total"] == 6
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_label_command_errors_are_one_line(tmp_path, dataset, rtclean_cmd):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"x")
    r = run([*rtclean_cmd, "dataset", "label", str(tmp_path / "flat")])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "needs at least two class folders" in r.stderr
    r = run([*rtclean_cmd, "dataset", "label", str(tmp_path / "nope")])
    assert r.returncode == 1 and r.stderr.strip() == f"rtclean: {tmp_path / 'nope'}: no such folder"
    with label_server(dataset) as url:
        port = url.rsplit(":", 1)[1]
        r = run([*rtclean_cmd, "dataset", "label", str(dataset), "--port", port])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot listen" in r.stderr
