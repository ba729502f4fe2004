"""Signal-quality breakup detector without a model.

Analog FM breakup is line-structured and incoherent in time; scene content
and motion are neither. Everything works on a reduced view: every line of
the picture is kept (breakup lives on single lines) but only about
``VIEW_WIDTH`` columns (nearest sampling: cheap, and it keeps the full
contrast of short streaks that averaging would dilute). Same-field
neighbours of line L are L - 2 and L + 2, so comparing a line with those
never mistakes combing from motion between the two fields (1/50 s apart)
for damage; all per-line work runs on the whole frame at once with OpenCV.

Features, per band of lines and per frame:

- impulse ("peak"): how far a line stands out above or below BOTH of its
  same-field neighbours. Zero on edges and gradients, large on FM clicks
  (sparklies) and snow. ``noise`` is the mean clipped peak per band (snow
  and line jitter raise it).
- fresh streaks: pixels that stand out by more than STREAK_LEVEL from both
  same-field and both other-field neighbours (an FM click hits one line;
  scene detail is at least two lines tall after optics and compression),
  are near white or black (clicks drive the line to either), and had no
  streak pixel near them in the previous clean frame (the OSD, wires and
  thin edges persist or move a little; clicks are new each frame). Counted
  per band and field (the worse field counts) and over the whole frame
  (clicks are scattered; new scene detail comes in patches). A streak that
  a block match finds again in each of the last two frames, moved with its
  surroundings by up to a few lines and a few dozen pixels, and twice as
  far in the older frame, is scene detail carried by motion, not a click
  (``_moving_detail``). This one test
  runs on the full-width luma, not the view (``_fine_clicks``): a faint
  click is 3-10 pixels long and every 4th column sees only part of it, or
  none. A click is kept when it is at least ``FINE_OPEN`` pixels long
  (fine scene texture at native resolution is 1-2 pixel dots), then pooled
  to the view's columns (any click pixel in a column's span).
- chroma clicks: a click that hits the colour subcarrier decodes as a short
  coloured dash of ordinary brightness, which the white/black test above
  cannot see (on the analog simulator most faint sparklies are such dashes).
  Chroma is band-limited and, after any digital compression, subsampled two
  lines to one, so scene colour hardly ever stands out of a single line; a
  pixel whose Cr or Cb stands out of both same-field and both other-field
  neighbours by more than the picture's own chroma noise allows
  (``CHROMA_STREAK``, raised on noisy pictures by ``CHROMA_NOISE_K``) and
  was not there in the last clean frame is a chroma click. They are counted
  over the frame and as runs along a line, like the luma clicks, against a
  running level of what the scene itself shows. The cue is physics of
  composite video: rendered graphics with hard, combed single-line colour
  edges (the image-domain demo scenery) trip it, so it can be switched off
  (``chroma_clicks=False``, config ``detect.chroma_clicks``) for sources that
  never went through a composite decoder.
- clicks on flat ground: where the ground around a pixel (two lines above
  and below, four view pixels either side) is flat, a pixel standing out of
  all four neighbour lines by several times that ground's span is a click,
  however faint or mid-grey: a camera's optics spread every scene detail
  over two lines or more, and on flat ground there is none anyway. Counted
  fresh over the frame (``FLAT_STREAK``). Off on combed frames (a thin line
  of the scene is a one-line streak in a woven frame) and, with the chroma
  clicks, on rendered graphics, whose far terrain is one-line-thin.
- tearing: a line whose sync came late (early) shows the black blanking at
  its left (right) end. Runs of at least three lines of a field with a
  blanked end (against each line's running level: a capture with black side
  borders has them all the time) are candidates; the first line of a run
  must then be the line above it shifted sideways by two or more view
  pixels. Dark scene content at the picture edge continues the picture
  above it unshifted, which is why the shift test is needed (the blanking
  cue alone fired on the real clips). The blanking is not always there to
  see: a scene dark at the exposed end (a dark border, a shadow) hides it,
  and the sync's jitter smears it. So every line that breaks sharply from
  the line above it (same field) while its neighbours do not, a band's top
  or bottom edge, is also a candidate (``_shear``). A jump sideways must
  explain it much better (``SHEAR_RAMP``), and it must be one jump of the
  whole line: slanted texture and shallow edges are explained by a jump
  too, but so are the line pairs next to them (a tear's lines continue
  each other above and below its edge), an aliased stair step improves the
  match in one place only (a moved line, all along it), and both were
  there in the last clean frame (tears come and go).
  A DVR's coding blurs a tear's top edge over a block of lines: the first
  dark-edged line no longer jumps from the line above it, but a line a few
  lines above the run still jumps to one a few lines inside it
  (``TEAR_SPANS``). Over that span the scene changes too, so such a jump
  counts only when the torn lines below continue each other, when the
  blanking it exposes is there (dark over half the jump's width, at the
  side the picture moved away from) and when it is new.
- colour: chroma energy against its running level (the colour killer drops
  a colourful picture to grey within a frame; a grey scene stays grey, a
  cut to a duller scene is not grey), and the two fields against each other
  (the killer can hit one field; the other keeps the scene's colour).
- coloured snow after 4:2:0 coding: an H.264 or MJPEG DVR smooths light
  snow's line-to-line luma impulses below the noise cue, but its colour
  confetti survives from line pair to line pair (the chroma grid of 4:2:0
  video). Per band, how far each line pair's Cr or Cb stands out of the
  pairs above and below, against its running level (``COLOUR_SNOW_K``).
  Switched off with the chroma clicks (rendered graphics).
- rolling: uniformly black lines (the vertical-sync bar) inside the picture
  that were not there before; black runs touching the top or bottom edge
  are letterboxing, not a sync bar.

Running levels follow the scene quickly on clean frames and very slowly
otherwise (so a detector can never get stuck on "broken"). A scene cut (the
coarse picture changes completely right after a clean frame) re-baselines
them instead of scoring, unless the damage is gross. The frame score is the
max of the per-band scores, in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rtclean.detect.base import Detector
from rtclean.frames import DetectResult

NBANDS = 16
VIEW_WIDTH = 180  # columns kept: every 4th at 720 wide
STREAK_LEVEL = 64  # grey levels a pixel must stand out of its neighbour lines
CLICK_WHITE = 190  # a click pixel is brighter than this ...
CLICK_BLACK = 40  # ... or darker than this
# ... or, on a frame that is not combed, at least this share of the way from
# its brightest (darkest) neighbour line to CLICK_WHITE (CLICK_BLACK): what
# is left of a one-line click once a DVR has scaled the frame's lines (576
# onto 480: each recorded line mixes 1.2 lines, so a click keeps 0.67-0.83
# of its contrast on its main line) or coded it. A pure relaxation: every
# pixel the absolute test takes, this one takes too (see _fine_clicks).
CLICK_REACH = 0.67
PEAK_CLIP = 48  # peaks are clipped so one streak does not look like snow
BLANK_LEVEL = 24  # luma below which the outermost column of a lit line is blanking
FAST_ALPHA = 0.15  # running-level update rate on clean frames
SLOW_ALPHA = 0.01  # ... on frames that look broken (never stuck, 4 s at 25 fps)
GREY_CHROMA = 3.0  # mean |Cr| + |Cb| of a picture the colour killer made grey
CUT_LEVEL = 28.0  # mean |coarse difference| (grey levels) that means a scene cut
# Detail levels (per band) never start, nor grow, above what busy clean video
# shows (the real clips peak at noise 10.4 and 15 fresh streak pixels in a
# band): a receiver switched on with a weak link, or a long burst of faint
# clicks, must not teach the detector that breakup is normal.
PRIOR_NOISE = 6.0  # starting ceiling of the noise level
CAP_NOISE = 12.0  # ceilings at any time
CAP_FRESH = 8.0
# How fast the detail levels rise per frame, on frames that look clean and
# on the others. Slower than they fall (bursts of faint clicks must not be
# learnt), never zero (a busier scene must not read as breakup for ever).
DETAIL_RISE = (0.006, 0.003)
TEAR_RAMP = (0.25, 0.5)  # shift-explained gain of a torn line (real clips peak at 0.2)
# The same gain for a line picked by its break from the line above rather
# than by blanking (``_shear``). Before the one-jump and new-jump rules
# below, the untouched clips reached 0.32 at 1-6x their motion and the
# simulators' clean frames 0.39; with them, no line of those 7232 frames
# keeps any gain, while the image simulator's torn frames keep 0.5-0.92
# (median 0.72; 88 of 107 above the ramp's start).
SHEAR_RAMP = (0.45, 0.6)
SHEAR_LINES = 8  # candidate lines per frame (the sharpest breaks)
TEAR_RUNS = 8  # runs of dark-edged lines tested per frame (the longest)
# Same-field line pairs straddling a run's first line, as (lines above it,
# lines below it) in frame lines: the first is the classic test (the line
# above against the run's first line); the others reach past the lines a
# DVR's coding smeared (H.264 at 1.5 Mbit/s: 18 of 29 torn frames of a
# held-out set missed with the first alone, "Coded tears" in docs/training.md).
TEAR_SPANS = ((2, 0), (4, 2), (6, 4), (8, 6))
TEAR_BLANK_SHARE = 0.5  # a wider span's jump must expose dark this share of its width
TEAR_DARK = 40  # luma of that exposed blanking after coding
SHEAR_SPIKE = 1.5  # a candidate breaks this many times more than its neighbours do
SHEAR_SAME = 0.2  # the same shift explaining a neighbour line pair this well: slanted texture
SHEAR_BETTER = 12  # grey levels: a column the jump explains better ...
SHEAR_PLACES = 3  # ... in at least this many separate runs along the line (a stair step: 1)
SHEAR_REACH = 24  # lines: a like jump of the last clean frame this near is not new ...
SHEAR_SEEN = 0.5  # ... when its gain was at least this share of the new one's
# Fresh click pixels (full-width test, pooled to the view) with a fresh
# neighbour along the line. The untouched training clips peak at 8 at 1-6x
# their motion (vtest_static: a busy native-size scene), the held-out ones at 3.
# (The feature "runs" is the same count on the view-sampled streak test: the
# fused detector's agreement limit, models/breakup.json "fusion", was
# measured on that one.)
RUN_RAMP = (9.0, 17.0)
FINE_OPEN = 3  # full-width pixels a click streak must run along its line
# Chroma clicks: the lowest level a Cr/Cb impulse must reach (the analog
# simulator's clean frames, grain included, reach 7-8 at their 99.5th
# percentile and start to false-alarm at 12; the digital clips stay at 3 or
# less), raised to CHROMA_NOISE_K times the running mean chroma impulse of
# clean frames (0.8 at most on the simulator's clean frames) on noisier
# receivers and cameras.
CHROMA_STREAK = 14
CHROMA_NOISE_K = 14.0
# ... and to CHROMA_GRAIN_K times the frame's own mean chroma impulse. Near
# the FM threshold a composite decoder without a delay line or comb (NTSC
# through a notch) shows coloured grain: every line's chroma is independent
# noise whose tail passes CHROMA_STREAK hundreds of times a frame, and the
# running mean above rises too slowly (DETAIL_RISE) to follow a link that
# fades in a second. Grain lifts the mean of every pixel's impulse, a few
# hundred clicks hardly move it. 10: no loss on the PAL held-out sets, where
# faint clicks stand out of the grain by little (12 cost analog seed 83 5 of
# 110 breakup frames); the NTSC held-out set's clean frames flagged 104 ->
# 54 of 213 (docs/training.md, "Chroma grain").
CHROMA_GRAIN_K = 10.0
CHROMA_LUMA_MAX = 16  # ... while luma stands out by less than this (clicks there: median 0-4)
# Fresh chroma clicks per frame that a scene itself shows (thin colour
# detail, moire) are learnt like the detail levels above, up to this cap;
# the simulator's clean frames and the real clips show 0-14.
CAP_C_FRESH = 40.0
# ... and where that level starts at most. The first frame has no last clean
# frame, so every chroma impulse of the scene counts there, not only fresh
# ones: started from that count (up to the cap), the level took a dozen
# frames to fall to what the scene shows fresh, and faint dashes in the first
# frames of a stream were missed. The selection set's analog clean frames
# show 7 fresh chroma clicks or fewer 95 % of the time, the real clips 3.
PRIOR_C_FRESH = 6.0
PRIOR_C_NOISE = 0.5  # starting ceiling of that running mean (as PRIOR_NOISE)
# Coloured snow after 4:2:0 coding (an H.264 or MJPEG DVR): how far each
# line pair's Cr or Cb stands out of the pairs above and below, per band,
# against COLOUR_SNOW_K times the band's running level. The untouched clips
# reach 0.47 at 1-6x their motion, the simulators' clean frames 0.77 (the
# frame after a snow burst, whose H.264 residue fades); snow that the coding
# smoothed out of the luma test keeps 1-8.
COLOUR_SNOW_K = 3.0
COLOUR_SNOW_RAMP = (1.0, 2.0)
# The running level's ceiling, also where it starts at most. The real clips'
# bands reach 1.6 (carphone, 176x144). Not lower at the start, unlike the
# luma levels: a camera's own colour noise is there from the first frame
# (Gaussian noise of sigma 6 per channel puts any clip at 2.4-3.3), and
# from 0.5 the level would take many frames to rise to it.
CAP_P_NOISE = 1.5
CHROMA_TOTAL_RAMP = (12.0, 24.0)  # fresh chroma click pixels in the frame
# Cross-colour: luma detail near the colour subcarrier (fine texture, sharp
# edges, a camera's sharpening) decodes as colour, line by line. Where the
# impulses it leaves are not stacked over neighbouring lines they look like
# chroma clicks, fresh on every frame as the subcarrier phase and the scene
# move; NTSC has no delay line to halve them. It leaves fresh stacked
# impulses too, which a click (one line, at random) rarely does, and a still
# picture's own colour edges do not (they are not fresh). So the fresh count
# and the run count must exceed this many times the frame's fresh stacked
# impulses, on top of their running levels. Chosen on the real clips
# through the NTSC chain and the selection set (docs/training.md, "Clean
# footage from FPV cameras"): the real clips through the NTSC chain at a
# clean link, flagged 140 -> 4 of 440 (54 with 1.0).
CHROMA_STACKED_K = 2.0
CHROMA_RUN_RAMP = (2.0, 5.0)  # ... that have a fresh neighbour along the line
# Combing: a view pixel that stands out of the other field's lines above and
# below by more than COMB_CROSS while it continues its own field's (by less
# than COMB_FIELD). Fields taken at two instants (an interlaced camera with
# motion) show it along every moving edge: there a thin horizontal line of
# the scene, one line thick in each field, is a one-line streak like a
# click. The feature ``comb`` is its share of the view's pixels: at most
# 0.5 % on the real clips (progressive) at 1-6x their motion and 0.1 % on
# the simulators' clean frames; 1 % (median) to 16 % (99th percentile) on
# the same clips woven from frames t and t+1 (docs/training.md, "Combing").
COMB_CROSS = 24
COMB_FIELD = 6
# The share (``comb``) above which a frame counts as combed: twice the
# highest on the real clips at 1-6x their motion. The fused detector's
# agreements and the flat-ground clicks below are off on a combed frame;
# the chroma clicks are not (docs/training.md, "Where the misses are": off
# there, they lost 4 % of the breakup on the analog simulator's frames
# woven as an interlaced camera gives them, to save 2-3 of 2623 real woven
# frames).
COMBED = 0.01
# A click's soft shoulders: a faint click that an H.264 or MJPEG DVR stored
# (or a narrow receiver's bandwidth) keeps only its middle pixel or two at
# white or black, the pixels either side of it stand out of the lines around
# them by as much but are grey. A run of FINE_OPEN pixels that stand out
# counts as a click when at least one of them is near white or black, on
# frames combed less than SOFT_COMB. Measured (docs/training.md, "Soft
# clicks and interlaced cameras"): analog seed 81 stored as H.264 at 4 /
# 1.5 Mbit/s 110 -> 118 and 100 -> 114 of 136 breakup frames found, the
# demo loops 208 -> 214 of 230 (rendered, stored as H.264, combed 1-3 %),
# the sets as captured unchanged; one more real frame flagged, at every 6th
# frame of a clip. On frames combed 8-44 % (real clips woven from frames t
# and t + 1, the analog simulator woven the same way) it flagged 3 more
# clean frames: a moving thin line of a combed frame is a one-line streak
# whose core can reach white or black.
SOFT_COMB = 0.05
# Clicks on flat ground: where the scene is flat (the lines above and below,
# two each way, a few view pixels either side, span little), a click stands
# out however faint or mid-grey it is, while scene detail that stands out of
# its surroundings there is rare. A view pixel counts when it stands out of
# both same-field and both other-field neighbours by more than FLAT_STREAK
# and by more than FLAT_K times the span of the ground around it, without the
# near-white/near-black requirement of the streak test (a dark click on a
# light wall, a bright one on a dark one: the image simulator's faint
# sparklies that every other cue missed stand out by 60-230 there). Fresh
# against the last clean frame, as the other clicks. The untouched clips
# reach 3 such pixels a frame at 1-6x their motion, stored as MJPEG q60 or
# H.264, with OSD or camera noise; the simulators' clean frames 0; the
# missed faint sparklies 7-17 (docs/training.md, "Clicks on flat ground").
FLAT_STREAK = 48
FLAT_K = 4
FLAT_RAMP = (4.0, 8.0)  # fresh flat-ground click pixels in the frame, above twice its running level
# ... whose ceiling is the clips' highest count. It learns from counts cut
# at the ceiling: a broken frame's hundreds of clicks would lift it there
# within a few frames, and then the faint sparklies between are missed.
CAP_FLAT = 3.0
# A fresh streak that is found again in each of the last two frames (any
# verdicts), moved with its surroundings and twice as far in the older one,
# is scene detail carried by motion (``_moving_detail``): a pan moves thin
# detail further than _PERSIST reaches, and a camera's sharpening makes
# one-line scene detail (twigs, wires, the halo along an edge) as extreme as
# a click. An FM click is in neither frame; a DVR's copy of a broken frame
# has its clicks in the last frame but not in the one before. Searched up to
# MOVED_LINES lines and MOVED_SPAN of the width either way; found when, at
# the best match of its 5-line patch, the streak's own line differs by less
# than MOVED_MATCH of how far it stands out of its neighbour lines; the two
# moves must agree to MOVED_STEADY (in a burst the older frames hold clicks
# too, and a click matched one by chance: without this check 4 % of the
# held-out analog breakup frames' click runs were taken, with it 0.05 %).
# The longest MOVED_MAX streaks are tested, and the search ends after
# MOVED_ENOUGH not found (the frame has clicks enough; the time).
# Measured in docs/training.md, "Scene detail carried by motion".
MOVED_LINES = 4
MOVED_SPAN = 32 / 720  # (32 pixels at 720)
MOVED_MATCH = 0.5
MOVED_STEADY = 4 / 720  # (4 pixels at 720) ...
MOVED_STEADY_LINES = 2  # ... and lines the motion may change by between the two frames
MOVED_MAX = 32
MOVED_ENOUGH = 16  # streaks not found that end the search: the frame has clicks enough
MOVED_CONTRAST = 32  # grey levels: the streak's pixels that count in the match
# A flight controller's OSD (MAX7456-style characters: white strokes with a
# black outline) is drawn into the picture before the transmitter. At the
# capture's own line count its strokes are in both fields and no test here
# takes them for clicks. A DVR that records 480 lines of a 576-line frame
# mixes them into one-line streaks; an NTSC decoder fringes their edges with
# colour; and a scene line next to an outline stands out of it. Where the
# OSD changes (digits, a moving artificial horizon) those are fresh every
# frame. OSD lettering (white with black beside it) within OSD_CELL of the
# last clean frame's strokes (white framed by black within OSD_FRAME lines
# above and below) marks an OSD zone (OSD_ZONE lines and view pixels around
# it) where fresh streaks and chroma clicks do not count. A white click on a
# dark scene counts unless such strokes were near it in the last clean frame.
# Measured in docs/training.md, "An OSD through a DVR".
OSD_WHITE = 180  # the stroke (the chip's white, 235, after the chain and coding)
OSD_BLACK = 60  # ... its outline (the chip's black, 16)
OSD_FRAME = 3  # lines above and below the stroke where its outline is looked for
OSD_ZONE = (4, 2)  # lines, view pixels (8 px at 720) around a stroke
OSD_SIDE = 2  # view pixels (8 px at 720) along the line where an outline is looked for
OSD_CELL = (18 / 576, 6)  # share of the picture's lines (a character is 18 of a field's 288), view pixels (a character either side)
# a streak pixel is "fresh" when the previous clean frame had no streak pixel
# within two lines and three view pixels (12 px at 720) of it
_PERSIST = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 5))
# ... and when not both of the last two frames, whatever their verdicts, had
# one there (``_stuck``): FM clicks land at random, they do not stay put for
# three frames, while scene detail does. Without it, content that the last
# clean frame lacked keeps a frame flagged, a flagged frame does not become
# the reference, and so every later frame of the scene is flagged for the
# same content: a camera's exposure step (the picture 1.4x brighter) brought
# colour detail over the chroma click level and a still scene stayed flagged
# for as long as it lasted (docs/training.md, "Stuck on a stale reference").
# Two frames, not one: a DVR's copy of a broken frame (30 fps recorded from
# 25) keeps its clicks fresh.
# the lines above and below a pixel (two each way), a few view pixels wide
_STACKED = np.ones((5, 5), np.uint8)
_STACKED[2] = 0
# the same-field and other-field lines above and below a pixel (not the pixel)
_NEIGHBOURS = np.array([[1], [1], [0], [1], [1]], np.uint8)
_OPEN = np.ones((1, FINE_OPEN), np.uint8)
_EXTREME = np.where((np.arange(256) > CLICK_WHITE) | (np.arange(256) < CLICK_BLACK), 255, 0).astype(np.uint8)
# click pixels within four lines and four view pixels (16 px at 720) of
# each other, on other lines: edge and texture structure, not a click (below)
_STACKED_FINE = np.ones((9, 9), np.uint8)
_STACKED_FINE[4] = 0
# the OSD_FRAME lines above (below) a pixel, as dilation kernels anchored on
# their last (first) line's neighbour; and the OSD zone around a stroke
_OSD_ABOVE = np.r_[np.ones(OSD_FRAME), np.zeros(OSD_FRAME + 1)].astype(np.uint8).reshape(-1, 1)
_OSD_BELOW = _OSD_ABOVE[::-1].copy()
_OSD_SIDE = np.ones((1, 2 * OSD_SIDE + 1), np.uint8)
_OSD_AROUND = np.ones((2 * OSD_ZONE[0] + 1, 2 * OSD_ZONE[1] + 1), np.uint8)
# the ground around a pixel: lines L-2 .. L+2 but not L, four view pixels
# (16 px at 720) either side (``_flat_clicks``)
_ALONG = np.ones((1, 9), np.uint8)
_GROUND_LINES = np.array([0, 1, 3, 4])  # (from mid line r: view lines r .. r + 4 but not r + 2)
_GROUND_COLS = np.arange(-4, 5)
FLAT_SPARSE = 100  # lines with candidates above which the whole view is cheaper
_TIMES_FLAT_K = np.minimum(np.arange(256) * FLAT_K, 255).astype(np.uint8)  # (a LUT: cv2.multiply is 15x slower)


def _found(patch: np.ndarray, mid: np.ndarray, on: np.ndarray, limit: float, older: np.ndarray,
           x: int, y: int, cols: int, lines: int) -> tuple[int, int] | None:
    """Where ``patch`` (5 lines, its streak on the middle one: ``mid`` at
    the columns ``on``) matches best in ``older`` within ``cols`` and
    ``lines`` of (x, y), its top left corner; None when the streak's line
    there differs by ``limit`` or more on average; else the move (pixels,
    lines). Used by ``ClassicalDetector._moving_detail``."""
    ph, pw = patch.shape
    xa, ya = max(0, x - cols), max(0, y - lines)
    region = older[ya:max(0, y + ph + lines), xa:max(0, x + pw + cols)]  # (a far move: empty, not wrapped)
    if region.shape[0] < ph or region.shape[1] < pw:
        return None  # (moved out of the picture)
    _, _, (bx, by), _ = cv2.minMaxLoc(cv2.matchTemplate(region, patch, cv2.TM_SQDIFF))
    if float(np.abs(mid - older[ya + by + 2, xa + bx:xa + bx + pw][on]).mean()) >= limit:
        return None
    return xa + bx - x, ya + by - y


def reach_luts(reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Per neighbour level, the level a click pixel must pass for CLICK_REACH
    = ``reach``: above it towards white, below it towards black (``reach``
    1: the absolute CLICK_WHITE / CLICK_BLACK)."""
    x = np.arange(256, dtype=np.float64)
    return tuple(np.round(reach * rail + (1.0 - reach) * x).astype(np.uint8)  # type: ignore[return-value]
                 for rail in (CLICK_WHITE, CLICK_BLACK))


_REACH_LUTS = reach_luts(CLICK_REACH)


def _ramp(x, lo: float, hi: float):
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _peaks(a: np.ndarray, up: np.ndarray, dn: np.ndarray) -> np.ndarray:
    """How far each pixel of ``a`` stands out above or below both ``up`` and
    ``dn`` (uint8, saturating: 0 on edges and gradients)."""
    pos = cv2.min(cv2.subtract(a, up), cv2.subtract(a, dn))
    neg = cv2.min(cv2.subtract(up, a), cv2.subtract(dn, a))
    return cv2.max(pos, neg)


def _row_means(img: np.ndarray) -> np.ndarray:
    return cv2.reduce(img, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()


def _runs_by_field(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of True in each field's lines of a per-line mask: the index of
    each run's first line and its length in lines of that field, in line
    order."""
    starts, lengths = [], []
    for f in (0, 1):
        m = np.concatenate(([False], mask[f::2], [False])).astype(np.int8)
        d = np.diff(m)
        s, e = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        starts.append(2 * s + f)
        lengths.append(e - s)
    starts, lengths = np.concatenate(starts), np.concatenate(lengths)
    order = np.argsort(starts, kind="stable")
    return starts[order], lengths[order]


class ClassicalDetector(Detector):
    name = "classical"
    osd_zones = True  # (a switch for measuring what the OSD zone does)

    def __init__(self, view_width: int = VIEW_WIDTH, chroma_clicks: bool = True) -> None:
        self.view_width = view_width
        # off for pictures that never went through a composite decoder
        # (rendered graphics, digital video links): see the module docstring
        self.chroma_clicks = chroma_clicks
        self.reset()

    def reset(self) -> None:
        self._shape: tuple[int, int] | None = None
        self._base: dict[str, np.ndarray | float] = {}
        self._prev_mask: np.ndarray | None = None  # click mask (full-width test) of the last clean frame
        self._prev_vmask: np.ndarray | None = None  # ... the view-sampled one
        self._prev_fmask: np.ndarray | None = None  # ... the flat-ground one
        self._fine: tuple[tuple[int, ...], list[np.ndarray], np.ndarray, np.ndarray] | None = None
        self._prev_cmask: np.ndarray | None = None
        self._prev_smask: np.ndarray | None = None  # ... its chroma impulses stacked over neighbouring lines
        self._prev_coarse: np.ndarray | None = None
        self._prev_y: np.ndarray | None = None  # the last clean frame's luma view (tearing must be new)
        self._prev_score = 0.0
        # click masks of the last two frames, whatever their verdicts: (t-2, t-1) per kind
        # (each as [mask, the mask dilated by _PERSIST or None until needed]:
        # in a run of flagged frames a mask is compared as the last frame's,
        # then as the older one's, and is dilated once)
        self._recent: dict[str, tuple[list | None, list | None]] = {}
        self._ref_near: dict[str, np.ndarray] = {}  # see _near_ref
        self._grays: list[np.ndarray] = []  # full-width luma of the last two frames, oldest first
        self._prev_osd: np.ndarray | None = None  # the last clean frame's OSD strokes (see OSD_WHITE)
        self._osd_cell: np.ndarray | None = None  # ... dilated by a character cell

    def _near_ref(self, kind: str) -> np.ndarray:
        """Where the last clean frame's click mask of this kind ("mask",
        "vmask", "fmask", "cmask", "smask") had a pixel within _PERSIST.
        Kept until the reference changes: through a run of flagged frames
        the same reference is compared with every frame."""
        near = self._ref_near.get(kind)
        if near is None:
            near = self._ref_near[kind] = cv2.dilate(getattr(self, "_prev_" + kind), _PERSIST)
        return near

    def _moving_detail(self, new: np.ndarray, vnew: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two fresh streak masks (the full-width test's and the view's,
        lines 2 .. h-3 at view width) without the streaks a block match finds
        in each of the last two frames' full-width luma (see MOVED_MATCH).
        ``g`` is this frame's full-width luma. Both masks' streaks are tested
        once, as runs along their line (the two mostly mark the same ones)."""
        if len(self._grays) < 2 or self._grays[0].shape != g.shape:
            return new, vnew  # (the picture's width changed, not its view: nothing to match against)
        pts = cv2.findNonZero(cv2.bitwise_or(new, vnew))  # (row-major order)
        if pts is None:
            return new, vnew
        xs, rows = pts[:, 0, 0], pts[:, 0, 1]
        # runs along a line (a gap starts a new one: scene detail found again
        # must not take a click beside it along)
        starts = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (xs[1:] - xs[:-1] > 1)])
        ends = np.r_[starts[1:], xs.size] - 1
        # the longest first (runs along a line are what the run counts and
        # the fusion rules read), at most MOVED_MAX of them
        order = np.argsort(starts - ends, kind="stable")[:MOVED_MAX]
        starts, ends = starts[order], ends[order]
        h, fw = g.shape
        step = fw / new.shape[1]
        reach = max(1, round(MOVED_SPAN * fw))
        steady = max(1, round(MOVED_STEADY * fw))
        gone = None
        kept = 0
        for r, x_first, x_last in zip(rows[starts].tolist(), xs[starts].tolist(), xs[ends].tolist()):
            line = r + 2  # (mask row r is line r + 2)
            if line + 3 > h:
                continue
            # the run's full-width span and 4 pixels of its surroundings either side
            x0, x1 = max(0, int(x_first * step) - 4), min(fw, int((x_last + 1) * step) + 4)
            patch = g[line - 2:line + 3, x0:x1]
            p = patch.astype(np.int16)
            mid = p[2]
            contrast = np.abs(2 * mid - p[1] - p[3])  # (twice how far it stands out)
            on = contrast > 2 * MOVED_CONTRAST
            if not on.any():
                continue
            limit = MOVED_MATCH * 0.5 * float(contrast[on].mean())
            mid = mid[on]
            move = _found(patch, mid, on, limit, self._grays[1], x0, line - 2, reach, MOVED_LINES)
            if move is not None:
                # and in the one before, moved twice as far: scene detail
                # moves steadily, while a click that happens to look like
                # something nearby in one frame does not in the other at the
                # place the motion predicts (bursts: those frames have clicks too)
                before = _found(patch, mid, on, limit, self._grays[0], x0, line - 2, reach, MOVED_LINES)
                if (before is not None and abs(before[0] - 2 * move[0]) <= steady
                        and abs(before[1] - 2 * move[1]) <= MOVED_STEADY_LINES):
                    if gone is None:
                        gone = np.zeros_like(new)
                    gone[r, x_first:x_last + 1] = 255
                    continue
            kept += 1
            if kept >= MOVED_ENOUGH:
                break  # (clicks enough to flag the frame: the rest stay, as tested ones would)
        if gone is None:
            return new, vnew
        return cv2.subtract(new, gone), cv2.subtract(vnew, gone)

    @staticmethod
    def _osd_strokes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lines 2 .. h-3 of the view (0 / 255): OSD character strokes in
        their outline (white pixels with black within OSD_FRAME lines above
        and within OSD_FRAME lines below; see OSD_WHITE), and the looser
        marks of OSD lettering (white with black within OSD_FRAME lines
        either way or OSD_SIDE view pixels along the line: vertical strokes,
        ends)."""
        white = cv2.compare(y, OSD_WHITE, cv2.CMP_GT)
        black = cv2.compare(y, OSD_BLACK, cv2.CMP_LT)
        above = cv2.dilate(black, _OSD_ABOVE, anchor=(0, OSD_FRAME))
        below = cv2.dilate(black, _OSD_BELOW, anchor=(0, OSD_FRAME))
        framed = cv2.bitwise_and(white, cv2.bitwise_and(above, below))
        near = cv2.bitwise_or(cv2.bitwise_or(above, below), cv2.dilate(black, _OSD_SIDE))
        return framed[2:-2], cv2.bitwise_and(white, near)[2:-2]

    def _osd_zone(self, marks: np.ndarray) -> np.ndarray | None:
        """Where fresh streaks do not count (see OSD_WHITE), or None: around
        this frame's OSD marks, within a character cell of the last clean
        frame's strokes."""
        if self._prev_osd is None or self._prev_osd.shape != marks.shape or not cv2.countNonZero(marks):
            return None
        if self._osd_cell is None:
            if not cv2.countNonZero(self._prev_osd):
                return None
            lines = max(1, round(OSD_CELL[0] * (marks.shape[0] + 4)))
            self._osd_cell = cv2.dilate(self._prev_osd, np.ones((2 * lines + 1, 2 * OSD_CELL[1] + 1), np.uint8))
        near = cv2.dilate(marks, _OSD_AROUND)
        return cv2.bitwise_and(near, self._osd_cell)

    def _full_luma(self, image: np.ndarray) -> np.ndarray:
        """This frame's full-width luma: the buffer _fine_clicks converted it
        into, or converted here when that test did not run on it."""
        if self._fine is not None and self._fine[0][0] == image.shape:
            return self._fine[1][0]
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image

    def _keep_gray(self, g: np.ndarray) -> None:
        """Keep this frame's full-width luma as the newest of the last two
        (into the oldest one's buffer: no allocation per frame)."""
        if self._grays and self._grays[0].shape != g.shape:
            self._grays = []
        if len(self._grays) == 2:
            buf = self._grays.pop(0)
            np.copyto(buf, g)
            self._grays.append(buf)
        else:
            self._grays.append(g.copy())

    def _stuck(self, kind: str, new: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``new`` without the pixels near which each of the last two frames
        had a click pixel of this kind (see _PERSIST); and ``mask`` kept as
        the newest of the two. Only after a flagged frame: after a clean one
        the last frame is the reference, already subtracted."""
        older, last = self._recent.get(kind, (None, None))
        self._recent[kind] = (last, [mask, None])
        if (self._prev_score < 0.5 or older is None or last is None or older[0].shape != mask.shape
                or last[0].shape != mask.shape):
            return new
        for m in (older, last):
            if m[1] is None:
                m[1] = cv2.dilate(m[0], _PERSIST)
        return cv2.subtract(new, cv2.bitwise_and(older[1], last[1]))

    # ------------------------------------------------------------------ view

    def _view(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, ...]]:
        """Luma, chroma magnitude (None for grey input) and the Cr, Cb planes."""
        h, w = image.shape[:2]
        vw = min(w, self.view_width)
        small = cv2.resize(image, (vw, h), interpolation=cv2.INTER_NEAREST) if vw != w else image
        if small.ndim == 2:
            return np.ascontiguousarray(small), None, ()
        y, cr, cb = cv2.split(cv2.cvtColor(small, cv2.COLOR_BGR2YCrCb))
        chroma = cv2.add(cv2.absdiff(cr, 128), cv2.absdiff(cb, 128))  # saturating
        return y, chroma, (cr, cb)

    @staticmethod
    def _chroma_impulses(planes: tuple[np.ndarray, ...]) -> np.ndarray | None:
        """Per view pixel of lines 2 .. h-3, how far Cr or Cb stands out of
        both same-field and both other-field neighbour lines."""
        out = None
        for c in planes:
            m = c[2:-2]
            p = cv2.min(_peaks(m, c[:-4], c[4:]), _peaks(m, c[1:-3], c[3:-1]))
            out = p if out is None else cv2.max(out, p)
        return out

    def _pair_chroma_noise(self, planes: tuple[np.ndarray, ...], h: int) -> np.ndarray:
        """Per band: the mean of how far each line pair's Cr or Cb stands out
        of the pairs above and below. Line pairs are the chroma grid of
        4:2:0 video: there a one-line chroma test sees nothing (both lines
        of a pair share their colour), while coloured snow still shows as
        confetti from pair to pair."""
        out = None
        n = h // 2 * 2
        for c in planes:
            # the pair means (strided views: 16 us here, against 210 us for cv2.resize INTER_AREA)
            pr = cv2.addWeighted(c[0:n:2], 0.5, c[1:n:2], 0.5, 0.0)
            p = _peaks(pr[1:-1], pr[:-2], pr[2:])
            out = p if out is None else cv2.max(out, p)
        return np.bincount(self._pair_band, weights=_row_means(out), minlength=NBANDS) / self._pair_rows

    def _fine_clicks(self, image: np.ndarray, w: int, soft: bool = False, reach: bool = False) -> np.ndarray:
        """The click streak mask of lines 2 .. h-3 at view width ``w``: full-width
        luma pixels that stand out of both same-field and both other-field
        neighbour lines by more than STREAK_LEVEL towards white (black) and
        are near white (black), kept where at least FINE_OPEN of them run
        along the line, pooled to the view's columns. With ``soft``, a run
        of FINE_OPEN pixels that stand out is kept when any one of them is
        near white or black (a click's soft shoulders, see SOFT_COMB). With
        ``reach``, near white (black) also means CLICK_REACH of the way there
        from the neighbour lines.

        Written into buffers kept between frames: a dozen full-frame
        temporaries would each cost a fresh allocation (page faults), which
        made this step about three times slower when measured (2.0 against
        0.6 ms on its own)."""
        h, fw = image.shape[:2]
        key = (image.shape, w)
        if self._fine is None or self._fine[0] != key:
            step = fw / w
            pool = np.ones((1, FINE_OPEN + int(np.ceil(step)) - 1), np.uint8)
            self._fine = (key, [np.empty((h, fw), np.uint8) for _ in range(5)], pool,
                          (np.arange(w) * step).astype(np.intp))
        _, (g, a, b, c, d), pool, cols = self._fine
        if image.ndim == 3:
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=g)
        else:
            g[...] = image
        cv2.dilate(g, _NEIGHBOURS, dst=a)  # brightest neighbour line
        cv2.erode(g, _NEIGHBOURS, dst=b)  # darkest neighbour line
        if reach:
            # near white: above CLICK_REACH * CLICK_WHITE + (1 - CLICK_REACH) * brightest neighbour
            white, black = _REACH_LUTS
            cv2.LUT(a, white, dst=d)
            cv2.compare(g, d, cv2.CMP_GT, dst=c)
            cv2.LUT(b, black, dst=d)
            cv2.compare(g, d, cv2.CMP_LT, dst=d)
            cv2.bitwise_or(c, d, dst=c)
        else:
            cv2.LUT(g, _EXTREME, dst=c)
        cv2.subtract(g, a, dst=a)
        cv2.compare(a, STREAK_LEVEL, cv2.CMP_GT, dst=a)  # above all four: cannot be near black
        cv2.subtract(b, g, dst=b)
        cv2.compare(b, STREAK_LEVEL, cv2.CMP_GT, dst=b)  # below all four: cannot be near white
        cv2.bitwise_or(a, b, dst=a)
        if soft:
            # a run of FINE_OPEN that stands out, with at least one pixel
            # of it at white or black (see SOFT_COMB)
            cv2.bitwise_and(a, c, dst=c)
            cv2.dilate(c, _OPEN, dst=c, anchor=(0, 0))
            cv2.erode(a, _OPEN, dst=b, anchor=(0, 0))
            cv2.bitwise_and(b, c, dst=b)
        else:
            cv2.bitwise_and(a, c, dst=a)
            # opening along the line (runs shorter than FINE_OPEN go)
            cv2.erode(a, _OPEN, dst=b, anchor=(0, 0))
        # fused with the pooling: the kept runs are spread over the view
        # column spans they touch, then each span is read at its first pixel
        cv2.dilate(b, pool, dst=a, anchor=(FINE_OPEN - 1, 0))
        m = a[2:-2, cols]
        # a click hits one line at a random place: click pixels stacked over
        # nearby lines are hard-edged structure (far terrain rendered without
        # filtering, an aliased horizon, OSD graphics). Clean frames of the
        # image demo flagged (seeds 2, 5, 8 PAL): 8 on seed 2 without this
        # rule; 1, 1, - reaching two lines and two view pixels; 0, 1, 2
        # reaching two lines and four pixels; 0, 1, 0 with this one. (The
        # view-sampled test alone flagged 0, 6, 3.)
        return cv2.subtract(m, cv2.dilate(m, _STACKED_FINE))

    @staticmethod
    def _flat_clicks(y: np.ndarray, p_both: np.ndarray) -> np.ndarray:
        """The flat-ground click mask of lines 2 .. h-3 (0 / 255): view pixels
        whose impulse ``p_both`` exceeds FLAT_STREAK and FLAT_K times the span
        of the ground around them: lines L-2 .. L+2 but not L (where a click
        runs on), four view pixels either side.

        Few pixels pass FLAT_STREAK on a clean frame (0-150 of 100 000 on the
        real clips), so the span is taken at those alone: 40-80 us against 200
        us for the whole view; a frame full of snow, or busy with detail, gets
        the whole-view path (the same result)."""
        cand = cv2.compare(p_both, FLAT_STREAK, cv2.CMP_GT)
        lines = np.flatnonzero(cv2.reduce(cand, 1, cv2.REDUCE_MAX).ravel())  # (cv2.findNonZero: 100 us)
        if lines.size == 0:
            return cand
        if lines.size > FLAT_SPARSE:
            # max - min over the four lines of 9-pixel runs (a kernel with a
            # hole is not separable: 4x slower as one dilate and erode)
            hi, lo = cv2.dilate(y, _ALONG), cv2.erode(y, _ALONG)
            span = cv2.subtract(cv2.max(cv2.max(hi[:-4], hi[1:-3]), cv2.max(hi[3:-1], hi[4:])),
                                cv2.min(cv2.min(lo[:-4], lo[1:-3]), cv2.min(lo[3:-1], lo[4:])))
            return cv2.bitwise_and(cand, cv2.compare(p_both, cv2.LUT(span, _TIMES_FLAT_K), cv2.CMP_GT))
        r, c = np.nonzero(cand[lines])
        r = lines[r]  # mid line r is view line r + 2
        ground = y[(r[:, None] + _GROUND_LINES)[:, :, None],
                   np.clip(c[:, None] + _GROUND_COLS, 0, y.shape[1] - 1)[:, None, :]]  # (n, 4, 9)
        span = ground.max(axis=(1, 2)).astype(np.int16) - ground.min(axis=(1, 2))
        keep = p_both[r, c] > FLAT_K * span
        cand[r[~keep], c[~keep]] = 0
        return cand

    def _setup(self, shape: tuple[int, int]) -> None:
        self.reset()
        self._shape = shape
        h, w = shape
        lines = np.arange(2, h - 2)  # the lines that have two same-field neighbours
        band = np.minimum(lines * NBANDS // h, NBANDS - 1)
        self._bin = band * 2 + (lines & 1)  # (band, field) bin of each line
        self._bin_rows = np.maximum(np.bincount(self._bin, minlength=2 * NBANDS), 1)
        self._band_px = self._bin_rows.reshape(NBANDS, 2) * w  # view pixels per band and field
        pair_lines = np.arange(1, h // 2 - 1) * 2  # first line of each pair that has both neighbours
        self._pair_band = np.minimum(pair_lines * NBANDS // h, NBANDS - 1)
        self._pair_rows = np.maximum(np.bincount(self._pair_band, minlength=NBANDS), 1)

    def _per_band(self, rows: np.ndarray) -> np.ndarray:
        """(NBANDS, 2) means of per-line values, by band and field."""
        return (np.bincount(self._bin, weights=rows, minlength=2 * NBANDS) / self._bin_rows).reshape(NBANDS, 2)

    # ------------------------------------------------------------------ detect

    def detect(self, image: np.ndarray) -> DetectResult:
        y, chroma, planes = self._view(image)
        h, w = y.shape
        if h < 16:
            return DetectResult(score=0.0, bands=np.zeros(NBANDS, np.float32), features={})
        if self._shape != y.shape:
            self._setup(y.shape)
        mid = y[2:-2]  # lines 2 .. h-3

        # impulses against the same field (lines L -/+ 2) and the other one (L -/+ 1)
        p_field = _peaks(mid, y[:-4], y[4:])
        p_cross = _peaks(mid, y[1:-3], y[3:-1])
        noise_bf = self._per_band(_row_means(cv2.min(p_field, PEAK_CLIP)))  # (band, field)
        noise = noise_bf.mean(axis=1)
        p_both = cv2.min(p_field, p_cross)
        comb = cv2.countNonZero(cv2.bitwise_and(cv2.compare(p_cross, COMB_CROSS, cv2.CMP_GT),
                                                cv2.compare(p_field, COMB_FIELD, cv2.CMP_LT))) / p_field.size
        # FM clicks drive the line to (near) white or black; thin scene detail
        # rarely reaches either with this much contrast
        extreme = cv2.bitwise_or(cv2.compare(mid, CLICK_WHITE, cv2.CMP_GT), cv2.compare(mid, CLICK_BLACK, cv2.CMP_LT))
        vmask = cv2.bitwise_and(cv2.compare(p_both, STREAK_LEVEL, cv2.CMP_GT), extreme)  # 0 / 255
        # (the relaxed near-white test not on a combed frame, where a thin
        # line of the scene is a one-line streak already: real clips woven
        # as an interlaced camera gives them, 3 -> 7 frames flagged with it)
        mask = self._fine_clicks(image, w, soft=comb < SOFT_COMB, reach=comb < COMBED)
        new = cv2.subtract(mask, self._near_ref("mask")) if self._prev_mask is not None else mask
        new = self._stuck("luma", new, mask)
        vnew = cv2.subtract(vmask, self._near_ref("vmask")) if self._prev_vmask is not None else vmask
        vnew = self._stuck("view", vnew, vmask)
        gray = self._full_luma(image)
        new, vnew = self._moving_detail(new, vnew, gray)
        osd, osd_marks = self._osd_strokes(y)
        osd_zone = self._osd_zone(osd_marks) if self.osd_zones else None
        if osd_zone is not None:
            new, vnew = cv2.subtract(new, osd_zone), cv2.subtract(vnew, osd_zone)
        fresh_bf = self._per_band(_row_means(new)) / 255.0 * self._band_px
        fresh_px = fresh_bf.max(axis=1)
        # an FM click is a streak along its line: fresh pixels with a fresh
        # neighbour to the right. Scene highlights that pass the streak test
        # are mostly isolated dots.
        runs = float(cv2.countNonZero(cv2.bitwise_and(new[:, 1:], new[:, :-1])))
        view_runs = float(cv2.countNonZero(cv2.bitwise_and(vnew[:, 1:], vnew[:, :-1])))
        # clicks on flat ground (see FLAT_STREAK): not on a combed frame, where
        # a thin line of the scene is a one-line streak in any flat surround,
        # nor on rendered graphics (switched off with the chroma clicks, below)
        fmask = self._flat_clicks(y, p_both) if self.chroma_clicks else None
        flat_bf = np.zeros((NBANDS, 2))
        if fmask is not None and comb < COMBED and cv2.countNonZero(fmask):  # (none on most frames)
            fnew = cv2.subtract(fmask, self._near_ref("fmask")) if self._prev_fmask is not None else fmask
            fnew = self._stuck("flat", fnew, fmask)
            if osd_zone is not None:
                fnew = cv2.subtract(fnew, osd_zone)
            flat_bf = self._per_band(_row_means(fnew)) / 255.0 * self._band_px
        flat_total = float(flat_bf.sum())
        # chroma clicks (fresh against the last clean frame, as above)
        c_imp = self._chroma_impulses(planes) if self.chroma_clicks else None
        c_noise = float(cv2.mean(c_imp)[0]) if c_imp is not None else 0.0
        cmask = smask = None
        c_bf, c_runs, c_count, c_stacked = np.zeros((NBANDS, 2)), 0.0, 0.0, 0.0
        if c_imp is not None:
            # (the running level rises slowly, so the frame's own grain counts too)
            c_level = max(CHROMA_STREAK, CHROMA_NOISE_K * float(self._base.get("c_noise", 0.0)),
                          CHROMA_GRAIN_K * c_noise)
            cmask = cv2.compare(c_imp, c_level, cv2.CMP_GT)
            # the receiver's luma notch takes the subcarrier-band part of a
            # click out of luma: a chroma click barely shows in luma, where a
            # thin coloured line of the scene is a luma line too
            cmask = cv2.bitwise_and(cmask, cv2.compare(p_both, CHROMA_LUMA_MAX, cv2.CMP_LT))
            # a click hits one line: impulses stacked over neighbouring lines
            # are a near-horizontal colour edge (aliased graphics, combing)
            raw = cmask
            cmask = cv2.subtract(cmask, cv2.dilate(cmask, _STACKED))
            c_count = float(cv2.countNonZero(cmask))
            smask = cv2.subtract(raw, cmask)  # the stacked ones (see CHROMA_STACKED_K)
            if self._prev_smask is not None and self._prev_smask.shape == smask.shape:
                c_stacked = CHROMA_STACKED_K * cv2.countNonZero(
                    cv2.subtract(smask, self._near_ref("smask")))
            if self._prev_cmask is not None and self._prev_cmask.shape == cmask.shape:
                cnew = self._stuck("chroma", cv2.subtract(cmask, self._near_ref("cmask")), cmask)
                if osd_zone is not None:
                    cnew = cv2.subtract(cnew, osd_zone)
                c_bf = self._per_band(_row_means(cnew)) / 255.0 * self._band_px
                c_runs = float(cv2.countNonZero(cv2.bitwise_and(cnew[:, 1:], cnew[:, :-1])))

        # coloured snow that coding took out of the luma test (see COLOUR_SNOW_K)
        p_noise = self._pair_chroma_noise(planes, h) if planes and self.chroma_clicks else np.zeros(NBANDS)

        # tearing: a late (early) line shows the black blanking at its left
        # (right) end while the line itself is a normal picture
        row = _row_means(mid)
        lit = row > 50
        left = (mid[:, 0] < BLANK_LEVEL) & (mid[:, 1] < BLANK_LEVEL + 8)
        right = (mid[:, w - 1] < BLANK_LEVEL) & (mid[:, w - 2] < BLANK_LEVEL + 8)
        edge = ((left | right) & lit).astype(np.float32)

        coarse = cv2.resize(y[::4, ::4], (16, 12), interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = float(np.abs(coarse - self._prev_coarse).mean()) if self._prev_coarse is not None else 0.0
        black = self._sync_bar(y)
        if chroma is not None:
            c_even, c_odd = float(cv2.mean(chroma[0::2])[0]), float(cv2.mean(chroma[1::2])[0])
        else:
            c_even = c_odd = 0.0
        chroma_level = (c_even + c_odd) / 2
        # the colour killer can hit one field: the other field of the same
        # scene keeps its colour, which no scene content does
        field_split = 1.0 - min(c_even, c_odd) / max(c_even, c_odd) if max(c_even, c_odd) > 6.0 else 0.0

        base = self._base
        if not base:
            # the first frame may itself be broken (see PRIOR_NOISE)
            base.update(noise=np.minimum(noise, PRIOR_NOISE), fresh=np.minimum(fresh_px, CAP_FRESH),
                        edge=edge.copy(), chroma=chroma_level, black=black, c_noise=min(c_noise, PRIOR_C_NOISE),
                        c_fresh=min(c_count, PRIOR_C_FRESH), p_noise=np.minimum(p_noise, CAP_P_NOISE), flat=0.0)
        colour_loss = float(_ramp(field_split, 0.6, 0.85))
        # the colour killer leaves a grey picture, not merely a duller scene
        if base["chroma"] > 6.0 and chroma_level < GREY_CHROMA:
            colour_loss = max(colour_loss, float(_ramp(1.0 - chroma_level / base["chroma"], 0.4, 0.6)))
        roll = float(_ramp(black - base["black"], 0.02, 0.05))

        # excess over the band's (line's) own history: scene detail, noise
        # floor and picture edges vary a lot between cameras and scenes
        noise_x = noise - 1.4 * base["noise"] - 1.0
        colour_snow = _ramp(p_noise - COLOUR_SNOW_K * base["p_noise"], *COLOUR_SNOW_RAMP)
        fresh_x = fresh_px - 2.0 * base["fresh"] - 3.0
        # clicks are scattered over the whole picture: the frame total
        # separates them from a patch of new scene detail better than one band
        fresh_total = float(fresh_px.sum())
        total_x = fresh_total - 1.5 * base["fresh"].sum() - 4.0
        if self._prev_mask is None:  # first frame: nothing can be told fresh yet
            fresh_x, total_x, runs = np.full(NBANDS, -99.0), -99.0, 0.0
        edge_x = edge - base["edge"]  # a capture with black side borders has them on every frame
        # three consecutive lines of a field: single dark-edged lines are scene detail
        edge_x = np.minimum(np.minimum(edge_x, np.roll(edge_x, -2)), np.roll(edge_x, -4))
        tear_bf = self._tear(y, edge_x > 0.5)
        np.maximum(tear_bf, self._shear_bands(*self._shear(y)), out=tear_bf)
        tear = tear_bf.max(axis=1)
        # a cut: the coarse picture changes completely right after a clean
        # frame, with no sync bar, no colour collapse and no torn lines
        # (rolling, the colour killer and tearing change the coarse picture
        # too; a cut's new picture continues from line to line)
        is_cut = (cut >= CUT_LEVEL and self._prev_score < 0.5 and roll == 0 and colour_loss == 0
                  and tear.max() < TEAR_RAMP[0])
        band_scores = np.maximum(_ramp(noise_x, 4.5, 7.0), _ramp(fresh_x, 8.0, 20.0))
        band_scores = np.maximum(band_scores, _ramp(tear, *TEAR_RAMP))
        band_scores = np.maximum(band_scores, colour_snow)
        # gross damage needs no history (full static after a cut is still static)
        gross = _ramp(noise, 14.0, 20.0)
        band_scores = gross if is_cut else np.maximum(band_scores, gross)

        clicks = max(float(_ramp(total_x, 10.0, 30.0)), float(_ramp(runs, *RUN_RAMP)))
        if clicks > 0:  # the bands that have more new streaks than usual
            band_scores = np.maximum(band_scores, clicks * (fresh_x > -1.0))
        c_px = c_bf.max(axis=1)  # fresh chroma clicks per band (the worse field)
        c_total = float(c_bf.sum())
        c_base = float(base["c_fresh"])
        cclicks = max(float(_ramp(c_total - 2.0 * c_base - c_stacked, *CHROMA_TOTAL_RAMP)),
                      float(_ramp(c_runs - (c_base + c_stacked) / 4, *CHROMA_RUN_RAMP)))
        if cclicks > 0:
            band_scores = np.maximum(band_scores, cclicks * (c_px > 0))
        flat = float(_ramp(flat_total - 2.0 * base["flat"], *FLAT_RAMP)) if self._prev_fmask is not None else 0.0
        if flat > 0:
            band_scores = np.maximum(band_scores, flat * (flat_bf.max(axis=1) > 0))
        whole = max(colour_loss, roll)
        if whole > 0:
            band_scores = np.maximum(band_scores, whole)
        score = float(band_scores.max())
        split = float(_ramp(field_split, 0.6, 0.85))
        # the grey-picture and roll cues concern both fields; a one-field
        # colour killer only the greyer one
        both = max(roll, colour_loss) if colour_loss > split else roll
        if _ramp(noise_x, 4.5, 7.0).max() < 0.5:
            # snow the luma cue missed (coding smoothed it): a line pair is a
            # line of each field, so both count. Where the luma cue sees the
            # snow, its per-field test names the field (the other one is
            # real picture that field repair uses).
            both = max(both, float(colour_snow.max()))
        fields = self._field_scores(noise_bf, fresh_bf, tear_bf, is_cut, clicks, both, split, c_even < c_odd,
                                    np.maximum(cclicks * (c_bf > 0), flat * (flat_bf > 0)))

        # running levels: follow the scene on clean frames, jump on cuts
        if is_cut and gross.max() == 0:
            base.update(noise=np.minimum(noise, CAP_NOISE), fresh=np.minimum(fresh_px, CAP_FRESH),
                        edge=edge.copy(), chroma=chroma_level, black=black, c_noise=c_noise, p_noise=p_noise.copy(),
                        flat=min(flat_total, CAP_FLAT))
        else:
            a = FAST_ALPHA if score < 0.2 else SLOW_ALPHA
            for key, val in (("edge", edge), ("chroma", chroma_level), ("black", black)):
                base[key] = base[key] + a * (val - base[key])
            # detail levels rise slowly and fall fast: clicks come in bursts,
            # and a burst too faint to be caught must not teach the detector
            # that clicks are normal
            for key, val in (("noise", noise), ("fresh", fresh_px), ("c_noise", c_noise), ("c_fresh", c_total),
                             ("p_noise", p_noise), ("flat", min(flat_total, CAP_FLAT))):
                up = val > base[key]
                rise = DETAIL_RISE[0] if score < 0.05 else DETAIL_RISE[1]
                base[key] = base[key] + np.where(up, rise, 2 * a) * (val - base[key])
            base["noise"] = np.minimum(base["noise"], CAP_NOISE)
            base["fresh"] = np.minimum(base["fresh"], CAP_FRESH)
            base["c_fresh"] = min(base["c_fresh"], CAP_C_FRESH)
            base["p_noise"] = np.minimum(base["p_noise"], CAP_P_NOISE)
            base["flat"] = min(base["flat"], CAP_FLAT)
        self._prev_coarse = coarse
        self._keep_gray(gray)
        if score < 0.5 or self._prev_mask is None:
            self._prev_y = y.copy()
            self._prev_cmask = cmask
            self._prev_smask = smask
            self._prev_mask = mask  # a broken frame's clicks must not hide the next frame's
            self._prev_vmask = vmask
            self._prev_fmask = fmask
            self._prev_osd = osd
            self._osd_cell = None
            self._ref_near.clear()
        self._prev_score = score

        features = {
            "noise": float(noise.max()), "noise_excess": float(noise_x.max()),
            "fresh": float(fresh_px.max()), "fresh_excess": float(fresh_x.max()),
            "fresh_total_excess": float(total_x), "clicks": clicks,
            "tear": float(tear.max()), "comb": float(comb), "runs": view_runs, "click_runs": runs, "chroma_clicks": cclicks, "chroma_runs": c_runs, "chroma_total": c_total, "chroma_stacked": c_stacked,
            "flat_clicks": flat, "flat_total": flat_total, "flat_base": float(base["flat"]),
            "chroma_fresh_base": c_base, "chroma": chroma_level, "chroma_base": float(base["chroma"]),
            "colour_loss": colour_loss, "field_split": field_split,
            "colour_snow": float(colour_snow.max()), "pair_chroma_noise": float(p_noise.max()),
            "black_rows": black, "roll": roll, "cut": cut,
        }
        return DetectResult(score=score, bands=band_scores.astype(np.float32), features=features, fields=fields)

    def _field_scores(self, noise_bf, fresh_bf, tear_bf, is_cut: bool, clicks: float, both: float,
                      split: float, even_greyer: bool, field_clicks: np.ndarray) -> np.ndarray:
        """(even, odd) field scores from the same cues as the bands, read
        per field: snow, clicks and tearing often hit one field only, and
        then the other field is real picture that field repair can use.
        Whole-frame cues (roll, a grey picture) count for both fields, the
        one-field colour killer for the greyer field."""
        base = self._base
        noise_x = noise_bf - 1.4 * base["noise"][:, None] - 1.0
        fresh_x = fresh_bf - 2.0 * base["fresh"][:, None] - 3.0
        if self._prev_mask is None:  # first frame: nothing can be told fresh yet
            fresh_x = np.full_like(fresh_x, -99.0)
        gross = _ramp(noise_bf, 14.0, 20.0)
        per = gross if is_cut else np.maximum.reduce([_ramp(noise_x, 4.5, 7.0), _ramp(fresh_x, 8.0, 20.0),
                                                      _ramp(tear_bf, *TEAR_RAMP), gross])
        if clicks > 0 and not is_cut:
            # a field with clicks has more fresh streaks than its band's usual
            # level; the band rule's margin (> -1) would also take the clean
            # field of a band whose other field is full of clicks
            per = np.maximum(per, clicks * (fresh_x > 0.0))
        per = np.maximum(per, field_clicks)  # (band, field): chroma and flat-ground clicks of that field
        f = per.max(axis=0)
        f = np.maximum(f, both)
        g = 0 if even_greyer else 1
        f[g] = max(f[g], split)
        return f.astype(np.float32)

    def _tear(self, y: np.ndarray, run: np.ndarray) -> np.ndarray:
        """Per band and field: how well a sideways shift explains the first torn line
        of each run of dark-edged lines from the line above it (same
        field), or, where a DVR's coding blurred that edge, a line a few
        lines inside the run from one a few lines above it (TEAR_SPANS,
        ``_span_gain``). Dark scene content at the picture edge continues the
        picture above it unshifted; a late line is the picture moved.
        The gain goes to every band the run's dark-edged lines cover, in
        the run's field: the repair replaces the flagged bands only."""
        tear = np.zeros((NBANDS, 2))
        starts, lengths = _runs_by_field(run)  # mid index i = frame line i + 2
        keep = starts >= 2
        starts, lengths = starts[keep], lengths[keep]
        if starts.size > TEAR_RUNS:
            # the longest runs: a torn band is many lines tall, while dark
            # scene content at the picture edge (a shadow, a dark object)
            # makes short runs, and taking the first runs from the top let
            # such content crowd out a tear lower in the picture (a torn
            # band 30 lines tall at the bottom of a frame went untested)
            pick = np.sort(np.argsort(-lengths, kind="stable")[:TEAR_RUNS])
            starts, lengths = starts[pick], lengths[pick]
        if starts.size == 0:
            return tear
        gain = np.zeros(starts.size)
        for above, below in TEAR_SPANS:
            # a run whose gain tops TEAR_RAMP already scores in full
            todo = np.nonzero(gain < TEAR_RAMP[1])[0]
            if todo.size == 0:
                break
            gain[todo] = np.maximum(gain[todo], self._span_gain(y, starts[todo] + 2, above, below))
        # Only a run's first line can be tested (the lines below it continue
        # the shifted picture), but the whole run is torn: a tear spanning
        # several bands scored in its first band only left the others' torn
        # lines raw. run[i] means mid lines i, i+2 and i+4 are dark-edged, so
        # a run starting at s whose mask holds for k same-field indices has
        # dark-edged lines s .. s + 2k + 2. At most TEAR_RUNS runs: a short loop.
        h = y.shape[0]
        for s, k, g in zip(starts.tolist(), lengths.tolist(), gain.tolist()):
            if g <= 0.0:
                continue
            last = min(s + 2 * k + 2, run.size - 1)
            b0 = (s + 2) * NBANDS // h
            b1 = min((last + 2) * NBANDS // h, NBANDS - 1)
            col = tear[b0:b1 + 1, s & 1]
            np.maximum(col, g, out=col)
        return tear

    def _span_gain(self, y: np.ndarray, first: np.ndarray, above: int, below: int) -> np.ndarray:
        """Shift gain from the line ``above`` lines over each run's first
        (dark-edged) frame line to the line ``below`` lines under it (same
        field). Past the plain test (2, 0) a jump must also pass the checks
        of a coded tear (see TEAR_SPANS): scene content changes over a few
        lines, and a shift can explain part of that change by chance (a row
        of poles, a sign's edge)."""
        h, w = y.shape
        s_max = max(3, w // 6)
        up, low = first - above, first + below
        span = above + below
        ok = (up >= 0) & (low + (span if span > 2 else 0) < h)
        if not ok.any():
            return np.zeros(first.size)
        up, low = np.where(ok, up, 0), np.where(ok, low, 0)
        gain, shift = self._jump(y[up].astype(np.int16), y[low].astype(np.int16), s_max, col_step=2)
        gain = gain * ok
        if span <= 2 or not gain.any():
            return gain
        # the torn lines below continue each other: the same span further
        # down shifts little (slanted texture shifts there as well)
        g_on, _ = self._jump(y[low].astype(np.int16), y[low + span].astype(np.int16), s_max, col_step=2)
        gain[g_on > SHEAR_SAME] = 0.0
        # the jump exposes blanking: a late line's picture moved right
        # (shift < 0: the lower line matches the upper one further left)
        # and left its left end dark, as wide as the move; dark scene content
        # at the edge is as wide as it happens to be
        dark = np.pad(y[low] < TEAR_DARK, ((0, 0), (1, 1)))  # (a False column ends every run)
        width = np.where(shift < 0, np.argmin(dark[:, 1:], axis=1), np.argmin(dark[:, -2::-1], axis=1))
        gain[width < TEAR_BLANK_SHARE * np.abs(shift)] = 0.0
        # and it is new: the last clean frame had no like jump near it
        prev = self._prev_y
        if gain.any() and prev is not None and prev.shape == y.shape:
            cand = np.nonzero(gain)[0]
            k = np.arange(-SHEAR_REACH, SHEAR_REACH + 1, 2)
            pu = np.clip(up[cand, None] + k[None, :], 0, h - 1).ravel()
            pl = np.clip(low[cand, None] + k[None, :], 0, h - 1).ravel()
            seen, _ = self._jump(prev[pu].astype(np.int16), prev[pl].astype(np.int16), s_max, col_step=2)
            seen = seen.reshape(cand.size, k.size).max(axis=1)
            gain[cand[seen >= SHEAR_SEEN * gain[cand]]] = 0.0
        return gain

    def _shear(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per line of the view: how well a sideways shift explains the line
        from the same-field line above it, for the SHEAR_LINES lines that
        break most sharply from the line above while the lines around them
        do not (0 elsewhere), when the break is new; and which side of that
        edge is torn, when the last clean frame tells (1 below, -1 above,
        0 unknown). A torn band's top and bottom edges are such breaks;
        inside the band the lines continue each other, and busy texture
        breaks on every line alike."""
        h, w = y.shape
        gains = np.zeros(h, np.float32)
        sides = np.zeros(h, np.int8)
        s_max = max(3, w // 6)
        prev = self._prev_y
        if h < 16 or w < 2 * s_max + 8 or prev is None or prev.shape != y.shape:
            return gains, sides
        step = _row_means(cv2.absdiff(y[2:, s_max:w - s_max], y[:-2, s_max:w - s_max]))  # line i + 2 against i
        n = step.size
        padded = np.pad(step, 6, mode="edge")
        near = np.stack([padded[6 + k:6 + k + n] for k in (-6, -4, -2, 2, 4, 6)])  # same-field neighbours
        near.sort(axis=0)
        around = 0.5 * (near[2] + near[3])  # their median
        spike = step / (around + 2.0)
        spike[:6] = 0.0
        spike[-6:] = 0.0
        spike[step < 6.0] = 0.0  # flat lines: no shift can be told
        cand = np.argpartition(spike, -SHEAR_LINES)[-SHEAR_LINES:]
        cand = cand[spike[cand] > SHEAR_SPIKE]
        if cand.size == 0:
            return gains, sides
        # A tear's edge is one jump: the lines above it continue each other
        # unshifted, and so do the torn lines below it (their jitter is a
        # pixel or two). Slanted scene texture (crop rows, a shallow or
        # stair-stepped horizon) jumps on the neighbouring line pairs too.
        yi = y.astype(np.int16)  # (a view of 180 columns: cheap)
        gain, shift = self._jump(yi[cand], yi[cand + 2], s_max)
        keep = gain > SHEAR_RAMP[0]  # most frames stop here
        cand, gain, shift = cand[keep], gain[keep], shift[keep]
        if cand.size == 0:
            return gains, sides
        upper = np.concatenate([np.clip(cand - 2, 0, h - 3), np.clip(cand + 2, 0, h - 3)])
        g_nb, _ = self._jump(yi[upper], yi[upper + 2], s_max)
        gain = np.where(np.maximum(g_nb[:cand.size], g_nb[cand.size:]) > SHEAR_SAME, 0.0, gain)
        # A late line moves all of its picture: the jump improves the match
        # at many separate places along the line. A displaced edge (one
        # stair step of an aliased edge) improves it in one run of columns
        # as wide as the jump, and nowhere else.
        cols = np.arange(s_max, w - s_max)
        line = yi[cand + 2][:, cols]
        better = (np.abs(line - yi[cand][:, cols]) - np.abs(line - np.take_along_axis(
            yi[cand], cols[None, :] + shift[:, None], axis=1))) > SHEAR_BETTER
        places = better[:, 0] + np.count_nonzero(better[:, 1:] & ~better[:, :-1], axis=1)
        gain = np.where(places < SHEAR_PLACES, 0.0, gain)
        keep = gain > 0.0
        cand, gain, shift = cand[keep], gain[keep], shift[keep]
        if cand.size == 0:
            return gains, sides
        # ... and it is new: a stair-stepped edge (aliased graphics, scaled
        # video) jumps sideways like a tear on a few lines, but the last
        # clean frame had the same jump nearby (tears come and go at random)
        k = np.arange(-SHEAR_REACH, SHEAR_REACH + 1, 2)
        win = np.clip(cand[:, None] + k[None, :], 0, h - 3)  # (n, window) pairs (i, i + 2) of prev
        ps = np.clip(shift[:, None] + np.arange(-2, 3)[None, :], -s_max, s_max)  # (n, 5)
        pp = prev.astype(np.int16)
        low = pp[win + 2][:, :, cols]  # (n, window, cols)
        p0 = np.abs(low - pp[win][:, :, cols]).mean(axis=2)
        idx = cols[None, None, :] + ps[:, :, None]  # (n, 5, cols)
        up = pp[win]  # (n, window, w)
        idx = np.broadcast_to(idx[:, None], (*win.shape, *idx.shape[1:]))  # (n, window, 5, cols)
        moved = np.take_along_axis(up[:, :, None, :], idx, axis=3)
        p_s = np.abs(low[:, :, None, :] - moved).mean(axis=3).min(axis=2)  # (n, window)
        seen = ((p0 - p_s) / (p0 + 4.0)).max(axis=1)
        gain = np.where(seen > SHEAR_SEEN * gain, 0.0, gain)
        # Which side of the edge moved: the torn lines are the last clean
        # frame's lines moved by the jump, the intact ones are not moved
        # (below: line L = cand + 2 moved by shift; above: line L - 2 by -shift)
        moved_by = []
        for rows, sh in ((cand + 2, shift), (cand, -shift)):
            cur = yi[rows][:, cols]
            was = pp[rows]
            d_still = np.abs(cur - was[:, cols]).mean(axis=1)
            d_moved = np.abs(cur - np.take_along_axis(was, np.clip(cols[None, :] + sh[:, None], 0, w - 1),
                                                     axis=1)).mean(axis=1)
            moved_by.append(d_still - d_moved)
        below, above = moved_by
        side = np.where(below > np.maximum(above, 0.0) + 2.0, 1, np.where(above > np.maximum(below, 0.0) + 2.0, -1, 0))
        gains[cand + 2] = gain
        sides[cand + 2] = side
        return gains, sides

    @staticmethod
    def _jump(up: np.ndarray, low: np.ndarray, s_max: int, col_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """For line pairs (rows of ``up`` above rows of ``low``, int16): how
        much better than unshifted a sideways jump of 2 .. s_max view
        pixels explains the lower line (0 .. 1; 0 for pairs that hardly
        differ unshifted), and that jump."""
        w = up.shape[1]
        shifts = np.arange(-s_max, s_max + 1)
        # window j of ``up`` is its columns moved by shifts[j] (a view, no copy)
        moved = sliding_window_view(up, w - 2 * s_max, axis=1)[:, :, ::col_step]  # (pairs, shifts, cols)
        diff = low[:, None, s_max:w - s_max:col_step] - moved
        np.abs(diff, out=diff)
        ds = diff.sum(axis=2, dtype=np.int32) / np.float32(diff.shape[2])
        at0 = ds[:, s_max].copy()
        ds[:, s_max - 1:s_max + 2] = np.inf  # a pixel of slant is the scene, not sync
        best = np.argmin(ds, axis=1)
        gain = np.clip((at0 - ds[np.arange(len(best)), best]) / (at0 + 4.0), 0.0, 1.0)
        return gain * (at0 > 6.0), shifts[best]  # a flat line pair tells nothing

    @staticmethod
    def _shear_bands(fresh: np.ndarray, sides: np.ndarray) -> np.ndarray:
        """(band, field) tear gains, on TEAR_RAMP's scale, of the lines whose
        shift gain is fresh and above SHEAR_RAMP's start. An edge with its
        torn side below opens a torn stretch that runs to the field's next
        edge (which closes it) or one band on; one torn above closes a
        stretch that began at the previous edge or a band before; an edge
        whose side the last clean frame could not tell marks its band and
        the bands either side (the repair's own checks narrow that down).
        Two tears of one frame stay two stretches."""
        out = np.zeros((NBANDS, 2))
        lines = np.nonzero(fresh > SHEAR_RAMP[0])[0]  # (fresh: 0 where not new)
        if lines.size == 0:
            return out
        h = fresh.size
        # SHEAR_RAMP mapped onto TEAR_RAMP: a shear edge scores as a blanked tear would
        g = TEAR_RAMP[0] + (fresh[lines] - SHEAR_RAMP[0]) * (
            (TEAR_RAMP[1] - TEAR_RAMP[0]) / (SHEAR_RAMP[1] - SHEAR_RAMP[0]))
        for field in (0, 1):
            sel = np.nonzero((lines & 1) == field)[0]
            bands = (lines[sel] * NBANDS // h).tolist()
            side = sides[lines[sel]].tolist()
            for i, (b, sd, v) in enumerate(zip(bands, side, g[sel].tolist())):
                if sd > 0:
                    lo, hi = b, bands[i + 1] if i + 1 < len(bands) and side[i + 1] <= 0 else b + 1
                elif sd < 0:
                    lo, hi = bands[i - 1] if i > 0 and side[i - 1] >= 0 else b - 1, b
                else:
                    lo, hi = b - 1, b + 1
                col = out[max(lo, 0):min(hi, NBANDS - 1) + 1, field]
                np.maximum(col, v, out=col)
        return out

    @staticmethod
    def _sync_bar(y: np.ndarray) -> float:
        """Share of lines that are uniformly black, not counting black runs
        touching the top or bottom edge (letterboxing): a rolling picture
        shows the vertical-sync bar somewhere inside the frame."""
        black = (cv2.reduce(y, 1, cv2.REDUCE_MAX).ravel() < 60) & (_row_means(y) < 20)
        if black.all():
            return 0.0  # a black screen is the no-signal check's business
        top = int(np.argmin(black))
        bottom = int(np.argmin(black[::-1]))
        return float(black[top:black.size - bottom].mean())
