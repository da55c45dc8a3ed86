"""signum_harness against a real deployment: init-demo, signum-server, signum-agent, SoftHSM2.

Both tokens are read (the HSM directly and the Signum token through libsignumpkcs11.so),
pkcs11-tool makes the signatures, and every verdict of the module is checked against OpenSSL's
command line (positive and negative), so a verifier that always said "ok" would fail here.

Run: PYTHONPATH=BUILD/interop SIGNUM_BUILD_DIR=BUILD /usr/bin/python3 -m pytest -q interop/native
"""
import hashlib
import os
import shutil
import stat
import subprocess

import pytest

import signum_harness as sh

KEYS = ["rsa-2048", "ec-p384"]  # a subset, so init-demo's --keys is exercised (and it is quicker)
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def run(cmd, env=None, check=True, **kwargs):
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def deployment():
    d = sh.Deployment(keys=KEYS)  # a temporary directory of its own
    d.up()
    yield d
    status = d.status()
    directory = d.dir
    d.down()
    after = d.status()
    assert after["server_pid"] == 0 and after["agent_pid"] == 0
    assert not alive(status["server_pid"]) and not alive(status["agent_pid"])
    d.close()
    assert not os.path.exists(directory), "close() leaves an owned directory behind"


@pytest.fixture(scope="module")
def env(deployment):
    return deployment.env()


@pytest.fixture(scope="module")
def hsm_baseline_env(deployment):
    return deployment.hsm_baseline_env()


@pytest.fixture(scope="module")
def columns(deployment, env, hsm_baseline_env):
    """Per column: how to reach the token (module, label, PIN, process environment)."""
    tool_env = dict(os.environ)
    tool_env.update(env)
    # The HSM module's own variables (SOFTHSM2_CONF), not the SIGNUM_HSM_* ones.
    tool_env.update({name: value for name, value in hsm_baseline_env.items()
                     if not name.startswith("SIGNUM_HSM_")})
    return {
        "signum": dict(module=env["SIGNUM_PKCS11_MODULE"], token=env["SIGNUM_TOKEN_LABEL"],
                       pin=env["SIGNUM_PIN"], env=tool_env),
        "direct": dict(module=hsm_baseline_env["SIGNUM_HSM_MODULE"],
                       token=hsm_baseline_env["SIGNUM_HSM_TOKEN_LABEL"],
                       pin=hsm_baseline_env["SIGNUM_HSM_PIN"], env=tool_env),
    }


@pytest.fixture(scope="module")
def tokens(columns):
    opened = {
        name: sh.Token(c["module"], c["token"], pin=c["pin"], env=c["env"])
        for name, c in columns.items()
    }
    yield opened
    for t in opened.values():
        t.close()


def read(path):
    with open(path) as f:
        return f.read()


# --- Deployment ----------------------------------------------------------------------------------

def sourced(env_file):
    """What `source env_file` exports, by name."""
    exported = run(["bash", "-c", 'set -a; source "$1"; env -0', "_", env_file],
                   env={"PATH": os.environ["PATH"]}).stdout
    return dict(line.split("=", 1) for line in exported.split("\0") if "=" in line)


def test_up_status_and_env(deployment, env, hsm_baseline_env):
    s = deployment.status()
    assert s["healthy"], s
    assert s["server_pid"] > 0 and s["agent_pid"] > 0
    assert alive(s["server_pid"]) and alive(s["agent_pid"])
    assert s["certificates"] == len(KEYS)
    assert s["server_reachable"] and s["agent_endpoint"].startswith("unix:")
    assert int(read(os.path.join(deployment.dir, "run/server.pid"))) == s["server_pid"]
    assert int(read(os.path.join(deployment.dir, "run/agent.pid"))) == s["agent_pid"]

    for env_file in (deployment.env_file, deployment.hsm_baseline_env_file):
        mode = stat.S_IMODE(os.stat(env_file).st_mode)
        assert mode == 0o600, (env_file, oct(mode))
    # env() is exactly what env.sh exports, hsm_baseline_env() what hsm-baseline.env.sh does.
    for env_file, variables in ((deployment.env_file, env),
                                (deployment.hsm_baseline_env_file, hsm_baseline_env)):
        shell = sourced(env_file)
        for name, value in variables.items():
            assert shell.get(name) == value, name
    assert env["SIGNUM_PIN"] == env["SIGNUM_PKCS11_PIN"] == read(deployment.token_pin_file).strip()
    # The HSM PIN opens the keys around policy and audit: never in a provider user's env.sh.
    hsm_pin = read(deployment.hsm_pin_file).strip()
    assert hsm_baseline_env["SIGNUM_HSM_PIN"] == hsm_pin
    assert not any(name.startswith("SIGNUM_HSM_") for name in env), sorted(env)
    assert hsm_pin not in read(deployment.env_file)
    assert env["SIGNUM_CA_CERT"] == deployment.root_ca and os.path.isfile(deployment.chain)
    assert env["SIGNUM_AGENT_SOCKET"] == deployment.agent_socket
    assert env["SIGNUM_AGENT_TCP"].startswith("127.0.0.1:")
    assert env["SIGNUM_PKCS11_MODULE"] == deployment.pkcs11_module == sh.binary_paths()["pkcs11_module"]


def test_up_again_keeps_the_processes(deployment):
    before = deployment.status()
    deployment.up()
    after = deployment.status()
    assert (before["server_pid"], before["agent_pid"]) == (after["server_pid"], after["agent_pid"])


def test_a_second_handle_on_the_same_directory_sees_and_spares_it(deployment):
    other = sh.Deployment(dir=deployment.dir, detached=True)
    assert other.status()["server_pid"] == deployment.status()["server_pid"]
    other.close()  # detached: closing a handle stops nothing
    assert deployment.status()["healthy"]


# --- Tokens ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("column", ["direct", "signum"])
def test_token_objects(tokens, column):
    objects = tokens[column].objects()
    certs = {o["label"]: o for o in objects if o["class"] == "certificate"}
    private = {o["label"]: o for o in objects if o["class"] == "private_key"}
    assert sorted(private) == sorted(KEYS)
    # The signing certificates; the Signum token also shows the CA certificates of their chains.
    assert set(KEYS) <= set(certs)
    for label in set(certs) - set(KEYS):
        assert sh.certificate_info(certs[label]["certificate_pem"])["is_ca"], label
    for label in KEYS:
        cert, key = certs[label], private[label]
        assert cert["id"] and cert["id"] == key["id"], label
        assert cert["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
        assert cert["key_spec"] == label
        kind, size = label.split("-")
        assert key["key_type"] == cert["key_type"] == kind
        if kind == "rsa":
            assert key["bits"] == cert["bits"] == int(size) and key["curve"] is None
        else:
            assert key["curve"] == cert["curve"] == "P-" + size[1:]
            assert key["bits"] == int(size[1:])


def key_id(token, label):
    return next(o["id"] for o in token.objects()
                if o["class"] == "private_key" and o["label"] == label)


def test_both_tokens_hold_the_same_certificates(tokens):
    for label in KEYS:
        direct = tokens["direct"].certificate(label)
        assert tokens["signum"].certificate(label) == direct
        # By CKA_ID as well (each token has its own: the HSM's is the key's SHA-1, Signum's the
        # certificate's thumbprint).
        for token in tokens.values():
            assert token.certificate(key_id(token, label)) == direct


# --- Signatures from pkcs11-tool, verified by the module and by OpenSSL ---------------------------

def pkcs11_sign(column, key_id, mechanism, data, tmp_path, extra=()):
    # pkcs11-tool --sign picks its key by --id only (a --label is ignored).
    infile, outfile = tmp_path / "in.bin", tmp_path / "sig.bin"
    infile.write_bytes(data)
    run(["pkcs11-tool", "--module", column["module"], "--token-label", column["token"],
         "--login", "--pin", column["pin"], "--sign", "--mechanism", mechanism,
         "--id", key_id, "-i", str(infile), "-o", str(outfile), *extra], env=column["env"])
    return outfile.read_bytes()


def hsm_has(column, mechanism):
    listed = run(["pkcs11-tool", "--module", column["module"], "--token-label", column["token"], "-M"],
                 env=column["env"]).stdout
    return any(line.strip().split(",")[0] == mechanism for line in listed.splitlines())


def openssl_verifies(cert_pem, hash_name, data, der_signature, tmp_path, pss=False):
    (tmp_path / "cert.pem").write_text(cert_pem)
    pub = run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-pubkey"]).stdout
    (tmp_path / "pub.pem").write_text(pub)
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "sig.der").write_bytes(der_signature)
    cmd = ["openssl", "dgst", "-" + hash_name, "-verify", str(tmp_path / "pub.pem"),
           "-signature", str(tmp_path / "sig.der")]
    if pss:
        cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
    return run(cmd + [str(tmp_path / "data.bin")], check=False).returncode == 0


CASES = [
    # key, pkcs11-tool mechanism, extra args, scheme, hash, signature is DER for OpenSSL as is
    ("rsa-2048", "SHA256-RSA-PKCS", (), "rsa-pkcs1", "sha256"),
    ("rsa-2048", "SHA384-RSA-PKCS-PSS", (), "rsa-pss", "sha384"),
    ("ec-p384", "ECDSA-SHA384", ("--signature-format", "openssl"), "ecdsa", "sha384"),
    ("ec-p384", "ECDSA-SHA256", (), "ecdsa", "sha256"),  # raw r||s
]


@pytest.mark.parametrize("column_name", ["signum", "direct"])
@pytest.mark.parametrize("key,mechanism,extra,scheme,hash_name", CASES)
def test_message_signature(columns, tokens, tmp_path, column_name, key, mechanism, extra, scheme,
                           hash_name):
    column = columns[column_name]
    cert = tokens["direct"].certificate(key)  # the HSM's copy: the reference
    data = b"signum harness " + column_name.encode() + mechanism.encode()
    signed, mech = data, mechanism
    if column_name == "direct" and mechanism.startswith("ECDSA-") and not hsm_has(column, mechanism):
        # SoftHSM 2.6 offers CKM_ECDSA only: hash here, sign the digest (the same signature).
        signed, mech = hashlib.new(hash_name, data).digest(), "ECDSA"
    sig = pkcs11_sign(column, key_id(tokens[column_name], key), mech, signed, tmp_path, extra)

    ok, message = sh.verify_message_signature(cert, scheme, hash_name, data, sig)
    assert ok, message
    # OpenSSL agrees (it wants DER for ECDSA).
    der = sig
    if scheme == "ecdsa" and not extra:
        der = ecdsa_raw_to_der(sig)
    assert openssl_verifies(cert, hash_name, data, der, tmp_path, pss=scheme == "rsa-pss")

    # Negative: another message, a damaged signature, another key, another hash.
    assert not sh.verify_message_signature(cert, scheme, hash_name, data + b"!", sig)[0]
    broken = bytearray(sig)
    broken[len(broken) // 2] ^= 0x01
    assert not sh.verify_message_signature(cert, scheme, hash_name, data, bytes(broken))[0]
    assert not openssl_verifies(cert, hash_name, data + b"!", der, tmp_path, pss=scheme == "rsa-pss")
    other = tokens["direct"].certificate("ec-p384" if key == "rsa-2048" else "rsa-2048")
    assert not sh.verify_message_signature(other, scheme, hash_name, data, sig)[0]
    other_hash = "sha512" if hash_name != "sha512" else "sha256"
    assert not sh.verify_message_signature(cert, scheme, other_hash, data, sig)[0]


def ecdsa_raw_to_der(raw):
    half = len(raw) // 2

    def integer(value):
        value = value.lstrip(b"\0") or b"\0"
        if value[0] & 0x80:
            value = b"\0" + value
        return b"\x02" + der_length(len(value)) + value

    body = integer(raw[:half]) + integer(raw[half:])
    return b"\x30" + der_length(len(body)) + body


def der_length(n):
    return bytes([n]) if n < 0x80 else bytes([0x81, n])


@pytest.mark.parametrize("column_name", ["signum", "direct"])
def test_digest_signature(columns, tokens, tmp_path, column_name):
    column = columns[column_name]
    data = b"digest signed by " + column_name.encode()
    digest = hashlib.sha384(data).digest()
    # CKM_ECDSA signs the digest as given: raw r||s.
    token = tokens[column_name]
    sig = pkcs11_sign(column, key_id(token, "ec-p384"), "ECDSA", digest, tmp_path)
    cert = tokens["direct"].certificate("ec-p384")
    ok, message = sh.verify_digest_signature(cert, "ecdsa", "sha384", digest, sig)
    assert ok, message
    assert openssl_verifies(cert, "sha384", data, ecdsa_raw_to_der(sig), tmp_path)
    assert not sh.verify_digest_signature(cert, "ecdsa", "sha384", hashlib.sha384(b"x").digest(), sig)[0]
    # RSA PKCS#1 v1.5 and PSS over a digest (the signum column's raw mechanisms need DigestInfo;
    # SHA256-RSA-PKCS makes the same signature from the message).
    rsa = tokens["direct"].certificate("rsa-2048")
    sig = pkcs11_sign(column, key_id(token, "rsa-2048"), "SHA256-RSA-PKCS", data, tmp_path)
    assert sh.verify_digest_signature(rsa, "rsa-pkcs1", "sha256", hashlib.sha256(data).digest(), sig)[0]
    assert not sh.verify_digest_signature(rsa, "rsa-pss", "sha256", hashlib.sha256(data).digest(), sig)[0]
    sig = pkcs11_sign(column, key_id(token, "rsa-2048"), "SHA256-RSA-PKCS-PSS", data, tmp_path,
                      ("--salt-len", "20"))
    assert sh.verify_digest_signature(rsa, "rsa-pss", "sha256", hashlib.sha256(data).digest(), sig,
                                      pss_salt=20)[0]
    assert not sh.verify_digest_signature(rsa, "rsa-pss", "sha256", hashlib.sha256(data).digest(),
                                          sig, pss_salt=32)[0]


# --- Chains and certificate details ----------------------------------------------------------------

def test_verify_chain(deployment, tokens, tmp_path):
    leaf = tokens["signum"].certificate("rsa-2048")
    chain, root = read(deployment.chain), read(deployment.root_ca)
    ok, message = sh.verify_chain(leaf, chain, root)
    assert ok, message
    assert sh.verify_chain(leaf, [chain], root, code_signing=True)[0]
    # OpenSSL agrees.
    (tmp_path / "leaf.pem").write_text(leaf)
    assert run(["openssl", "verify", "-CAfile", deployment.root_ca, "-untrusted", deployment.chain,
                str(tmp_path / "leaf.pem")], check=False).returncode == 0

    # Wrong roots: the demo's client CA, and a stranger's self-signed root.
    ok, message = sh.verify_chain(leaf, chain, read(deployment.path("ca/client-ca.pem")))
    assert not ok and message
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=Signum Demo Root CA", "-days", "1",
         "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "stranger.pem")])
    assert not sh.verify_chain(leaf, chain, read(tmp_path / "stranger.pem"))[0]
    # Without the issuing CA the leaf does not chain.
    assert not sh.verify_chain(leaf, [], root)[0]
    assert run(["openssl", "verify", "-CAfile", str(tmp_path / "stranger.pem"), "-untrusted",
                deployment.chain, str(tmp_path / "leaf.pem")], check=False).returncode != 0


def test_certificate_info(deployment, tokens, tmp_path):
    pem = tokens["signum"].certificate("ec-p384")
    info = sh.certificate_info(pem)
    (tmp_path / "c.pem").write_text(pem)
    fingerprint = run(["openssl", "x509", "-in", str(tmp_path / "c.pem"), "-noout", "-fingerprint",
                       "-sha1"]).stdout.strip().split("=", 1)[1]
    assert info["sha1"] == fingerprint.replace(":", "").lower()
    assert info["key_spec"] == "ec-p384" and info["curve"] == "P-384" and info["bits"] == 384
    assert info["code_signing"] and not info["is_ca"]
    assert info["not_before"] < info["not_after"]
    issuer = run(["openssl", "x509", "-in", str(tmp_path / "c.pem"), "-noout", "-issuer",
                  "-nameopt", "RFC2253"]).stdout.strip().split("=", 1)[1]
    assert info["issuer"] == issuer
    root = sh.certificate_info(read(deployment.root_ca))
    assert root["is_ca"] and root["subject"] == root["issuer"]
    assert root["key_spec"] == "rsa-3072" and root["curve"] is None


# --- Errors ---------------------------------------------------------------------------------------

def test_errors_raise_with_the_status_message(columns, tokens, env):
    with pytest.raises(sh.Error, match="NOT_FOUND.*no-such-cert"):
        tokens["signum"].certificate("no-such-cert")
    with pytest.raises(sh.Error, match="no-such-token"):
        sh.Token(columns["direct"]["module"], "no-such-token", env=columns["direct"]["env"])
    with pytest.raises(sh.Error, match="loading /nonexistent"):
        sh.Token("/nonexistent/module.so", "x")
    with pytest.raises(sh.Error, match="certificate"):
        sh.certificate_info("not a certificate")
    cert = tokens["direct"].certificate("rsa-2048")
    with pytest.raises(sh.Error, match="INVALID_ARGUMENT"):
        sh.verify_message_signature(cert, "rsa-nonsense", "sha256", b"x", b"y")
    with pytest.raises(sh.Error, match="INVALID_ARGUMENT"):
        sh.verify_chain(cert, [], [])
    with pytest.raises(sh.Error, match="vendor HSM"):
        sh.Deployment(vendor_module=SOFTHSM)  # no token label or PIN file
    assert issubclass(sh.Error, RuntimeError)


# --- More deployments -----------------------------------------------------------------------------

def test_context_manager_mtls_user_and_no_tcp():
    with sh.Deployment(user="ci-bot", keys=["ec-p256"], agent_tcp=False) as d:
        directory = d.dir
        s = d.status()
        assert s["healthy"], s
        assert s["certificates"] == 1
        assert "ci-bot" in s["user"], s["user"]
        assert d.env()["SIGNUM_AGENT_TCP"] == "off"
        pids = (s["server_pid"], s["agent_pid"])
    assert not any(alive(p) for p in pids)
    assert not os.path.exists(directory)


def test_up_failure_names_the_cause(tmp_path):
    d = sh.Deployment(dir=str(tmp_path / "broken"))
    os.makedirs(d.dir, exist_ok=True)
    with open(os.path.join(d.dir, "server.json"), "w") as f:
        f.write("{}")
    with pytest.raises(sh.Error, match="server.json"):
        d.up()
    d.close()


def init_demo_knows_vendor_hsms():
    server = sh.binary_paths()["server"]
    result = run([server, "--help"], check=False)
    return "--hsm-module" in result.stdout + result.stderr


def test_vendor_hsm(tmp_path):
    if not init_demo_knows_vendor_hsms():
        pytest.skip("signum-server init-demo has no --hsm-module yet")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    hsm_env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    run(["softhsm2-util", "--init-token", "--free", "--label", "vendor-hsm", "--pin", "24682468",
         "--so-pin", "13571357"], env=hsm_env)
    pin_file = tmp_path / "vendor.pin"
    pin_file.write_text("24682468\n")
    pin_file.chmod(0o600)
    with sh.Deployment(keys=["ec-p256"], vendor_module=SOFTHSM, vendor_token="vendor-hsm",
                       vendor_pin_file=str(pin_file), vendor_env={"SOFTHSM2_CONF": str(conf)}) as d:
        assert d.status()["healthy"]
        env = d.env()
        baseline = d.hsm_baseline_env()
        assert baseline["SIGNUM_HSM_TOKEN_LABEL"] == "vendor-hsm"
        assert baseline["SIGNUM_HSM_MODULE"] == SOFTHSM
        assert baseline["SOFTHSM2_CONF"] == str(conf)
        assert baseline["SIGNUM_HSM_PIN"] == "24682468"
        assert "24682468" not in read(d.env_file)
        # The key was made on the vendor token, and signing through Signum uses it.
        listed = run(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "vendor-hsm", "--login",
                      "--pin", "24682468", "-O"], env=hsm_env).stdout
        assert "ec-p256" in listed
        cert_file = tmp_path / "vendor-cert.der"
        run(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "vendor-hsm", "--read-object",
             "--type", "cert", "--label", "ec-p256", "-o", str(cert_file)], env=hsm_env)
        cert = run(["openssl", "x509", "-inform", "DER", "-in", str(cert_file)]).stdout
        # Through Signum (a separate process: this one has libsignumpkcs11.so initialised for the
        # other deployment). The Signum token's CKA_ID is the certificate's SHA-1 thumbprint.
        column = dict(module=env["SIGNUM_PKCS11_MODULE"], token="Signum", pin=env["SIGNUM_PIN"],
                      env=dict(os.environ, **env))
        sig = pkcs11_sign(column, sh.certificate_info(cert)["sha1"], "ECDSA-SHA256", b"vendor",
                          tmp_path)
        assert sh.verify_message_signature(cert, "ecdsa", "sha256", b"vendor", sig)[0]
        assert sh.verify_chain(cert, read(d.chain), read(d.root_ca))[0]
