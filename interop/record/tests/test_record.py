"""libsignum-pkcs11-recorder.so around SoftHSM2, driven by OpenSC pkcs11-tool, and the trace reader
(issue 14, trace format v1: docs/trace-format.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from interop.record import trace  # noqa: E402

SOFTHSM2 = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "271828"
SO_PIN = "314159"
TOKEN = "signum-rec"


def recorder_path() -> str:
    path = os.environ.get("SIGNUM_RECORDER") or str(
        REPO / "build/reference/providers/pkcs11/recorder/libsignum-pkcs11-recorder.so")
    assert Path(path).is_file(), f"the recorder module is not built: {path}"
    return path


def run(cmd: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                            timeout=120, **kw)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def token(tmp_path):
    """A throwaway SoftHSM2 token holding an RSA-2048 key made by OpenSSL (id 01)."""
    for tool in ("pkcs11-tool", "softhsm2-util", "openssl"):
        assert shutil.which(tool), f"{tool} is not installed (ci/setup installs it)"
    assert Path(SOFTHSM2).is_file(), f"SoftHSM2 is not installed: {SOFTHSM2}"
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\n"
                    "objectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN,
         "--so-pin", SO_PIN], env)
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", str(key)], env)
    run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], env)
    run(["softhsm2-util", "--import", str(key), "--token", TOKEN, "--label", "signkey",
         "--id", "01", "--pin", PIN], env)
    return {"dir": tmp_path, "env": env, "pub": pub}


def record(token, trace_file: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(token["env"], SIGNUM_RECORD_MODULE=SOFTHSM2, SIGNUM_RECORD_FILE=str(trace_file))
    return run(["pkcs11-tool", "--module", recorder_path(), "--token-label", TOKEN, *args], env)


def test_pkcs11_tool_sign_session_is_recorded(token):
    d = token["dir"]
    data = d / "data.bin"
    data.write_bytes(b"signum record and replay: the first slice\n")
    sig_file, trace_file = d / "sig.bin", d / "trace.jsonl"
    record(token, trace_file, "--login", "--pin", PIN, "--sign", "-m", "SHA256-RSA-PKCS",
           "--id", "01", "--input-file", str(data), "--output-file", str(sig_file))

    t = trace.load(trace_file)
    assert t.header["kind"] == "signum-pkcs11-trace"
    assert t.header["module"] == SOFTHSM2
    assert isinstance(t.header["pid"], int)

    # Never the PIN: not as text, not as hex, not in any value.
    raw = trace_file.read_bytes()
    for secret in (PIN, SO_PIN):
        assert secret.encode() not in raw
        assert secret.encode().hex().encode() not in raw.lower()
    login = t.calls_named("C_Login")
    assert len(login) == 1 and login[0].ok
    assert login[0].args["pPin"] == {"redacted": True, "length": len(PIN)}

    fns = t.functions()
    for fn in ("C_Initialize", "C_GetSlotList", "C_GetTokenInfo", "C_OpenSession",
               "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal", "C_SignInit",
               "C_Sign", "C_CloseSession", "C_Finalize"):
        assert fn in fns, f"{fn} not recorded: {fns}"
    seqs = [c.seq for c in t.calls]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(c.t_end >= c.t_start for c in t.calls)

    sign_init = t.calls_named("C_SignInit")[-1]
    assert sign_init.args["pMechanism"]["name"] == "CKM_SHA256_RSA_PKCS"
    # The key handle passed to C_SignInit is one that C_FindObjects returned.
    found = [h for c in t.calls_named("C_FindObjects") for h in c.out.get("phObject", [])]
    assert sign_init.args["hKey"] in found

    signs = [c for c in t.calls_named("C_Sign") if c.ok and "pSignature" in c.out]
    assert len(signs) == 1, [c.raw for c in t.calls_named("C_Sign")]
    sign = signs[0]
    assert sign.args["pData"] == data.read_bytes().hex()
    assert sign.args["ulDataLen"] == len(data.read_bytes())
    signature = bytes.fromhex(sign.out["pSignature"])
    assert len(signature) == sign.out["pulSignatureLen"] == 256
    assert signature == sig_file.read_bytes()

    # The recorded signature verifies against the public key.
    recorded_sig = d / "recorded-sig.bin"
    recorded_sig.write_bytes(signature)
    verify = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(token["pub"]),
                             "-signature", str(recorded_sig), str(data)],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and "Verified OK" in verify.stdout, verify.stdout + verify.stderr
    # ... and a flipped byte does not (the check above can fail).
    recorded_sig.write_bytes(signature[:-1] + bytes([signature[-1] ^ 1]))
    verify = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(token["pub"]),
                             "-signature", str(recorded_sig), str(data)],
                            capture_output=True, text=True)
    assert verify.returncode != 0

    # The rendering for people (python3 -m interop.record render): one line per call, the login's
    # PIN only as its length, the signature shown cut to its first bytes and its length.
    rendered = subprocess.run([sys.executable, "-m", "interop.record", "render", str(trace_file)],
                              capture_output=True, text=True, cwd=REPO)
    assert rendered.returncode == 0, rendered.stderr
    lines = rendered.stdout.splitlines()
    assert lines[0].startswith("# signum-pkcs11-trace v1: " + SOFTHSM2)
    assert len(lines) == 1 + len(t.calls)
    login_line = next(line for line in lines if " C_Login(" in line)
    assert f"<redacted, {len(PIN)} bytes>" in login_line and "= CKR_OK" in login_line
    sign_line = next(line for line in lines if " C_Sign(" in line and "pSignature=" in line)
    assert f"pSignature={signature.hex()[:64]}…(256 bytes)" in sign_line, sign_line
    assert PIN not in rendered.stdout


def test_mechanisms_random_and_attributes_are_recorded(token):
    trace_file = token["dir"] / "trace.jsonl"
    record(token, trace_file, "--list-mechanisms")
    random_file = token["dir"] / "random.bin"
    record(token, trace_file.with_name("random.jsonl"), "--generate-random", "16",
           "--output-file", str(random_file))
    record(token, trace_file.with_name("objects.jsonl"), "--login", "--pin", PIN,
           "--list-objects")

    mechs = trace.load(trace_file).calls_named("C_GetMechanismList")
    names = [m["name"] for c in mechs for m in c.out.get("pMechanismList", [])]
    assert "CKM_SHA256_RSA_PKCS" in names and "CKM_RSA_PKCS_PSS" in names

    rnd = [c for c in trace.load(trace_file.with_name("random.jsonl")).calls_named(
        "C_GenerateRandom") if c.ok]
    assert len(rnd) == 1 and rnd[0].args["ulRandomLen"] == 16
    assert bytes.fromhex(rnd[0].out["RandomData"]) == random_file.read_bytes()

    objects = trace.load(trace_file.with_name("objects.jsonl"))
    values = [a for c in objects.calls_named("C_GetAttributeValue") if "pTemplate" in c.out
              for a in c.out["pTemplate"]]
    labels = [bytes.fromhex(a["value"]) for a in values
              if a["name"] == "CKA_LABEL" and isinstance(a.get("value"), str)]
    assert b"signkey" in labels
    # Private key components are never written, even where a module would return them.
    assert not [a for a in values if a["name"] == "CKA_PRIVATE_EXPONENT"
                and isinstance(a.get("value"), str)]
    assert PIN.encode() not in trace_file.with_name("objects.jsonl").read_bytes()


def test_reader_refuses_an_unknown_version(tmp_path):
    v2 = tmp_path / "v2.jsonl"
    v2.write_text(json.dumps({"v": 2, "kind": "signum-pkcs11-trace", "module": "x", "pid": 1})
                  + "\n")
    with pytest.raises(trace.TraceError, match=r"version 2 is not supported.*supported: 1"):
        trace.load(v2)
    # The renderer refuses it too, with the reader's reason and exit 2.
    rendered = subprocess.run([sys.executable, "-m", "interop.record", "render", str(v2)],
                              capture_output=True, text=True, cwd=REPO)
    assert rendered.returncode == 2 and "version 2 is not supported" in rendered.stderr
    assert rendered.stdout == ""

    header = json.dumps({"v": 1, "kind": "signum-pkcs11-trace", "module": "x", "pid": 1})
    call = {"v": 1, "seq": 1, "fn": "C_Initialize", "thread": 1, "t_start": 1, "t_end": 2,
            "args": {}, "rv": {"name": "CKR_OK", "value": 0}, "out": {}}
    ok = trace.parse_lines([header, json.dumps(call)])
    assert ok.functions() == ["C_Initialize"]
    with pytest.raises(trace.TraceError, match=r":2: trace format version 2"):
        trace.parse_lines([header, json.dumps(dict(call, v=2))])
    with pytest.raises(trace.TraceError, match="missing field.*rv"):
        trace.parse_lines([header, json.dumps({k: v for k, v in call.items() if k != "rv"})])
    with pytest.raises(trace.TraceError, match="no trace format version"):
        trace.parse_lines([json.dumps({"kind": "signum-pkcs11-trace"})])
    with pytest.raises(trace.TraceError, match="first line must be the header"):
        trace.parse_lines([json.dumps(call)])


# Eight threads on sessions of their own, then a fork whose child calls the module: through ctypes
# (calls release the GIL), indexes into CK_FUNCTION_LIST (2.40) by the OASIS member order.
THREADS_AND_FORK = r"""
import ctypes, os, sys, threading
lib = ctypes.CDLL(sys.argv[1])
U = ctypes.c_ulong
P = ctypes.c_void_p
plist = P()
assert lib.C_GetFunctionList(ctypes.byref(plist)) == 0
def fn(index, *argtypes):
    address = P.from_address(plist.value + 8 + 8 * index).value
    return ctypes.CFUNCTYPE(U, *argtypes)(address)
Initialize, Finalize, GetInfo = fn(0, P), fn(1, P), fn(2, P)
GetSlotList = fn(4, ctypes.c_ubyte, P, P)
OpenSession, CloseSession = fn(12, U, U, P, P, P), fn(13, U)
GenerateRandom = fn(64, U, P, U)
class InitArgs(ctypes.Structure):
    _fields_ = [("c", P), ("d", P), ("l", P), ("u", P), ("flags", U), ("r", P)]
args = InitArgs(flags=2)  # CKF_OS_LOCKING_OK
assert Initialize(ctypes.byref(args)) == 0
count = U(0)
assert GetSlotList(1, None, ctypes.byref(count)) == 0
slots = (U * count.value)()
assert GetSlotList(1, slots, ctypes.byref(count)) == 0
errors = []
def work():
    h = U(0)
    rv = OpenSession(slots[0], 4, None, None, ctypes.byref(h))  # CKF_SERIAL_SESSION
    if rv != 0:
        errors.append(rv); return
    buf = (ctypes.c_ubyte * 32)()
    for _ in range(50):
        rv = GenerateRandom(h.value, buf, 32)
        if rv != 0: errors.append(rv)
    CloseSession(h.value)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
child = os.fork()
if child == 0:
    Initialize(ctypes.byref(args))
    info = (ctypes.c_ubyte * 256)()
    GetInfo(info)
    os._exit(0)
_, status = os.waitpid(child, 0)
assert status == 0
assert Finalize(None) == 0
print(child)
"""


def test_threads_do_not_interleave_and_a_forked_child_records_its_pid(token):
    trace_file = token["dir"] / "threads.jsonl"
    env = dict(token["env"], SIGNUM_RECORD_MODULE=SOFTHSM2, SIGNUM_RECORD_FILE=str(trace_file))
    result = run([sys.executable, "-c", THREADS_AND_FORK, recorder_path()], env)
    child = int(result.stdout.strip())

    t = trace.load(trace_file)  # every line whole JSON: no interleaved writes
    parent = t.header["pid"]
    randoms = [c for c in t.calls_named("C_GenerateRandom") if c.ok]
    assert len(randoms) == 8 * 50
    assert all(len(bytes.fromhex(c.out["RandomData"])) == 32 for c in randoms)
    assert len({c.thread for c in randoms}) == 8
    assert all(c.pid == parent for c in randoms)
    parent_seqs = [c.seq for c in t.calls if c.pid == parent]
    assert len(set(parent_seqs)) == len(parent_seqs)
    child_calls = [c for c in t.calls if c.pid == child]
    assert [c.fn for c in child_calls] == ["C_Initialize", "C_GetInfo"], [c.raw for c in child_calls]
    assert child_calls[-1].ok and child_calls[-1].out["pInfo"]["manufacturerID"]
