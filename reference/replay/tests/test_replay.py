"""signum-replay (issue 14): pkcs11-tool sessions recorded through libsignum-pkcs11-recorder.so
around SoftHSM2 on throwaway tokens, replayed against SoftHSM2 (docs/trace-format.md, "Replaying")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SOFTHSM2 = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "271828"
SO_PIN = "314159"
TOKEN = "signum-rec"


def built(env_name: str, default: str) -> str:
    path = os.environ.get(env_name) or str(REPO / "build" / default)
    assert Path(path).is_file(), f"not built: {path}"
    return path


def recorder() -> str:
    return built("SIGNUM_RECORDER",
                 "reference/providers/pkcs11/recorder/libsignum-pkcs11-recorder.so")


def replay_tool() -> str:
    return built("SIGNUM_REPLAY", "reference/replay/signum-replay")


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                            timeout=120)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def make_token(root: Path, *keys: tuple[str, str, str]) -> dict[str, str]:
    """A throwaway SoftHSM2 token TOKEN under root with keys (openssl genpkey args, label, id)."""
    for tool in ("pkcs11-tool", "softhsm2-util", "openssl"):
        assert shutil.which(tool), f"{tool} is not installed (ci/setup installs it)"
    assert Path(SOFTHSM2).is_file(), f"SoftHSM2 is not installed: {SOFTHSM2}"
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\n"
                    "objectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    env.pop("SIGNUM_REPLAY_PIN", None)
    run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN,
         "--so-pin", SO_PIN], env)
    for n, (genpkey, label, key_id) in enumerate(keys):
        key = root / f"key{n}.pem"
        run(["openssl", "genpkey", *genpkey.split(), "-out", str(key)], env)
        run(["softhsm2-util", "--import", str(key), "--token", TOKEN, "--label", label,
             "--id", key_id, "--pin", PIN], env)
    return env


RSA = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
EC = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"


@pytest.fixture
def setup(tmp_path):
    env = make_token(tmp_path / "a", (RSA, "signkey", "01"), (EC, "eckey", "02"))
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    data = tmp_path / "data.bin"
    data.write_bytes(b"signum record and replay: signum-replay\n")
    big = tmp_path / "big.bin"  # > pkcs11-tool's 1025-byte buffer: C_SignUpdate/C_SignFinal
    big.write_bytes(bytes(range(256)) * 20)
    digest = tmp_path / "digest.bin"
    digest.write_bytes(subprocess.run(["openssl", "dgst", "-sha256", "-binary", str(data)],
                                      capture_output=True, check=True).stdout)
    return {"dir": tmp_path, "env": env, "pin_file": pin_file, "data": data, "digest": digest,
            "big": big}


def record(s, name: str, *args: str) -> Path:
    trace_file = s["dir"] / f"{name}.jsonl"
    env = dict(s["env"], SIGNUM_RECORD_MODULE=SOFTHSM2, SIGNUM_RECORD_FILE=str(trace_file))
    run(["pkcs11-tool", "--module", recorder(), "--token-label", TOKEN, "--login", "--pin", PIN,
         *args, "--output-file", str(s["dir"] / f"{name}.out")], env)
    assert PIN.encode() not in trace_file.read_bytes()
    return trace_file


def replay(trace_file: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([replay_tool(), str(trace_file), "--module", SOFTHSM2, *args], env=env,
                          capture_output=True, text=True, errors="replace", timeout=120)


def summary(result: subprocess.CompletedProcess) -> str:
    return f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"


def sign_traces(s) -> dict[str, Path]:
    return {
        "rsa-pkcs1": record(s, "rsa-pkcs1", "--sign", "-m", "SHA256-RSA-PKCS", "--id", "01",
                            "--input-file", str(s["data"])),
        "rsa-pss": record(s, "rsa-pss", "--sign", "-m", "SHA256-RSA-PKCS-PSS", "--id", "01",
                          "--input-file", str(s["data"])),
        "rsa-pss-multipart": record(s, "rsa-pss-multipart", "--sign", "-m", "SHA384-RSA-PKCS-PSS",
                                    "--id", "01", "--input-file", str(s["big"])),
        "ecdsa": record(s, "ecdsa", "--sign", "-m", "ECDSA", "--id", "02",
                        "--input-file", str(s["digest"])),
        # Raw PSS over a digest: the hash and salt come from CK_RSA_PKCS_PSS_PARAMS alone.
        "rsa-pss-raw": record(s, "rsa-pss-raw", "--sign", "-m", "RSA-PKCS-PSS", "--hash-algorithm",
                              "SHA256", "--mgf", "MGF1-SHA256", "--id", "01",
                              "--input-file", str(s["digest"])),
    }


def test_same_token_matches(setup):
    s = setup
    for name, trace_file in sign_traces(s).items():
        result = replay(trace_file, s["env"], "--pin-file", str(s["pin_file"]))
        assert result.returncode == 0, f"{name}: {summary(result)}"
        calls = sum(1 for line in trace_file.read_text().splitlines()[1:] if line.strip())
        assert f"{calls} calls replayed, {calls} matched, 0 diverged" in result.stdout, \
            f"{name}: {summary(result)}"
    # The PIN may also come from SIGNUM_REPLAY_PIN ...
    result = replay(s["dir"] / "rsa-pkcs1.jsonl", dict(s["env"], SIGNUM_REPLAY_PIN=PIN))
    assert result.returncode == 0, summary(result)
    # ... and a wrong one is a divergence at C_Login.
    result = replay(s["dir"] / "rsa-pkcs1.jsonl", dict(s["env"], SIGNUM_REPLAY_PIN="000000"))
    assert result.returncode == 1, summary(result)
    assert "first divergence:" in result.stdout and " C_Login " in result.stdout, summary(result)
    assert "CKR_PIN_INCORRECT" in result.stdout, summary(result)
    # Without any PIN the trace cannot be used.
    result = replay(s["dir"] / "rsa-pkcs1.jsonl", s["env"])
    assert result.returncode == 2 and "SIGNUM_REPLAY_PIN" in result.stdout, summary(result)


def test_another_key_under_the_same_label_diverges_at_c_sign(setup):
    s = setup
    traces = sign_traces(s)
    # A second throwaway token: same token label, same key labels and CKA_IDs, other keys.
    other = make_token(s["dir"] / "b", (RSA, "signkey", "01"), (EC, "eckey", "02"))
    for name, trace_file in traces.items():
        result = replay(trace_file, other, "--pin-file", str(s["pin_file"]))
        assert result.returncode == 1, f"{name}: {summary(result)}"
        sign = next(json.loads(line) for line in trace_file.read_text().splitlines()
                    if ('"C_Sign"' in line or '"C_SignFinal"' in line)
                    and '"pSignature":"' in line)
        first = result.stdout.split("first divergence:", 1)[1].splitlines()[0]
        assert first.startswith(f" #{sign['seq']} {sign['fn']} "), f"{name}: {summary(result)}"
        assert "does not verify" in first, f"{name}: {summary(result)}"
        # The calls around it: two before, the divergent one marked, two after.
        context = result.stdout.split("first divergence:", 1)[1].splitlines()[1:6]
        assert [line.startswith("  > ") for line in context] == [False, False, True, False, False]
        assert context[2].strip().startswith(f"> #{sign['seq']} {sign['fn']}("), summary(result)
        assert "1 diverged" in result.stdout, f"{name}: {summary(result)}"


def test_absent_key_diverges_at_c_find_objects(setup):
    s = setup
    trace_file = sign_traces(s)["rsa-pkcs1"]
    only_ec = make_token(s["dir"] / "c", (EC, "eckey", "02"))
    result = replay(trace_file, only_ec, "--pin-file", str(s["pin_file"]))
    assert result.returncode == 1, summary(result)
    first = result.stdout.split("first divergence:", 1)[1].splitlines()[0]
    assert " C_FindObjects " in first and "found 0 objects, recorded 1" in first, summary(result)


def test_tampered_ecdsa_signature_diverges(setup):
    """ECDSA is never byte-compared: the recorded signature is verified against the key."""
    s = setup
    trace_file = sign_traces(s)["ecdsa"]
    lines = trace_file.read_text().splitlines()
    for i, line in enumerate(lines):
        rec = json.loads(line)
        if rec.get("fn") == "C_Sign" and "pSignature" in rec.get("out", {}):
            sig = bytearray.fromhex(rec["out"]["pSignature"])
            sig[-1] ^= 1
            rec["out"]["pSignature"] = sig.hex()
            lines[i] = json.dumps(rec)
    tampered = s["dir"] / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    result = replay(tampered, s["env"], "--pin-file", str(s["pin_file"]))
    assert result.returncode == 1, summary(result)
    assert "recorded signature does not verify" in result.stdout, summary(result)


def test_unknown_version_is_refused(setup):
    s = setup
    trace_file = sign_traces(s)["rsa-pkcs1"]
    lines = trace_file.read_text().splitlines()
    header = json.loads(lines[0])
    header["v"] = 2
    v2 = s["dir"] / "v2.jsonl"
    v2.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    result = replay(v2, s["env"], "--pin-file", str(s["pin_file"]))
    assert result.returncode == 2, summary(result)
    assert f"{v2}:1: trace format version 2 is not supported" in result.stderr, summary(result)
    # A module that cannot be loaded is also exit 2.
    result = subprocess.run([replay_tool(), str(trace_file), "--module", str(s["dir"] / "nope.so"),
                             "--pin-file", str(s["pin_file"])], env=s["env"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, summary(result)


def defect_shim() -> str:
    return built("SIGNUM_DEFECT_SHIM", "conformance/pkcs11/shim/libsignum-defect-shim-v2.so")


def compare(trace_file: Path, env: dict[str, str], b: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([replay_tool(), str(trace_file), "--compare", SOFTHSM2, b, *args],
                          env=env, capture_output=True, text=True, errors="replace", timeout=120)


def test_compare_names_the_call_where_a_defective_module_differs(setup):
    """--compare A B: SoftHSM2 against the defect shim in front of the same token. Without a defect
    the two behave alike (0); with the shim's DER-ECDSA defect (F1) B differs at C_Sign (1)."""
    s = setup
    trace_file = sign_traces(s)["ecdsa"]
    alike = dict(s["env"], SIGNUM_SHIM_TARGET=SOFTHSM2, SIGNUM_SHIM_DEFECT="none")
    result = compare(trace_file, alike, defect_shim(), "--pin-file", str(s["pin_file"]))
    assert result.returncode == 0, summary(result)
    assert "0 diverge on B only" in result.stdout, summary(result)

    der = dict(s["env"], SIGNUM_SHIM_TARGET=SOFTHSM2, SIGNUM_SHIM_DEFECT="ecdsa-der-signature")
    result = compare(trace_file, der, defect_shim(), "--pin-file", str(s["pin_file"]))
    assert result.returncode == 1, summary(result)
    first = result.stdout.split("first difference:", 1)[1].splitlines()
    assert " C_Sign " in first[0], summary(result)
    assert first[1].strip().startswith("A ") and first[1].endswith(": matches"), summary(result)
    assert first[2].strip().startswith("B ") and "matches" not in first[2], summary(result)
    assert "diverge on B only" in result.stdout and "0 on A only" in result.stdout, summary(result)


def record_p11tool(s, name: str, obj: str) -> Path:
    """GnuTLS's p11tool signing with a key found by label (a PKCS#11 URI), recorded around
    SoftHSM2: it reads most attributes of the key, its public key and the token."""
    trace_file = s["dir"] / f"{name}.jsonl"
    env = dict(s["env"], SIGNUM_RECORD_MODULE=SOFTHSM2, SIGNUM_RECORD_FILE=str(trace_file),
               GNUTLS_PIN=PIN)
    assert shutil.which("p11tool"), "p11tool is not installed (ci/setup installs gnutls-bin)"
    run(["p11tool", "--provider", recorder(), "--login", "--test-sign",
         f"pkcs11:token={TOKEN};object={obj};type=private"], env)
    return trace_file


def test_cross_module_replays_on_another_token_with_other_keys(setup):
    """--cross-module: the same p11tool session on a token whose keys, CKA_IDs and public-key
    objects differ. Strict replay diverges (other CKA_ID, other signature); across modules the
    objects match by label, key material by size, and the session replays (0) with notes; the
    defect shim's DER-ECDSA (F1) in front of that token is still named at C_Sign (1)."""
    s = setup
    traces = {"ecdsa": record_p11tool(s, "p11tool-ec", "eckey"),
              "rsa": record_p11tool(s, "p11tool-rsa", "signkey")}
    other = make_token(s["dir"] / "b", (RSA, "signkey", "0a0b"), (EC, "eckey", "0c0d"))
    pin = ["--pin-file", str(s["pin_file"])]
    for name, trace_file in traces.items():
        strict = replay(trace_file, other, *pin)
        assert strict.returncode == 1, f"{name}: {summary(strict)}"
        across = replay(trace_file, other, *pin, "--cross-module", "--notes")
        assert across.returncode == 0, f"{name}: {summary(across)}"
        assert " 0 diverged, " in across.stdout and " notes" in across.stdout, summary(across)
        # The ID difference is reported, not hidden.
        assert "is 0a0b here (matched by label)" in across.stdout or \
            "is 0c0d here (matched by label)" in across.stdout, summary(across)

    der = dict(other, SIGNUM_SHIM_TARGET=SOFTHSM2, SIGNUM_SHIM_DEFECT="ecdsa-der-signature")
    result = subprocess.run([replay_tool(), str(traces["ecdsa"]), "--module", defect_shim(), *pin,
                             "--cross-module"], env=der, capture_output=True, text=True,
                            errors="replace", timeout=120)
    assert result.returncode == 1, summary(result)
    first = result.stdout.split("first divergence:", 1)[1].splitlines()[0]
    assert " C_Sign " in first, summary(result)
    # RSA does not go through the ECDSA defect: still 0.
    result = subprocess.run([replay_tool(), str(traces["rsa"]), "--module", defect_shim(), *pin,
                             "--cross-module"], env=der, capture_output=True, text=True,
                            errors="replace", timeout=120)
    assert result.returncode == 0, summary(result)
