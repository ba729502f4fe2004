"""The recordings browser's HTTP side: list, play/download, delete, keep.

The files come from the pipeline's ``RecordingLibrary`` (rtclean.record.library),
which knows the recordings directory and which recording is being written.
Downloads can never leave that directory: names are checked against a plain
pattern before the library sees them, the library resolves them itself, and
the final path is resolved again (symlinks included) and must lie inside the
directory; anything else is a 404 that says nothing about the file system.

    GET    /api/recordings                     list, newest first (JSON)
    GET    /recordings/{name}/{kind}           the file (Range requests work, so
                                               <video> can seek); ?download=1 saves it
    DELETE /api/recordings/{name}              token; 409 while it is being written
    POST   /api/recordings/{name}/keep         token; body {"keep": true|false}
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from rtclean.errors import RtcleanError
from rtclean.live.auth import json_error

log = logging.getLogger(__name__)

# Recording base names and file kinds as the recorder writes them: letters,
# digits, "-", "_" and dots, never starting with a dot (so never "..").
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
CONTENT_TYPES = {".mp4": "video/mp4", ".ts": "video/mp2t", ".mkv": "video/x-matroska",
                 ".jsonl": "application/x-ndjson", ".json": "application/json"}
# What the browser can play, best first: remuxed MP4s (a .ts plays nowhere but Safari).
PLAYABLE = ("clean.mp4", "raw.mp4")


def _plain(value: str) -> bool:
    return bool(PLAIN.fullmatch(value)) and ".." not in value


def describe(rec: Any) -> dict:
    """A Recording as JSON for the page."""
    files = {kind: {"size": _size(path), "url": f"/recordings/{rec.name}/{kind}"}
             for kind, path in sorted(rec.files.items())}
    started = float(rec.started)
    return {
        "name": rec.name,
        "started": started,
        # UTC; the page shows local time. The Pi's clock may be wrong before NTP.
        "started_iso": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "size_bytes": int(rec.size_bytes),
        "duration_s": None if rec.duration_s is None else round(float(rec.duration_s), 2),
        "keep": bool(rec.keep),
        "active": bool(rec.active),
        "breakup": rec.breakup,
        "files": files,
        "play": next((files[k]["url"] for k in PLAYABLE if k in files), None),
    }


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class RecordingsApi:
    def __init__(self, library: Callable[[], Any | None], refuse: Callable[[web.Request], web.Response | None]) -> None:
        """``library()``: the RecordingLibrary or None (recording not set up);
        ``refuse(request)``: the token check (None = allowed)."""
        self._library = library
        self._refuse = refuse

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/recordings", self.list)
        app.router.add_get("/recordings/{name}/{kind}", self.file)
        app.router.add_delete("/api/recordings/{name}", self.delete)
        app.router.add_post("/api/recordings/{name}/keep", self.keep)

    def _lib(self) -> Any | web.Response:
        lib = self._library()
        if lib is None:
            return json_error(503, "recordings are not available: recording is not set up in this run")
        return lib

    def _get(self, lib: Any, name: str) -> Any | web.Response:
        if not _plain(name):
            return json_error(400, "not a recording name")
        try:
            return lib.get(name)
        except ValueError:
            return json_error(400, "not a recording name")
        except KeyError:
            return json_error(404, f"no recording {name}")

    async def list(self, request: web.Request) -> web.Response:
        lib = self._lib()
        if isinstance(lib, web.Response):
            return lib
        recs = [describe(r) for r in lib.list()]
        free = None
        try:
            from rtclean.live.system import disk_free_mb

            free = disk_free_mb(lib.directory)
        except Exception:  # a vanished directory: the list still shows
            log.debug("free space of %s", getattr(lib, "directory", "?"), exc_info=True)
        return web.json_response({"dir": str(lib.directory), "free_mb": free, "recordings": recs},
                                 headers={"Cache-Control": "no-store"})

    async def file(self, request: web.Request) -> web.StreamResponse:
        lib = self._lib()
        if isinstance(lib, web.Response):
            return lib
        name, kind = request.match_info["name"], request.match_info["kind"]
        if not _plain(kind):
            return json_error(400, "not a file kind")
        rec = self._get(lib, name)
        if isinstance(rec, web.Response):
            return rec
        try:
            path = Path(lib.file(name, kind))
        except (KeyError, ValueError):
            return json_error(404, f"recording {name} has no {kind} file")
        root = Path(lib.directory).resolve()
        real = path.resolve()
        if not real.is_relative_to(root) or not real.is_file():
            log.warning("refused a download outside %s: %s", root, path)
            return json_error(404, f"recording {name} has no {kind} file")
        headers = {"Cache-Control": "no-store" if rec.active else "private, max-age=60",
                   "Content-Type": CONTENT_TYPES.get(real.suffix, "application/octet-stream")}
        disposition = "attachment" if request.query.get("download") else "inline"
        headers["Content-Disposition"] = f'{disposition}; filename="{re.sub(r"[^A-Za-z0-9._-]", "_", real.name)}"'
        return web.FileResponse(real, headers=headers)

    def _target(self, request: web.Request):
        """(library, name, recording) for a state-changing request on one
        recording, or the refusal to send (token, no library, bad name)."""
        denied = self._refuse(request)
        if denied is not None:
            return denied
        lib = self._lib()
        if isinstance(lib, web.Response):
            return lib
        name = request.match_info["name"]
        rec = self._get(lib, name)
        if isinstance(rec, web.Response):
            return rec
        return lib, name, rec

    async def delete(self, request: web.Request) -> web.Response:
        target = self._target(request)
        if isinstance(target, web.Response):
            return target
        lib, name, rec = target
        if rec.active:
            return json_error(409, f"{name} is being recorded: stop recording first")
        if rec.keep:
            return json_error(409, f"{name} is marked keep: clear the keep flag first")
        try:
            lib.delete(name)
        except KeyError:
            return json_error(404, f"no recording {name}")
        except RtcleanError as e:
            return json_error(409, str(e))
        log.info("recording %s deleted from the web page", name)
        return web.json_response({"ok": True, "deleted": name})

    async def keep(self, request: web.Request) -> web.Response:
        target = self._target(request)
        if isinstance(target, web.Response):
            return target
        lib, name, _rec = target
        body = await read_json(request)
        if isinstance(body, web.Response):
            return body
        keep = body.get("keep")
        if not isinstance(keep, bool):
            return json_error(400, 'body must be {"keep": true} or {"keep": false}')
        lib.set_keep(name, keep)
        return web.json_response({"ok": True, "name": name, "keep": keep})


async def read_json(request: web.Request) -> dict | web.Response:
    """The request body as a JSON object, or a 400 response saying what is wrong."""
    if request.content_length is not None and request.content_length > 4096:
        return json_error(413, "request body too large")
    try:
        body = await request.json()
    except Exception:  # aiohttp raises JSONDecodeError or a content error
        return json_error(400, "request body must be a JSON object")
    if not isinstance(body, dict):
        return json_error(400, "request body must be a JSON object")
    return body
