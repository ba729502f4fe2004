"""`rtclean dataset label`: a labelling page that sorts the frames of a
dataset folder (see dataset.py) into its class folders.

Endpoints:

    GET  /                         the page (static/label.html, .css, .js)
    GET  /api/state                classes with keys and counts, progress, the
                                   queue of unlabelled names, recent decisions
    GET  /img/<name>               an unlabelled frame as stored (?w=N: a JPEG
                                   thumbnail N px wide; ?prev=1: its previous frame)
    GET  /img/<class>/<name>       a labelled frame (same options)
    POST /api/label {name, class}  move DIR/name into DIR/class/
    POST /api/skip {name}          put the frame at the end of the queue
    POST /api/undo                 move the last labelled frame back

Names must be plain file names of images present in the folder (400 for
anything else, 404 if absent); an unknown class is 400; a frame that is
already gone (another tab labelled it) is 409, as is a target that exists.
Every move is one os.replace within the folder, so a frame is always in
exactly one place; handlers run on one event loop with no await between the
check and the move, so two requests cannot interleave there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from aiohttp import web

from rtclean.errors import listen_error
from rtclean.train.dataset import (MAX_CLASSES, PREV_DIR, DatasetError, class_folders, image_names,
                                   is_image_name)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
RESERVED_KEYS = {"u", "s", "p", "z"}  # undo, skip, previous frame, (ctrl-)z
QUEUE_SHOWN = 12  # names of upcoming frames sent with the state (thumbnails + preloading)
RECENT_SHOWN = 8
MAX_THUMB_W = 640
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".bmp": "image/bmp",
                 ".webp": "image/webp"}


class Conflict(Exception):
    """The request is valid but the folder is no longer as it assumed (409)."""


class BadRequest(Exception):
    """400."""


class NotFound(Exception):
    """404."""


@dataclass(frozen=True)
class Decision:
    name: str
    cls: str


def class_keys(classes: list[str]) -> dict[str, list[str]]:
    """Keys per class: its digit (1, 2, ...) and its first letter when that
    letter is unique among the classes and not a command key."""
    firsts = [c[0].lower() for c in classes]
    keys = {}
    for i, c in enumerate(classes):
        k = [str(i + 1)]
        if firsts.count(firsts[i]) == 1 and firsts[i] not in RESERVED_KEYS and not firsts[i].isdigit():
            k.append(firsts[i])
        keys[c] = k
    return keys


class LabelStore:
    """The folder's state and the moves; all file-system logic of labelling."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"{self.root}: no such folder")
        self.classes = class_folders(self.root)
        if len(self.classes) < 2:
            found = f" (found only {self.classes[0]}/)" if self.classes else ""
            raise DatasetError(f"{self.root}: needs at least two class folders{found}, e.g. breakup/ and "
                               "clean/ (rtclean dataset sample creates them)")
        if len(self.classes) > MAX_CLASSES:
            raise DatasetError(f"{self.root}: {len(self.classes)} class folders; at most {MAX_CLASSES} "
                               "(one digit key each)")
        self.keys = class_keys(self.classes)
        self.history: list[Decision] = []  # this session's decisions, for undo
        self.skipped: list[str] = []  # in skip order: shown after the rest
        self.front: str | None = None  # an undone frame is shown again first

    # ------------------------------------------------------------ validation

    def check_name(self, name: object) -> str:
        if not isinstance(name, str) or not name or len(name) > 255 or "\x00" in name:
            raise BadRequest("name: expected a file name")
        if "/" in name or "\\" in name or name in (".", "..") or os.path.basename(name) != name:
            raise BadRequest(f"name {name!r}: must be a plain file name")
        if not is_image_name(name):
            raise BadRequest(f"name {name!r}: not an image file name")
        return name

    def check_class(self, cls: object) -> str:
        if not isinstance(cls, str) or cls not in self.classes:
            raise BadRequest(f"class {cls!r}: unknown; classes are {', '.join(self.classes)}")
        return cls

    def where(self, name: str) -> str | None:
        """The class folder a frame is in, "" if unlabelled, None if absent."""
        if (self.root / name).is_file():
            return ""
        for cls in self.classes:
            if (self.root / cls / name).is_file():
                return cls
        return None

    # ------------------------------------------------------------ state

    def queue(self) -> list[str]:
        names = image_names(self.root)
        present = set(names)
        skipped = [n for n in self.skipped if n in present]
        rank = {n: i for i, n in enumerate(skipped)}
        order = sorted(names, key=lambda n: (n in rank, rank.get(n, 0), n))
        if self.front in present:
            order.remove(self.front)
            order.insert(0, self.front)
        return order

    def state(self) -> dict:
        queue = self.queue()
        counts = {c: len(image_names(self.root / c)) for c in self.classes}
        labelled = sum(counts.values())
        recent = [{"name": d.name, "class": d.cls} for d in reversed(self.history[-RECENT_SHOWN:])]
        return {
            "folder": str(self.root),
            "classes": [{"name": c, "keys": self.keys[c], "count": counts[c]} for c in self.classes],
            "labelled": labelled,
            "unlabelled": len(queue),
            "total": labelled + len(queue),
            "queue": queue[:QUEUE_SHOWN],
            "recent": recent,
            "can_undo": bool(self.history),
            # The page offers "hold p: previous frame" only when there is one.
            "current_has_prev": bool(queue) and (self.root / PREV_DIR / queue[0]).is_file(),
        }

    # ------------------------------------------------------------ moves

    def _move(self, src: Path, dst: Path) -> None:
        if dst.exists():
            raise Conflict(f"{dst.relative_to(self.root)} exists already; not overwriting it")
        try:
            os.replace(src, dst)
        except FileNotFoundError:
            raise Conflict(f"{src.relative_to(self.root)} is gone (labelled elsewhere?)") from None

    def label(self, name: object, cls: object) -> Decision:
        name = self.check_name(name)
        cls = self.check_class(cls)
        at = self.where(name)
        if at is None:
            raise NotFound(f"{name}: no such frame in {self.root}")
        if at != "":
            raise Conflict(f"{name}: already labelled {at}")
        self._move(self.root / name, self.root / cls / name)
        d = Decision(name, cls)
        self.history.append(d)
        if self.front == name:
            self.front = None
        log.info("%s -> %s/", name, cls)
        return d

    def skip(self, name: object) -> None:
        name = self.check_name(name)
        if self.where(name) != "":
            raise NotFound(f"{name}: not an unlabelled frame in {self.root}")
        if name in self.skipped:
            self.skipped.remove(name)
        self.skipped.append(name)
        if self.front == name:
            self.front = None

    def undo(self) -> Decision:
        if not self.history:
            raise Conflict("nothing to undo")
        d = self.history[-1]
        src = self.root / d.cls / d.name
        if not src.is_file():
            self.history.pop()  # moved away by hand: cannot be undone, drop it
            raise Conflict(f"{d.cls}/{d.name} is no longer there; cannot undo")
        self._move(src, self.root / d.name)
        self.history.pop()
        if d.name in self.skipped:
            self.skipped.remove(d.name)
        self.front = d.name
        log.info("undo: %s/%s back", d.cls, d.name)
        return d

    def image_path(self, name: object, cls: str | None, prev: bool) -> Path:
        name = self.check_name(name)
        if cls is not None:
            cls = self.check_class(cls)
        if self.where(name) != ("" if cls is None else cls):
            raise NotFound(f"{name}: not in {cls + '/' if cls else 'the unlabelled frames'}")
        path = self.root / PREV_DIR / name if prev else self.root / (cls or "") / name
        if not path.is_file():
            raise NotFound(f"{name}: no previous frame stored")
        return path


# --------------------------------------------------------------------------- HTTP


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def thumbnail(path: Path, width: int) -> bytes:
    """A small JPEG of an image file (area-averaged, so no aliasing)."""
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise NotFound(f"{path.name}: not a decodable image")
    h, w = img.shape[:2]
    if w > width:
        img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes()


class LabelServer:
    """The aiohttp application around a LabelStore, on the caller's event loop."""

    def __init__(self, store: LabelStore, host: str = "127.0.0.1", port: int = 8090) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.url = ""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/label", self._label)
        app.router.add_post("/api/skip", self._skip)
        app.router.add_post("/api/undo", self._undo)
        app.router.add_get("/img/{name}", self._image)
        app.router.add_get("/img/{cls}/{name}", self._image)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as e:
            await self._runner.cleanup()
            self._runner = None
            raise listen_error("labelling page", self.host, self.port, e) from None
        host, self.port = self._runner.addresses[0][:2]
        self.url = f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ handlers

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "label.html", headers={"Cache-Control": "no-cache"})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.state(), headers={"Cache-Control": "no-store"})

    async def _body(self, request: web.Request) -> dict:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("body: expected JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("body: expected a JSON object")
        return body

    async def _act(self, request: web.Request, fn) -> web.Response:
        try:
            body = await self._body(request) if request.can_read_body else {}
            result = fn(body)
        except BadRequest as e:
            return _error(400, str(e))
        except NotFound as e:
            return _error(404, str(e))
        except Conflict as e:
            return _error(409, str(e))
        except OSError as e:  # e.g. a read-only folder: say so, do not crash the page
            return _error(500, f"cannot move the file: {e.strerror or e}")
        state = self.store.state()
        if result is not None:
            state["done"] = {"name": result.name, "class": result.cls}
        return web.json_response(state, headers={"Cache-Control": "no-store"})

    async def _label(self, request: web.Request) -> web.Response:
        return await self._act(request, lambda b: self.store.label(b.get("name"), b.get("class")))

    async def _skip(self, request: web.Request) -> web.Response:
        return await self._act(request, lambda b: self.store.skip(b.get("name")))

    async def _undo(self, request: web.Request) -> web.Response:
        return await self._act(request, lambda b: self.store.undo())

    async def _image(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            path = self.store.image_path(request.match_info["name"], request.match_info.get("cls"),
                                         prev=q.get("prev") == "1")
            headers = {"Cache-Control": "private, max-age=300"}
            if "w" in q:
                try:
                    width = min(MAX_THUMB_W, max(16, int(q["w"])))
                except ValueError:
                    raise BadRequest("w: expected a width in pixels") from None
                # Decoding a PNG takes milliseconds: keep the loop free meanwhile.
                data = await asyncio.get_running_loop().run_in_executor(None, thumbnail, path, width)
                return web.Response(body=data, content_type="image/jpeg", headers=headers)
        except BadRequest as e:
            return _error(400, str(e))
        except NotFound as e:
            return _error(404, str(e))
        ctype = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(path, headers={**headers, "Content-Type": ctype})


async def serve(root: str | Path, host: str, port: int, announce=print) -> None:
    """Serve the labelling page for ``root`` until cancelled (Ctrl-C)."""
    store = LabelStore(root)
    server = LabelServer(store, host, port)
    url = await server.start()
    st = store.state()
    announce(f"labelling {st['unlabelled']} frames of {store.root} into "
             f"{', '.join(c + '/' for c in store.classes)} at {url}  (Ctrl-C to stop)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C and a plain `kill` both end the session cleanly (SIGINT is set
    # explicitly: a shell starts background jobs with it ignored).
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / no signals here
            pass
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        await server.stop()
