"""Reader of the structured PKCS#11 trace, format version 1 (docs/trace-format.md).

    from interop.record import trace
    t = trace.load("session.jsonl")      # TraceError on anything malformed or of another version
    for call in t.calls_named("C_Sign"):
        call.args["pData"], call.out["pSignature"], call.rv_name

A trace is JSON lines: one header ({"v":1,"kind":"signum-pkcs11-trace",...}), then one record per
PKCS#11 call. Readers refuse an unknown version instead of guessing at its fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

SUPPORTED_VERSIONS = (1,)
KIND = "signum-pkcs11-trace"
HEADER_FIELDS = ("v", "kind", "module", "pid")
CALL_FIELDS = ("v", "seq", "fn", "thread", "t_start", "t_end", "args", "rv", "out")


class TraceError(ValueError):
    """A trace that cannot be read: names the file, the line and what is wrong."""


@dataclass
class Call:
    seq: int
    fn: str
    thread: int
    pid: int | None
    t_start: int
    t_end: int
    args: dict[str, Any]
    rv_name: str
    rv_value: int
    out: dict[str, Any]
    line: int
    raw: dict[str, Any] = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.rv_value == 0


@dataclass
class Trace:
    header: dict[str, Any]
    calls: list[Call]
    path: str = "<trace>"

    @property
    def module(self) -> str:
        return self.header["module"]

    def calls_named(self, fn: str) -> list[Call]:
        return [c for c in self.calls if c.fn == fn]

    def functions(self) -> list[str]:
        return [c.fn for c in self.calls]


def _check_version(obj: dict[str, Any], where: str) -> None:
    v = obj.get("v")
    if not isinstance(v, int) or isinstance(v, bool):
        raise TraceError(f"{where}: no trace format version (\"v\") in {json.dumps(obj)[:120]}")
    if v not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(s) for s in SUPPORTED_VERSIONS)
        raise TraceError(
            f"{where}: trace format version {v} is not supported by this reader "
            f"(supported: {supported}); use a reader of version {v} or re-record the session")


def _require(obj: dict[str, Any], fields: Iterable[str], where: str) -> None:
    missing = [f for f in fields if f not in obj]
    if missing:
        raise TraceError(f"{where}: missing field(s) {', '.join(missing)}")


def _int(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TraceError(f"{where}: \"{key}\" must be an integer, not {value!r}")
    return value


def parse_lines(lines: Iterable[str], path: str = "<trace>") -> Trace:
    header: dict[str, Any] | None = None
    calls: list[Call] = []
    for number, text in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceError(f"{where}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise TraceError(f"{where}: a record must be a JSON object")
        _check_version(obj, where)
        if header is None:
            if obj.get("kind") != KIND:
                raise TraceError(f"{where}: the first line must be the header "
                                 f"{{\"v\":1,\"kind\":\"{KIND}\",...}}, got {text[:120]!r}")
            _require(obj, HEADER_FIELDS, where)
            header = obj
            continue
        if obj.get("kind") == KIND:
            raise TraceError(f"{where}: a second header (concatenated traces are not one trace)")
        _require(obj, CALL_FIELDS, where)
        fn = obj["fn"]
        if not isinstance(fn, str) or not fn.startswith("C_"):
            raise TraceError(f"{where}: \"fn\" must be a C_* function name, not {fn!r}")
        rv = obj["rv"]
        if not isinstance(rv, dict) or not isinstance(rv.get("name"), str) \
                or not isinstance(rv.get("value"), int):
            raise TraceError(f"{where}: \"rv\" must be {{\"name\": \"CKR_...\", \"value\": N}}")
        for key in ("args", "out"):
            if not isinstance(obj[key], dict):
                raise TraceError(f"{where}: \"{key}\" must be an object")
        calls.append(Call(seq=_int(obj, "seq", where), fn=fn, thread=_int(obj, "thread", where),
                          pid=obj.get("pid"), t_start=_int(obj, "t_start", where),
                          t_end=_int(obj, "t_end", where), args=obj["args"],
                          rv_name=rv["name"], rv_value=rv["value"], out=obj["out"], line=number,
                          raw=obj))
    if header is None:
        raise TraceError(f"{path}: empty trace (no header line)")
    return Trace(header=header, calls=calls, path=path)


def load(path: str | Path) -> Trace:
    p = Path(path)
    with p.open(encoding="utf-8") as f:
        return parse_lines(f, str(p))


def iter_values(obj: Any) -> Iterator[Any]:
    """Every scalar in a record (for searches such as "no PIN anywhere")."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from iter_values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from iter_values(v)
    else:
        yield obj


# --- The human-readable rendering ------------------------------------------------------------
# What SIGNUM_PKCS11_TRACE prints for people, derived from the structured record: one line per
# call, "[pid/thread +ms] C_Fn(arg=value, ...) = CKR_X -> out=value, ...". Long byte strings are
# cut to their first 32 bytes and their length; redacted values show only their length.

_HEX_SHOWN = 64  # hex digits


def _render_value(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("redacted") is True:
            return f"<redacted, {value.get('length', '?')} bytes>"
        if "name" in value and isinstance(value["name"], str):
            rest = {k: v for k, v in value.items() if k != "name"}
            return value["name"] + (_render_value(rest) if rest else "")
        return "{" + ", ".join(f"{k}={_render_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, str):
        is_hex = len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value)
        if is_hex and len(value) > _HEX_SHOWN:
            return f"{value[:_HEX_SHOWN]}…({len(value) // 2} bytes)"
        return value if is_hex else json.dumps(value)
    return json.dumps(value)


def render(t: Trace) -> Iterator[str]:
    """The trace as text for people, one line per call (after a line naming the module)."""
    yield f"# {t.header.get('kind')} v{t.header.get('v')}: {t.module} (pid {t.header.get('pid')})"
    start = t.calls[0].t_start if t.calls else 0
    for c in t.calls:
        args = ", ".join(f"{k}={_render_value(v)}" for k, v in c.args.items())
        line = (f"[{c.pid if c.pid is not None else t.header.get('pid')}/{c.thread} "
                f"+{(c.t_start - start) / 1e6:.3f}ms] #{c.seq} {c.fn}({args}) = {c.rv_name}")
        if c.out:
            line += " -> " + ", ".join(f"{k}={_render_value(v)}" for k, v in c.out.items())
        yield line
