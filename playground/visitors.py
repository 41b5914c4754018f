"""Who is asking: the owner id that keeps one visitor's comparisons apart from another's on a public Space.

The run log stores it in `comparisons.owner` and every query that takes `owner=` shows, rates and exports only that
owner's comparisons; another owner's run reads exactly like a missing one, so ids cannot be probed.

An id is one of (the prefix keeps the kinds from ever colliding):
- `hf:<username>`    signed in with Hugging Face (OAuth: `hf_oauth: true` in the Space's README, `gr.LoginButton`);
- `user:<username>`  signed in through the app's own `launch(auth=...)`;
- `anon:<random>`    a random id the server makes and signs, which the browser keeps in `gr.BrowserState`
                     (localStorage): the same browser, the same history, across reloads and restarts;
- `session:<hash>`   an API caller with none of the above: its Gradio session, so it sees what it made in it.

No gradio import here: handlers pass in what Gradio gave them (`gr.Request`, `gr.OAuthProfile | None`, the
BrowserState value).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

_BROWSER_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")   # what new_browser_id() makes; nothing else is accepted


class UnknownVisitor(ValueError):
    """A request on a public Space that carries no identity at all."""


def running_on_space() -> bool:
    """Hugging Face Spaces set SPACE_ID in every Space's environment."""
    return bool(os.environ.get("SPACE_ID"))


def keeps_visitors_apart(settings) -> bool:
    """On a Space (or with PLAYGROUND_PUBLIC=1) each visitor sees their own comparisons, unless the operator turns
    PLAYGROUND_SHARED_HISTORY on (a team's private Space, a demo everyone should see)."""
    return not settings.shared_history and (settings.public or running_on_space())


def new_browser_id() -> str:
    """A fresh anonymous id: 24 random bytes, URL-safe (32 characters); unguessable, so it can stand for the browser."""
    return secrets.token_urlsafe(24)


def ensure_browser_id(value) -> str:
    """The BrowserState value if it is one of ours, else a new id (first visit, cleared storage, tampering)."""
    return value if isinstance(value, str) and _BROWSER_ID.match(value) else new_browser_id()


def browser_state_secret(data_dir: Path) -> str:
    """The server's key for the browser ids it hands out: PLAYGROUND_BROWSER_SECRET (a Space secret) if set, else
    one kept in the data dir (readable by the server only), so an anonymous visitor is still known after a restart.
    It never leaves the server: the page gets ids signed with it (`sign_browser_id`), not the key."""
    configured = os.environ.get("PLAYGROUND_BROWSER_SECRET", "").strip()
    if configured:
        return configured
    path = Path(data_dir) / "browser-secret"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:              # another process made it first: use theirs
            return _read_secret(path)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secret)
        return secret


def _read_secret(path: Path) -> str:
    problem = None
    if path.is_dir():
        problem = "browser-secret is a folder, not the file that holds the key for visitor ids"
    else:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            secret = ""
        if len(secret) >= 16:
            return secret
        problem = "browser-secret holds no usable key (16 characters or more)"
    error = OSError(errno.EINVAL, problem, path.name)
    error.advice = f"{problem}: remove it (a new key is made) or set PLAYGROUND_BROWSER_SECRET"
    raise error


def browser_state_key(secret: str) -> str:
    """What gr.BrowserState gets as its `secret`. Gradio sends that value to every browser in /config, so it is a
    key derived from the server's (it reveals nothing about it): it only scrambles the local-storage entry. What
    makes a stored id trustworthy is the server's signature inside it."""
    return hmac.new(secret.encode("utf-8"), b"gradio BrowserState", hashlib.sha256).hexdigest()[:32]


def sign_browser_id(secret: str, browser_id: str) -> str:
    """`<id>.<signature>`: what the page keeps in local storage; only this server can make one."""
    mac = hmac.new(secret.encode("utf-8"), browser_id.encode("utf-8"), hashlib.sha256).digest()
    return f"{browser_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode('ascii')}"


def verified_browser_id(secret: str, token) -> str | None:
    """The browser id inside a signed token, or None (no token, another server's, or altered)."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    browser_id, _, _ = token.partition(".")
    if not _BROWSER_ID.match(browser_id):
        return None
    return browser_id if hmac.compare_digest(sign_browser_id(secret, browser_id), token) else None


def _profile_username(profile) -> str | None:
    if profile is None:
        return None
    name = getattr(profile, "username", None)
    if not name and isinstance(profile, dict):
        name = profile.get("preferred_username")
    return name if isinstance(name, str) and name.strip() else None


def visitor_id(request=None, profile=None, browser_id=None) -> str:
    """The visitor behind a request: the Hugging Face user if signed in, else the app's own login, else the browser's
    anonymous id, else the Gradio session. Raises UnknownVisitor when there is nothing to go by."""
    name = _profile_username(profile)
    if name:
        return f"hf:{name.strip()}"
    name = getattr(request, "username", None) if request is not None else None
    if isinstance(name, str) and name.strip():
        return f"user:{name.strip()}"
    if isinstance(browser_id, str) and _BROWSER_ID.match(browser_id):
        return f"anon:{browser_id}"
    session = getattr(request, "session_hash", None) if request is not None else None
    if isinstance(session, str) and session:
        return f"session:{session}"
    raise UnknownVisitor("this request carries no visitor identity: sign in, or allow the page to keep its id "
                         "in local storage")


def owner_for(settings, request=None, profile=None, browser_id=None) -> str | None:
    """What to pass as `owner=` to the run log: None where everyone shares one log (local use, shared history)."""
    if not keeps_visitors_apart(settings):
        return None
    return visitor_id(request, profile, browser_id)


# ---- the owner of each request ------------------------------------------------------------------------------------
# The page load sees the browser's signed id (gr.BrowserState) and the Hugging Face profile; it records who the
# page's Gradio session is, so later handlers (and the grid's own calls) that only see the request find the same
# visitor. An API caller with none of these is its own session. A caller never names an identity: a browser id
# counts only with this server's signature, and everything else comes from the sign-in or the session.

MAX_SESSIONS = 50_000


class Visitors:
    """Who each Gradio session is, for one app."""

    def __init__(self, settings):
        self.settings = settings
        self._by_session: OrderedDict[str, tuple[str, str | None]] = OrderedDict()   # -> (visitor id, browser id)
        self._by_grid_key: OrderedDict[str, str] = OrderedDict()
        self._key_secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._secret: str | None = None

    @property
    def apart(self) -> bool:
        return keeps_visitors_apart(self.settings)

    @property
    def secret(self) -> str:
        """The key browser ids are signed with (read or made on first use; see browser_state_secret)."""
        if self._secret is None:
            self._secret = browser_state_secret(self.settings.data_dir)
        return self._secret

    def identify(self, request, profile=None, stored=None) -> str:
        """Page load: find out who this page's session is, remember it, and return the signed browser id for the
        page to keep. A session already known keeps its identity (several load handlers may ask at once); an
        unsigned or altered stored value gets a fresh id."""
        session = getattr(request, "session_hash", None)
        with self._lock:
            known = self._by_session.get(session) if session else None
            browser_id = (known[1] if known else None) or verified_browser_id(self.secret, stored) or new_browser_id()
            if session:
                self._remember(session, visitor_id(request, profile, browser_id), browser_id)
        return sign_browser_id(self.secret, browser_id)

    def register(self, request, profile=None, browser_id=None) -> None:
        """Record a session's visitor from an id the server itself made or verified."""
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                self._remember(session, visitor_id(request, profile, browser_id), browser_id)

    def _remember(self, session: str, visitor: str, browser_id: str | None) -> None:
        self._by_session[session] = (visitor, browser_id)
        self._by_session.move_to_end(session)
        while len(self._by_session) > MAX_SESSIONS:
            self._by_session.popitem(last=False)

    def _known(self, request) -> str | None:
        with self._lock:
            known = self._by_session.get(getattr(request, "session_hash", None) or "")
        return known[0] if known else None

    def owner(self, request, profile=None) -> str | None:
        """The owner to pass to the run log for this request (None: everyone shares the log)."""
        if not self.apart:
            return None
        if _profile_username(profile):
            return visitor_id(request, profile)
        return self._known(request) or visitor_id(request)

    def voter(self, request, stored=None) -> str:
        """Who casts a vote, chosen by the server whatever the mode: the session's visitor (signed in, or the
        browser's signed id), else the signed id the page sends, else the app's own login, else the Gradio session
        (an API client). A name the caller types is never an identity."""
        known = self._known(request)
        if known:
            return known
        browser_id = verified_browser_id(self.secret, stored)
        if browser_id is not None and getattr(request, "session_hash", None):
            self.register(request, None, browser_id)
        return visitor_id(request, None, browser_id)

    # The grid's own calls (rate, note, winner) reach the server as component-server requests, which carry no
    # session; the grid holds a key for the owner it was drawn for instead: unguessable, known to this process only.

    def grid_key(self, owner: str | None) -> str:
        """The key a grid drawn for `owner` carries ("" where everyone shares the log)."""
        if owner is None:
            return ""
        key = hmac.new(self._key_secret, owner.encode("utf-8"), hashlib.sha256).hexdigest()[:40]
        with self._lock:
            self._by_grid_key[key] = owner
            self._by_grid_key.move_to_end(key)
            while len(self._by_grid_key) > MAX_SESSIONS:
                self._by_grid_key.popitem(last=False)
        return key

    def owner_of_grid_key(self, key) -> str | None:
        """The owner a grid's key stands for; UnknownVisitor for a key this process did not hand out."""
        if not self.apart:
            return None
        with self._lock:
            owner = self._by_grid_key.get(key) if isinstance(key, str) else None
        if owner is None:
            raise UnknownVisitor("this page's grid is not known to the server (it may have restarted): reload the "
                                 "page")
        return owner
