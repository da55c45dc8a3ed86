#!/usr/bin/python3
"""The API-level signing matrix: every certificate of a running deployment x every scheme and hash
its policy allows, signed through signum-server's HTTPS API and verified independently with the
openssl CLI against the leaf certificate, whose chain must reach the deployment's root CA.

Python's own TLS client (not our C++ one) talks to the server, and openssl (not our code) judges
the signatures. Writes reports/api-matrix.json and reports/api-matrix.md.

usage: ci/api_matrix.py DEPLOYMENT_DIR REPORT_DIR
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HASHES = ["sha1", "sha256", "sha384", "sha512"]


def der_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_integer(raw):
    raw = raw.lstrip(b"\x00") or b"\x00"
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return b"\x02" + der_length(len(raw)) + raw


def ecdsa_raw_to_der(sig):
    half = len(sig) // 2
    body = der_integer(sig[:half]) + der_integer(sig[half:])
    return b"\x30" + der_length(len(body)) + body


class Api:
    def __init__(self, port, ca_file, token):
        self.context = ssl.create_default_context(cafile=ca_file)
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.context, timeout=30)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")


def openssl(args, stdin=None):
    return subprocess.run(["openssl"] + args, input=stdin, capture_output=True, env=dict(os.environ, OPENSSL_CONF=""))


def main():
    deployment, report_dir = sys.argv[1], sys.argv[2]
    config = json.load(open(os.path.join(deployment, "server.json")))
    port = config["listen"]["port"]
    root_ca = os.path.join(deployment, "ca", "root.pem")
    token = open(os.path.join(deployment, "credentials", "release.token")).read().strip()
    api = Api(port, root_ca, token)
    deadline = time.time() + 30
    while True:
        try:
            status, _ = api.call("GET", "/v1/health")
            if status == 200:
                break
        except OSError:
            api = Api(port, root_ca, token)
        if time.time() > deadline:
            sys.exit("signum-server did not become healthy on port %d" % port)
        time.sleep(0.2)

    status, listing = api.call("GET", "/v1/certificates")
    if status != 200:
        sys.exit("listing certificates failed: %s" % listing)
    os.makedirs(report_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="signum-api-matrix-")
    try:
        records = run_cells(api, listing, root_ca, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_reports(records, report_dir)


def run_cells(api, listing, root_ca, work):
    records = []
    for cert in listing["certificates"]:
        leaf = os.path.join(work, cert["label"] + ".pem")
        chain = os.path.join(work, cert["label"] + "-chain.pem")
        pub = os.path.join(work, cert["label"] + ".pub")
        open(leaf, "w").write(cert["certificate"])
        open(chain, "w").write("".join(cert["chain"][:-1]))
        openssl(["x509", "-in", leaf, "-pubkey", "-noout", "-out", pub])
        chain_ok = openssl(["verify", "-CAfile", root_ca, "-untrusted", chain, leaf]).returncode == 0
        for scheme in cert["schemes"]:
            # The listing's hashes are a union over the caller's rules; SHA-1 is only ever allowed
            # for legacy PKCS#1 v1.5 (the demo's release-legacy-sha1 rule), so only tried there.
            hashes = [h for h in HASHES if h in cert["hashes"] and (h != "sha1" or scheme == "rsa-pkcs1")]
            for hash_name in hashes:
                started = time.time()
                data = ("signum api matrix %s %s %s" % (cert["label"], scheme, hash_name)).encode()
                digest = hashlib.new(hash_name, data).digest()
                request = {"certificate_id": cert["id"], "scheme": scheme, "hash": hash_name,
                           "digest": base64.b64encode(digest).decode(),
                           "context": {"process": "api_matrix.py", "command_line": " ".join(sys.argv)}}
                status, body = api.call("POST", "/v1/sign", request)
                reason = ""
                if status != 200:
                    outcome, reason = "fail", "HTTP %d: %s" % (status, body.get("error", {}).get("message"))
                else:
                    sig = base64.b64decode(body["signature"])
                    if scheme == "ecdsa":
                        sig = ecdsa_raw_to_der(sig)
                    sig_file = os.path.join(work, "sig.bin")
                    dig_file = os.path.join(work, "digest.bin")
                    open(sig_file, "wb").write(sig)
                    open(dig_file, "wb").write(digest)
                    opts = ["-pkeyopt", "digest:" + hash_name]
                    if scheme == "rsa-pss":
                        opts += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:digest"]
                    verify = openssl(["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", dig_file,
                                      "-sigfile", sig_file] + opts)
                    if verify.returncode != 0:
                        outcome, reason = "fail", "openssl pkeyutl -verify: " + verify.stdout.decode() + verify.stderr.decode()
                    elif not chain_ok:
                        outcome, reason = "fail", "certificate does not chain to the deployment root CA"
                    else:
                        outcome = "pass"
                records.append({"id": "api-%s-%s-%s" % (cert["label"], scheme, hash_name), "tool": "signum-server API",
                                "interface": "https", "platform": "linux", "algorithm": cert["label"],
                                "scheme": scheme, "hash": hash_name, "column": "signum",
                                "status": outcome, "reason": reason,
                                "seconds": round(time.time() - started, 3)})
                print("[%3d] %-9s %-9s %-6s %s %s" % (len(records), cert["label"], scheme, hash_name,
                                                       outcome.upper(), reason), flush=True)
    return records


def write_reports(records, report_dir):
    json.dump(records, open(os.path.join(report_dir, "api-matrix.json"), "w"), indent=2)
    with open(os.path.join(report_dir, "api-matrix.md"), "w") as md:
        md.write("| algorithm | scheme | hash | status | seconds | reason |\n|---|---|---|---|---|---|\n")
        for r in records:
            md.write("| %s | %s | %s | %s | %.3f | %s |\n" % (r["algorithm"], r["scheme"], r["hash"],
                                                             r["status"], r["seconds"], r["reason"]))
    failed = [r for r in records if r["status"] != "pass"]
    print("api matrix: %d cells, %d pass, %d fail" % (len(records), len(records) - len(failed), len(failed)))
    sys.exit(1 if failed or not records else 0)


if __name__ == "__main__":
    main()
