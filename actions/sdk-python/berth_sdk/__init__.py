"""berth guest SDK for Python: declare actions with decorators, call the engine, return
SOAR action_result shapes. Mirrors the Rust SDK (actions/sdk).

    from berth_sdk import Family, Param, Output, get, seg

    family = Family("demo")

    @family.action("demo.ping", "Ping the engine", read_only=True,
                   output=["data.*.ok"], operations=["SystemPing"])
    def ping(p):
        return Output.one("pong", {"ok": get("/_ping").ok().text == "OK"})

    Actions = family.exports()   # the class componentize-py exports

Build with `componentize-py -d wit/since_v0.2.0 -w family componentize app -p . -p <sdk>`,
then `python3 <sdk>/stamp.py app.wasm` writes the contract section.

Imports are resolved when the component is built (there is no filesystem at run time): import
what an action needs at the top of its module, never inside a function.
"""

import json
import traceback
from urllib.parse import quote

from componentize_py_types import Err
from wit_world.exports import actions as _wit
from wit_world.imports import engine as _engine
from wit_world.imports import log as _log
from wit_world.imports import types as _t

from .contract import CONTRACT

__all__ = [
    "CONTRACT", "Family", "Param", "Output", "Error", "BadParams", "Denied", "EngineFailure",
    "Internal", "Request", "Response", "Stream", "Tar", "get", "head", "post", "put", "delete", "seg",
    "api_version", "log",
]

# ---------------------------------------------------------------------------------------
# Errors: raise one from an action; it becomes the WIT action-error of the same name.


class Error(Exception):
    """A structured action error. Raise a subclass."""

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)

    def to_wit(self):
        return _wit.ActionError_Internal(self.message)


class BadParams(Error):
    def to_wit(self):
        return _wit.ActionError_BadParams(self.message)


class Denied(Error):
    def to_wit(self):
        return _wit.ActionError_Denied(self.message)


class Internal(Error):
    pass


class EngineFailure(Error):
    """The engine answered `status` (0: no answer) with `message`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)

    def __str__(self):
        return f"engine returned {self.status}: {self.message}"

    def to_wit(self):
        return _wit.ActionError_Engine(_wit.EngineFailure(self.status, self.message))


def _from_engine_error(e):
    """The host's engine-error variant as an SDK error (as the Rust SDK maps it)."""
    v = getattr(e, "value", "")
    if isinstance(e, (_t.EngineError_Denied, _t.EngineError_Limit)):
        return Denied(v)
    if isinstance(e, _t.EngineError_Invalid):
        return BadParams(v)
    return EngineFailure(0, v)


def _host(fn, *args):
    try:
        return fn(*args)
    except Err as e:
        raise _from_engine_error(e.value) from None


# ---------------------------------------------------------------------------------------
# Engine calls.


def seg(s):
    """Percent-encodes one path segment taken from user input (an id or a name)."""
    return quote(str(s), safe="-._~:@")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = bytes(body)

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def is_success(self):
        return 200 <= self.status < 300

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise Internal(f"engine sent invalid JSON ({e})") from None

    def ok(self):
        """The response, or EngineFailure with the engine's own message on a non-2xx status."""
        if self.is_success:
            return self
        message = self.text.strip()
        try:
            message = json.loads(self.body).get("message", message)
        except (ValueError, AttributeError):
            pass
        raise EngineFailure(self.status, message or f"status {self.status}")


class Stream:
    """A streamed response body (logs, events, stats): iterate for chunks of bytes."""

    def __init__(self, head, body):
        self.status = head.status
        self.headers = head.headers
        self._body = body

    def read(self, max_bytes=65536, timeout_ms=30000):
        """The next chunk: bytes, b"" when nothing arrived in time, None at the end."""
        c = _host(self._body.read, max_bytes, timeout_ms)
        if isinstance(c, _t.Chunk_Data):
            return bytes(c.value)
        if isinstance(c, _t.Chunk_End):
            return None
        return b""

    def __iter__(self):
        while True:
            c = self.read()
            if c is None:
                return
            if c:
                yield c

    def lines(self):
        """Decoded lines (newline-delimited JSON streams)."""
        buf = b""
        for chunk in self:
            buf += chunk
            *whole, buf = buf.split(b"\n")
            for line in whole:
                if line.strip():
                    yield line.decode("utf-8", "replace")
        if buf.strip():
            yield buf.decode("utf-8", "replace")

    def close(self):
        self._body.__exit__(None, None, None)


class Request:
    """A request to the Engine API, path relative to the API root (`/containers/json`)."""

    def __init__(self, method, path):
        self.method = method
        self.path = path
        self._query = []
        self._headers = []
        self._body = _t.Body_Empty()
        self._registry = None

    def query(self, key, value):
        """Adds key=value; None is left out, dicts and lists are sent as JSON (filters)."""
        if value is None:
            return self
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, separators=(",", ":"))
        self._query.append((key, str(value)))
        return self

    def header(self, key, value):
        self._headers.append((key, value))
        return self

    def json(self, body):
        self._body = _t.Body_Bytes(json.dumps(body).encode())
        return self.header("Content-Type", "application/json")

    def artifact(self, name, content_type="application/x-tar"):
        """A body the host streams from the named input artifact."""
        self._body = _t.Body_Artifact(name)
        return self.header("Content-Type", content_type)

    def registry(self, name):
        self._registry = name
        return self

    def _wit(self):
        return _t.Request(self.method, self.path, self._query, self._headers, self._body, self._registry)

    def send(self):
        r = _host(_engine.call, self._wit())
        return Response(r.status, r.headers, r.body)

    def ok(self):
        """send(), raising EngineFailure on a non-2xx status."""
        return self.send().ok()

    def json_ok(self):
        return self.ok().json()

    def stream(self):
        head, body = _host(_engine.open, self._wit())
        s = Stream(head, body)
        if not 200 <= s.status < 300:
            text = b"".join(s).decode("utf-8", "replace")
            Response(s.status, s.headers, text.encode()).ok()
        return s

    def to_artifact(self, artifact):
        """Sends the 2xx body straight into the named output artifact; returns its info."""
        r = _host(_engine.call_to_artifact, self._wit(), artifact)
        if r.artifact is None:
            Response(r.status, r.headers, r.error_body).ok()
            raise EngineFailure(r.status, "no artifact was written")
        return r.artifact


class Tar:
    """An output artifact written by the host as a tar, member by member: members from bytes,
    or from engine responses streamed straight to disk. Nothing appears until finish()."""

    def __init__(self, artifact):
        self._w = _host(_engine.open_tar, artifact)

    def bytes(self, name, data):
        """Adds a member holding `data` (bytes or str); returns (size, sha256)."""
        if isinstance(data, str):
            data = data.encode()
        m = _host(self._w.add_bytes, name, data)
        return m.size, m.sha256

    def json(self, name, value):
        return self.bytes(name, json.dumps(value, indent=2))

    def response(self, name, request):
        """Sends `request` and streams its 2xx body into a member; returns (size, sha256)."""
        m = _host(self._w.add_response, name, request._wit())
        if not 200 <= m.status < 300:
            Response(m.status, [], m.error_body).ok()
        return m.size, m.sha256

    def finish(self):
        """Ends the tar; returns the artifact's info (name, size, sha256)."""
        return _host(self._w.finish)


def get(path):
    return Request("GET", path)


def head(path):
    return Request("HEAD", path)


def post(path):
    return Request("POST", path)


def put(path):
    return Request("PUT", path)


def delete(path):
    return Request("DELETE", path)


def api_version():
    return _host(_engine.api_version)


class log:
    """Guest diagnostics, routed to the host's tracing."""

    @staticmethod
    def info(msg):
        _log.log(_log.Level.INFO, str(msg))

    @staticmethod
    def debug(msg):
        _log.log(_log.Level.DEBUG, str(msg))

    @staticmethod
    def warn(msg):
        _log.log(_log.Level.WARN, str(msg))

    @staticmethod
    def progress(id, current, total=None, message=""):
        _log.progress(str(id), int(current), total, str(message))


# ---------------------------------------------------------------------------------------
# Output: the SOAR action_result body minus what the host adds.


class Output:
    def __init__(self, message="", data=None, summary=None):
        self.message = message
        self.data = list(data or [])
        self.summary = dict(summary or {})

    @classmethod
    def one(cls, message, item):
        return cls(message, [item])

    @classmethod
    def listed(cls, what, items):
        """A list as the data, with summary.total_objects: "<n> <what>"."""
        items = list(items)
        return cls(f"{len(items)} {_singular(what) if len(items) == 1 else what}", items, {"total_objects": len(items)})

    def item(self, item):
        self.data.append(item)
        return self

    def with_summary(self, key, value):
        self.summary[key] = value
        return self


# ---------------------------------------------------------------------------------------
# Declarations.

_TYPES = {
    "string": _wit.ValueType.TEXT,
    "integer": _wit.ValueType.INTEGER,
    "number": _wit.ValueType.NUMBER,
    "boolean": _wit.ValueType.BOOLEAN,
    "object": _wit.ValueType.OBJECT,
    "array": _wit.ValueType.ARRAY,
    "any": _wit.ValueType.ANY,
}
_KINDS = {
    "investigate": _wit.Kind.INVESTIGATE,
    "generic": _wit.Kind.GENERIC,
    "contain": _wit.Kind.CONTAIN,
    "correct": _wit.Kind.CORRECT,
}


class Param:
    """A parameter: Param.string("image", required=True, description="...")."""

    def __init__(self, name, type, required=False, default=None, description="", secret=False):
        if type not in _TYPES:
            raise ValueError(f"param {name}: unknown type {type!r}")
        self.name, self.type, self.required = name, type, required
        self.default, self.description, self.secret = default, description, secret

    @classmethod
    def string(cls, name, **kw):
        return cls(name, "string", **kw)

    @classmethod
    def int(cls, name, **kw):
        return cls(name, "integer", **kw)

    @classmethod
    def number(cls, name, **kw):
        return cls(name, "number", **kw)

    @classmethod
    def bool(cls, name, **kw):
        return cls(name, "boolean", **kw)

    @classmethod
    def object(cls, name, **kw):
        return cls(name, "object", **kw)

    @classmethod
    def array(cls, name, **kw):
        return cls(name, "array", **kw)

    def _wit(self):
        default = None if self.default is None else json.dumps(self.default)
        return _wit.ParamSpec(self.name, _TYPES[self.type], self.required, default, self.description, self.secret)


class Params(dict):
    """The validated params as the host passed them (defaults filled in)."""

    def str(self, name):
        v = self.get(name)
        return v if isinstance(v, str) and v else None

    def req(self, name):
        v = self.get(name)
        if v is None or v == "":
            raise BadParams(f"parameter '{name}' is required")
        return v


MAX_TRACE = 1500


def _internal(e):
    """An uncaught exception as `internal`: type, message and the innermost frames."""
    frames = traceback.format_tb(e.__traceback__)[-4:]
    trace = "".join(frames).rstrip()
    if len(trace) > MAX_TRACE:
        trace = "..." + trace[-MAX_TRACE:]
    return _wit.ActionError_Internal(f"{type(e).__name__}: {e}\nTraceback (innermost last):\n{trace}")


class Family:
    """A family of actions; `family.exports()` is the class componentize-py exports."""

    def __init__(self, name, version="0.1.0"):
        self.name = name
        self.version = version
        self._actions = {}

    def action(self, name, summary, kind="investigate", read_only=False, params=(), output=(), operations=()):
        """Decorator: declares `name` and runs the function with its Params."""
        if not name.startswith(self.name + "."):
            raise ValueError(f"action {name!r} must start with the family name {self.name!r}.")

        def register(fn):
            spec = _wit.ActionSpec(
                name, summary, _KINDS[kind], bool(read_only), [p._wit() for p in params],
                ["action_result." + o for o in output], list(operations),
            )
            self._actions[name] = (spec, fn)
            return fn

        return register

    def describe(self):
        return _wit.FamilyInfo(self.name, self.version, [s for s, _ in self._actions.values()])

    def run(self, action, params):
        entry = self._actions.get(action)
        if entry is None:
            raise Err(_wit.ActionError_BadParams(f"unknown action '{action}'"))
        try:
            p = json.loads(params)
            if not isinstance(p, dict):
                raise BadParams("params must be a JSON object")
            out = entry[1](Params(p))
            if not isinstance(out, Output):
                raise Internal(f"{action} returned {type(out).__name__}, not an Output")
            return _wit.ActionOutput(out.message, json.dumps(out.data), json.dumps(out.summary))
        except Error as e:
            raise Err(e.to_wit()) from None
        except Err:
            raise
        except Exception as e:  # noqa: BLE001 - every other exception becomes `internal`
            raise Err(_internal(e)) from None

    def exports(self):
        family = self

        class Actions:
            def describe(self):
                return family.describe()

            def run(self, action, params):
                return family.run(action, params)

        return Actions


def _singular(what):
    """"containers running x" -> "container running x": the first word ending in s, made singular."""
    words = what.split(" ")
    for i, w in enumerate(words):
        if w.endswith("s"):
            if w.endswith("ies"):
                words[i] = w[:-3] + "y"
            elif w.endswith(("sses", "xes", "ches", "shes")):
                words[i] = w[:-2]
            else:
                words[i] = w[:-1]
            break
    return " ".join(words)
