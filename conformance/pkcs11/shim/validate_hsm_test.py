#!/usr/bin/python3
"""Demonstrates conformance/pkcs11/validate-hsm on two stand-in "vendors":

  softhsm  a fresh SoftHSM2 token (module libsofthsm2.so, SOFTHSM2_CONF via --env);
  p11kit   p11-kit's client module in front of that kind of token, served by `p11-kit server`
           from another process (P11_KIT_SERVER_ADDRESS via --env).

Asserts that every step ran, that the report (report.md, junit.xml, summary.json) is there, that
the capabilities SoftHSM2 is known to have are reported as supported, and that the token holds
exactly the objects it held before (validate-hsm leaves vendor tokens as found).

usage: validate_hsm_test.py --validate PATH --build DIR --out DIR --vendor softhsm|p11kit
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
P11KIT_CLIENT = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
LABEL = "vendor-token"
PIN = "vendor-pin-2718"

# What SoftHSM2 2.6 can do (and so what either stand-in must be reported to support).
MUST_BE_SUPPORTED = [
    "RSA 2048 key generation (non-extractable)",
    "RSA 3072 key generation (non-extractable)",
    "EC P-256 key generation (non-extractable)",
    "EC P-384 key generation (non-extractable)",
    "PKCS#1 v1.5 signatures (CKM_RSA_PKCS over DigestInfo)",
    "ECDSA (CKM_ECDSA, raw r||s of 2n bytes)",
    "Whole Signum path: RSA PKCS#1 v1.5 through libsignumpkcs11.so",
    "Whole Signum path: ECDSA through libsignumpkcs11.so",
]


def list_objects(conf):
    """Every object on the token, as pkcs11-tool prints it after login (SoftHSM2 directly)."""
    out = subprocess.run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", LABEL,
                          "--login", "--pin", PIN, "--list-objects"],
                         env=dict(os.environ, SOFTHSM2_CONF=conf), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"pkcs11-tool --list-objects failed: {out.stdout}{out.stderr}")
    return out.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--validate", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--vendor", required=True, choices=("softhsm", "p11kit"))
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix=f"signum-validate-{args.vendor}-")
    server = None
    try:
        conf = os.path.join(work, "softhsm2.conf")
        os.makedirs(os.path.join(work, "tokens"))
        with open(conf, "w") as f:
            f.write(f"directories.tokendir = {work}/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--pin", PIN,
                        "--so-pin", "so-" + PIN], env=dict(os.environ, SOFTHSM2_CONF=conf),
                       check=True, capture_output=True)
        pin_file = os.path.join(work, "pin")
        with open(pin_file, "w") as f:
            f.write(PIN + "\n")
        os.chmod(pin_file, 0o600)
        # The vendor already keeps one key pair of its own on the token.
        subprocess.run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", LABEL,
                        "--login", "--pin", PIN, "--keypairgen", "--key-type", "EC:prime256v1",
                        "--label", "vendors-own", "--id", "0a0b"],
                       env=dict(os.environ, SOFTHSM2_CONF=conf), check=True, capture_output=True)
        before = list_objects(conf)

        if args.vendor == "softhsm":
            module, env = SOFTHSM_MODULE, [f"SOFTHSM2_CONF={conf}"]
        else:
            socket = os.path.join(work, "p11-kit.sock")
            server = subprocess.Popen(
                ["p11-kit", "server", "-f", "-n", socket, "--provider", SOFTHSM_MODULE,
                 f"pkcs11:token={LABEL}"],
                env=dict(os.environ, SOFTHSM2_CONF=conf), stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(work, "p11-kit-server.log"), "w"))
            for _ in range(100):
                if os.path.exists(socket) or server.poll() is not None:
                    break
                time.sleep(0.1)
            if not os.path.exists(socket):
                sys.exit("p11-kit server did not create its socket")
            module, env = P11KIT_CLIENT, [f"P11_KIT_SERVER_ADDRESS=unix:path={socket}"]

        out = os.path.join(args.out, f"validate-hsm-{args.vendor}")
        shutil.rmtree(out, ignore_errors=True)
        command = [args.validate, "--module", module, "--token", LABEL, "--pin-file", pin_file,
                   "--out", out]
        for e in env:
            command += ["--env", e]
        rc = subprocess.run(command, env=dict(os.environ, SIGNUM_BUILD_DIR=args.build)).returncode

        problems = []
        if rc != 0:
            problems.append(f"validate-hsm exited {rc}")
        for name in ("report.md", "junit.xml", "summary.json"):
            if not os.path.exists(os.path.join(out, name)):
                problems.append(f"no {name} in {out}")
        summary = {}
        if os.path.exists(os.path.join(out, "summary.json")):
            with open(os.path.join(out, "summary.json")) as f:
                summary = json.load(f)
        for step in summary.get("steps", []):
            if not step["ok"]:
                problems.append(f"step failed: {step['step']}: {step['detail']}")
        verdicts = {c["capability"]: c["status"] for c in summary.get("capabilities", [])}
        for capability in MUST_BE_SUPPORTED:
            if verdicts.get(capability) != "supported":
                problems.append(f"'{capability}' reported as {verdicts.get(capability)}")
        after = list_objects(conf)
        if after != before:
            problems.append(f"the token was not left as found:\nbefore:\n{before}\nafter:\n{after}")
        for p_ in problems:
            print("PROBLEM:", p_)
        print(f"validate-hsm on {args.vendor}: {len(verdicts)} capabilities, "
              f"{sum(v == 'supported' for v in verdicts.values())} supported; "
              f"{len(problems)} problems")
        return 1 if problems else 0
    finally:
        if server is not None and server.poll() is None:
            server.terminate()  # our own p11-kit server, by its PID
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
