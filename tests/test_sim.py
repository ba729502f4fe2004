"""The simulated FPV feed: reproducibility, interlacing, exact breakup labels,
the link's breakup share and ladder, and degrade() on a real clip."""

from __future__ import annotations

import collections

import av
import numpy as np
import pytest

from rtclean.errors import RtcleanError
from rtclean.sim.breakup import KINDS, N_BANDS, inject, label_from_lines
from rtclean.sim.feed import DemoFeed, degrade, fit_frame, render_clip
from rtclean.sim.link import LADDER, LinkModel


@pytest.fixture(scope="module")
def clean_frame() -> np.ndarray:
    feed = DemoFeed("pal", seed=2, breakup=0.0)
    for _ in range(5):
        f = feed.next()
    return f.truth


def test_same_seed_same_output():
    a = render_clip(12, "pal", seed=4, breakup=0.5)
    b = render_clip(12, "pal", seed=4, breakup=0.5)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.truth, y.truth)
        assert x.label.kind == y.label.kind
    c = render_clip(3, "pal", seed=5, breakup=0.5)
    assert not np.array_equal(a[2].truth, c[2].truth)


@pytest.mark.parametrize("std,size,fps", [("pal", (720, 576), 25.0), ("ntsc", (720, 480), 30000 / 1001)])
def test_standard_sizes_and_rates(std, size, fps):
    feed = DemoFeed(std, seed=1, breakup=0.0)
    assert feed.size == size and feed.fps == pytest.approx(fps)
    f = feed.next()
    assert f.image.shape == (size[1], size[0], 3) and f.image.dtype == np.uint8
    g = feed.next()
    assert g.index == 1 and g.pts == pytest.approx(1 / fps)


def test_width_option_scales_the_frame():
    feed = DemoFeed("pal", seed=1, breakup=0.0, width=360)
    assert feed.size == (360, 288) and feed.next().image.shape == (288, 360, 3)
    with pytest.raises(RtcleanError):
        DemoFeed("secam")
    with pytest.raises(RtcleanError):
        DemoFeed("pal", width=10)


def test_clean_frames_equal_truth_and_scene_moves():
    clip = render_clip(10, "pal", seed=3, breakup=0.0)
    assert all(f.label.kind is None and np.array_equal(f.image, f.truth) for f in clip)
    # the camera flies: consecutive frames differ
    assert np.abs(clip[5].truth.astype(int) - clip[6].truth.astype(int)).mean() > 2
    # the crosshair stays in the centre, white on a black outline
    centre = clip[0].truth[288, 330:390]
    assert (centre == 255).all(axis=1).any() and (centre == 0).all(axis=1).any()


def test_fields_are_sampled_at_different_times():
    """Even lines from t, odd lines from t + 1/50 s: with a moving camera the
    odd field differs from what interpolating the even field predicts, far
    more than in a frame whose two fields come from one instant."""
    feed = DemoFeed("pal", seed=1, breakup=0.0)
    f = feed.next().truth.astype(np.float32)
    even, odd = f[0::2], f[1::2]
    between = (even[:-1] + even[1:]) / 2  # what a still frame's odd lines would look like
    moving = np.abs(odd[:-1] - between).mean()
    # the same scene rendered with both fields at one instant
    from rtclean.sim.scenery import CameraPath, Renderer
    r = Renderer(1, 720, 576)
    cam = CameraPath(1, 0.02)
    still = np.zeros((576, 720, 3), np.uint8)
    r.draw_field(still[0::2], cam.pose, 0)
    r.draw_field(still[1::2], cam.pose, 1)
    s = still.astype(np.float32)
    static = np.abs(s[1::2][:-1] - (s[0::2][:-1] + s[0::2][1:]) / 2).mean()
    assert moving > 2 * static


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_damages_only_where_labelled(kind, clean_frame):
    rng = np.random.default_rng(11)
    prev = np.roll(clean_frame, 7, axis=1)
    for sev in (0.2, 0.9):
        out, lab = inject(clean_frame, kind, sev, rng, prev=prev)
        assert out is not clean_frame and out.shape == clean_frame.shape
        assert lab.kind == kind and lab.severity == sev and lab.bands.shape == (N_BANDS,)
        differs = (out != clean_frame).any(axis=(1, 2))
        assert lab.damaged_lines == pytest.approx(differs.mean())
        edges = np.linspace(0, 576, N_BANDS + 1).astype(int)
        for b in range(N_BANDS):
            rows = slice(edges[b], edges[b + 1])
            if lab.bands[b] == 0:
                assert np.array_equal(out[rows], clean_frame[rows])
            else:
                assert differs[rows].mean() == pytest.approx(lab.bands[b])
        assert lab.damaged_lines > 0
        assert lab.no_signal == (kind in ("blue", "black", "static", "frozen"))


def test_inject_never_modifies_its_input(clean_frame):
    keep = clean_frame.copy()
    for kind in KINDS:
        inject(clean_frame, kind, 0.7, np.random.default_rng(1))
    assert np.array_equal(keep, clean_frame)


@pytest.mark.parametrize("kind", ["sparklies", "snow", "tear", "colour_loss"])
def test_field_local_kinds_stay_in_their_field(kind, clean_frame):
    for field in (0, 1):
        out, lab = inject(clean_frame, kind, 0.8, np.random.default_rng(field), field=field)
        other = 1 - field
        assert np.array_equal(out[other::2], clean_frame[other::2])
        assert lab.fields[field] and not lab.fields[other]


def test_kinds_look_like_their_names(clean_frame):
    rng = np.random.default_rng(3)
    grey, _ = inject(clean_frame, "colour_loss", 0.2, rng)
    g = grey.astype(int)
    assert np.abs(g[..., 0] - g[..., 2]).max() == 0  # black and white
    blue, _ = inject(clean_frame, "blue", 1.0, rng)
    assert (blue[..., 0] > 150).all() and (blue[..., 2] < 50).all()
    black, _ = inject(clean_frame, "black", 1.0, rng)
    assert black.max() < 20
    static, _ = inject(clean_frame, "static", 1.0, rng)
    assert static.astype(float).std() > 30
    snow, _ = inject(clean_frame, "snow", 0.8, rng)
    # snow is grain: high-frequency energy rises along lines
    hf = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()  # noqa: E731
    assert hf(snow) > 3 * hf(clean_frame)
    sp, lab = inject(clean_frame, "sparklies", 0.3, rng)
    assert 0 < lab.damaged_lines < 0.6  # streaks on some lines only
    rolled, _ = inject(clean_frame, "roll", 0.5, rng)
    assert (rolled.reshape(576, -1).max(axis=1) <= 24).sum() >= 30  # the black sync bar


def test_inject_rejects_bad_input(clean_frame):
    rng = np.random.default_rng(0)
    with pytest.raises(RtcleanError, match="unknown kind"):
        inject(clean_frame, "gremlins", 0.5, rng)
    with pytest.raises(RtcleanError, match="severity"):
        inject(clean_frame, "snow", 1.5, rng)
    with pytest.raises(RtcleanError, match="HxWx3"):
        inject(clean_frame[..., 0], "snow", 0.5, rng)
    with pytest.raises(RtcleanError, match="field"):
        inject(clean_frame, "snow", 0.5, rng, field=2)


def test_label_from_lines():
    lines = np.zeros(576, bool)
    lines[0:36:2] = True  # half of band 0, even field only
    lab = label_from_lines("tear", 0.5, lines)
    assert lab.bands[0] == pytest.approx(0.5) and lab.bands[1:].sum() == 0
    assert lab.fields == (True, False) and lab.damaged_lines == pytest.approx(18 / 576)


@pytest.mark.parametrize("share", [0.0, 0.15, 0.4, 1.0])
def test_link_gives_the_requested_breakup_share(share):
    link = LinkModel(seed=9, breakup=share, fps=25.0)
    states = [link.next() for _ in range(3000)]
    got = np.mean([s.kind is not None for s in states])
    assert got == pytest.approx(share, abs=0.01)


def test_link_progresses_through_the_kinds_as_quality_falls():
    link = LinkModel(seed=21, breakup=0.3, fps=25.0)
    states = [link.next() for _ in range(6000)]
    rung = {"sparklies": 0, "snow": 1, "tear": 2, "colour_loss": 2, "roll": 2,
            "static": 3, "blue": 3, "black": 3, "frozen": 3}
    by = collections.defaultdict(list)
    for s in states:
        if s.kind:
            by[rung[s.kind]].append(min(s.quality) - s.threshold)
    assert set(by) == {0, 1, 2, 3}
    medians = [np.median(by[r]) for r in range(4)]
    assert medians == sorted(medians, reverse=True)  # lower quality, further down the ladder
    shares = np.array([len(by[r]) for r in range(4)]) / sum(len(v) for v in by.values())
    assert shares == pytest.approx([s for _, s in LADDER], abs=0.05)
    kinds = collections.Counter(s.kind for s in states)
    assert all(kinds[k] > 0 for k in KINDS)
    # a frame breaks exactly when its worse field falls below the link threshold
    assert all((min(s.quality) < s.threshold) == (s.kind is not None) for s in states)


def test_feed_labels_match_its_images():
    clip = render_clip(150, "ntsc", seed=6, breakup=0.6)
    broken = [f for f in clip if f.label.kind]
    assert 0.4 < len(broken) / len(clip) < 0.8
    for f in clip:
        differs = (f.image != f.truth).any(axis=(1, 2))
        assert f.label.damaged_lines == pytest.approx(differs.mean())


def test_degrade_a_real_clip(clips_dir):
    with av.open(str(clips_dir / "walk_pan_720x480.mkv")) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]
    sims = list(degrade(frames, seed=5, breakup=0.35, fps=29.97))
    assert len(sims) == len(frames)
    assert any(s.label.kind for s in sims) and any(not s.label.kind for s in sims)
    for s, orig in zip(sims, frames):
        assert np.array_equal(s.truth, orig)
        differs = (s.image != s.truth).any(axis=(1, 2))
        assert s.label.damaged_lines == pytest.approx(differs.mean())
    again = list(degrade(frames, seed=5, breakup=0.35, fps=29.97))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(sims, again))
    # resized to PAL on request
    pal = list(degrade(frames[:3], seed=1, breakup=1.0, fps=25, size=(720, 576)))
    assert pal[0].image.shape == (576, 720, 3) and pal[0].label.kind


def test_fit_frame_covers_and_crops():
    img = np.zeros((480, 848, 3), np.uint8)
    img[:, 424:] = 200
    out = fit_frame(img, (720, 576))
    assert out.shape == (576, 720, 3)
    assert out[:, :300].max() == 0 and out[:, 420:].min() == 200


def test_degrade_rejects_non_images():
    with pytest.raises(RtcleanError, match="frame 0"):
        list(degrade([np.zeros((10, 10), np.uint8)], seed=1, breakup=0.5, fps=25))


# --------------------------------------------------------------- OSD horizon


def horizon_pixels(roll: float, pitch: float, size=(720, 576)) -> np.ndarray:
    """(y, x) of the pixels the artificial horizon alone adds to a flat
    picture: the same OSD drawn with and without it."""
    from rtclean.sim.osd import Osd

    w, h = size
    with_h, without = (np.full((h, w, 3), 90, np.uint8) for _ in range(2))
    Osd(w, h, 3, horizon=True).draw(with_h, 2.0, 70, (roll, pitch))
    Osd(w, h, 3).draw(without, 2.0, 70, (roll, pitch))  # off by default: the attitude is ignored
    return np.argwhere((with_h != without).any(axis=2))


def test_osd_horizon_follows_the_attitude():
    """The artificial horizon of a character OSD: level, its bars share one
    height at the centre of the picture; banked right, the picture turns left
    and its right side rises; nose up, it sinks. Bars are white on black
    outlines, as the OSD's text is. Off by default, so the demo feed keeps its
    pictures."""
    level = horizon_pixels(0.0, 0.0)
    assert len(level) > 300
    assert np.ptp(level[:, 0]) <= 8 and abs(level[:, 0].mean() - 288) < 6
    assert np.ptp(level[:, 1]) > 200  # eight characters across the middle (30 to a line)
    banked = horizon_pixels(0.4, 0.0)
    left, right = banked[banked[:, 1] < 360, 0].mean(), banked[banked[:, 1] > 360, 0].mean()
    assert right < left - 40, (left, right)  # tan(0.4) x 2.5 characters each side
    nose_up = horizon_pixels(0.0, 0.1)
    assert nose_up[:, 0].mean() > level[:, 0].mean() + 30
    from rtclean.sim.osd import Osd

    img = np.full((576, 720, 3), 90, np.uint8)
    Osd(720, 576, 3, horizon=True).draw(img, 2.0, 70, (0.0, 0.0))
    band = img[276:300, 380:560]
    assert (band == 255).all(axis=2).sum() > 40 and (band == 0).all(axis=2).sum() > 40
    ntsc = horizon_pixels(0.0, 0.0, (720, 480))
    assert abs(ntsc[:, 0].mean() - 240) < 6
