"""The clean feed fullscreen on a local screen: a Pi's HDMI output through
pygame/SDL2 (KMSDRM on a console without a desktop).

The processing thread only calls ``show(p)``: it drops the frame into a
latest-only ``Mailbox`` and returns, so a slow screen (or a vsync wait in
``flip``) can never delay the per-frame path; frames the screen was too slow
for are counted in ``dropped``. Everything SDL does happens on the display's
own thread, as SDL requires of the thread that created the window.

What the screen shows:

- the clean picture, scaled to fit with black bars (aspect kept);
- when no frame came for ``display.lost_after_s`` (the source stalled): the
  last picture dimmed with the same SIGNAL LOST banner the repair stage uses
  (rtclean.repair.overlay), or NO SIGNAL before any picture; the pipeline's own
  LOST frames already carry that banner;
- optionally a status line along the bottom: fps, breakup rate, REC.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from rtclean.config import DisplayConfig
from rtclean.errors import RtcleanError
from rtclean.frames import Processed
from rtclean.mailbox import MailboxWorker
from rtclean.repair import overlay
from rtclean.stats import Rate

log = logging.getLogger(__name__)

DEFAULT_SIZE = (720, 576)  # window size before the first frame, when the config leaves it at 0
IDLE_REDRAW_S = 1.0  # without frames, redraw this often (status line, lost state)


def fit(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest ``src`` aspect rectangle centred in ``dst``."""
    scale = min(dst_w / src_w, dst_h / src_h)
    w, h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    return (dst_w - w) // 2, (dst_h - h) // 2, w, h


def status_text(fps: float | None, breakup_recent: float | None, status: dict | None) -> str:
    parts = [f"{fps:.1f} fps" if fps is not None else "– fps"]
    if breakup_recent is not None:
        parts.append(f"breakup {breakup_recent * 100:.0f}%")
    rec = (status or {}).get("recording") or {}
    if rec.get("active"):
        parts.append("REC")
    elif rec.get("state") in ("disk_full", "error"):
        parts.append(f"REC {rec['state'].replace('_', ' ')}")
    return "  ·  ".join(parts).replace("·", "-")  # Hershey fonts have no middle dot


def draw_status_line(canvas: np.ndarray, text: str) -> None:
    """A dark bar with ``text`` along the bottom of ``canvas`` (RGB, in place)."""
    h, w = canvas.shape[:2]
    bar = max(14, h // 24)
    canvas[h - bar:] = (canvas[h - bar:] * 0.25).astype(np.uint8)
    scale = bar / 34
    cv2.putText(canvas, text, (max(4, bar // 3), h - bar // 4 - 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (235, 235, 235), max(1, round(scale * 2)), cv2.LINE_AA)


class Display(MailboxWorker[Processed]):
    def __init__(self, cfg: DisplayConfig, status: Callable[[], dict] | None = None) -> None:
        """``status``: the pipeline's status() for the REC mark of the status line."""
        super().__init__()
        self.cfg = cfg
        self.status = status
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._shot_req = threading.Event()
        self._shot_done = threading.Event()
        self._shot: np.ndarray | None = None
        self.size: tuple[int, int] = (0, 0)  # screen size once open
        self.frames_shown = 0
        self.lost_shown = 0  # redraws with the SIGNAL LOST / NO SIGNAL picture
        self._rate = Rate()
        self._broken: list[bool] = []
        self._status_cache: dict | None = None
        self._status_t = -1e9

    # ------------------------------------------------------------------ pipeline side

    def start(self) -> None:
        """Open the screen; returns once it is open. RtcleanError on failure."""
        if self._thread is not None:
            return
        self._spawn(self._main, "rtclean-display")
        self._started.wait(timeout=20)
        if self._start_error is not None or not self._started.is_set():
            err = self._start_error
            self._thread.join(timeout=2)
            self._thread = None
            if isinstance(err, RtcleanError):
                raise err
            raise RtcleanError(f"display: cannot open the screen (driver {self.cfg.driver}): {err}")
        log.info("display open: %dx%d", *self.size)

    def show(self, p: Processed) -> None:
        """Hand the newest processed frame to the screen; never waits."""
        self._box.put(p)

    def screenshot(self, timeout: float = 5.0) -> np.ndarray:
        """What the screen shows now, HxWx3 RGB (read back on the display thread)."""
        self._shot_done.clear()
        self._shot_req.set()
        if not self._shot_done.wait(timeout):
            raise RtcleanError("display: no screenshot (the display thread is not running)")
        assert self._shot is not None
        return self._shot

    # ------------------------------------------------------------------ display thread

    def _open(self):
        if self.cfg.driver != "auto":
            os.environ["SDL_VIDEODRIVER"] = self.cfg.driver
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame
        except ModuleNotFoundError:
            raise RtcleanError("display.enabled needs pygame: pip install 'rtclean[display]'") from None
        pygame.display.init()
        if self.cfg.fullscreen:
            screen = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        else:
            w = self.cfg.width or DEFAULT_SIZE[0]
            h = self.cfg.height or DEFAULT_SIZE[1]
            screen = pygame.display.set_mode((w, h))
        pygame.display.set_caption("rtclean")
        pygame.mouse.set_visible(False)
        return pygame, screen

    def _main(self) -> None:
        try:
            pygame, screen = self._open()
        except BaseException as e:  # reported by start() on the caller's thread
            self._start_error = e
            self._started.set()
            return
        self.size = screen.get_size()
        self._started.set()
        try:
            self._loop(pygame, screen)
        except Exception:  # the screen must never take the pipeline down
            log.exception("display stopped")
        finally:
            pygame.display.quit()

    def _loop(self, pygame, screen) -> None:
        last: Processed | None = None
        last_t = time.monotonic()
        last_draw = 0.0
        lost_drawn = False
        while not self._closed:
            p = self._box.get(timeout=0.1)
            for event in pygame.event.get():  # keep SDL responsive; a console has no close button
                if event.type == pygame.VIDEORESIZE:
                    self.size = screen.get_size()
            now = time.monotonic()
            picture = None
            if p is not None:
                last, last_t, lost_drawn = p, now, False
                self._rate.tick(now)
                self._broken.append(bool(p.decision.breakup))
                if len(self._broken) > 250:
                    del self._broken[:50]
                picture = p.clean
                self.frames_shown += 1
            elif now - last_t >= self.cfg.lost_after_s and (not lost_drawn or now - last_draw >= IDLE_REDRAW_S):
                picture = overlay.signal_lost(last.clean) if last is not None else overlay.slate(*DEFAULT_SIZE)
                lost_drawn = True
                self.lost_shown += 1
            if picture is not None:
                self._draw(pygame, screen, picture)
                last_draw = now
            if self._shot_req.is_set():
                self._shot = pygame.surfarray.array3d(screen).swapaxes(0, 1).copy()
                self._shot_req.clear()
                self._shot_done.set()

    def _status(self) -> dict | None:
        """The pipeline's status, asked at most once a second (it builds a dict)."""
        now = time.monotonic()
        if self.status is not None and now - self._status_t >= 1.0:
            self._status_t = now
            try:
                self._status_cache = self.status()
            except Exception:  # a status glitch must not blank the screen
                log.debug("status for the display", exc_info=True)
        return self._status_cache

    def _draw(self, pygame, screen, bgr: np.ndarray) -> None:
        sw, sh = screen.get_size()
        ih, iw = bgr.shape[:2]
        x, y, w, h = fit(iw, ih, sw, sh)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if (w, h) != (iw, ih):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if w < iw else cv2.INTER_LINEAR)
        if self.cfg.status_line:
            recent = self._broken[-100:]
            draw_status_line(rgb, status_text(self._rate.per_second() or None,
                                              sum(recent) / len(recent) if recent else None, self._status()))
        screen.fill((0, 0, 0))
        screen.blit(pygame.image.frombuffer(rgb.tobytes(), (w, h), "RGB"), (x, y))
        pygame.display.flip()
