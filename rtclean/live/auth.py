"""Who may change state through the web server.

Watching is open to anyone who can reach the port (bind it to 127.0.0.1 or a
private network; DESIGN.md). Changing state (recording on/off, deleting or
keeping a recording, the repaired-frame tag) needs the secret ``live.token``
from the config, sent as ``X-Rtclean-Token: <token>`` or
``Authorization: Bearer <token>``. A header rather than a cookie or a form
field: a page on another site can make the browser send cookies and forms,
never a custom header, so the token also stops cross-site requests.

- token empty in the config: the controls are disabled, 403;
- no token sent: 401;
- wrong token: 403.

Every refusal is one JSON object ``{"error": "..."}`` that says what to do.
"""

from __future__ import annotations

import hmac

from aiohttp import web

TOKEN_HEADER = "X-Rtclean-Token"


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status,
                             headers={"Cache-Control": "no-store", **headers})


def sent_token(request: web.Request) -> str | None:
    token = request.headers.get(TOKEN_HEADER)
    if token is not None:
        return token.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def refuse(configured: str, request: web.Request) -> web.Response | None:
    """None when ``request`` may change state, else the response to send."""
    if not configured:
        return json_error(403, "web controls are disabled: set live.token in the config to enable them")
    token = sent_token(request)
    if token is None:
        return json_error(401, f"this control needs the token: send it in the {TOKEN_HEADER} header",
                          **{"WWW-Authenticate": 'Bearer realm="rtclean"'})
    # Constant-time compare, so response timing does not leak the token.
    if not hmac.compare_digest(token.encode(), configured.encode()):
        return json_error(403, "wrong token")
    return None
