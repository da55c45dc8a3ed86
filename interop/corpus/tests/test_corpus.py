"""The regression corpus (issue 14): real tools' PKCS#11 sessions, recorded in front of SoftHSM2
(interop/corpus/traces), replayed against libsignumpkcs11.so on a fresh deployment with
`signum-replay --cross-module`. Every trace must replay without divergence; a defect from the
shim's catalogue in front of the provider must be caught, at the call that shows it, by exactly
the callers that depend on what it breaks."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from interop.corpus import corpus
from interop.harness import native
from interop.harness.site import Site

ENTRIES = corpus.entries()


@pytest.fixture(scope="module")
def deployment():
    for path in (corpus.defect_shim(), native.build_dir() / "reference/replay/signum-replay"):
        assert path.exists(), f"not built: {path}"
    with tempfile.TemporaryDirectory(prefix="signum-corpus-") as scratch:
        site = Site(Path(scratch) / "deployment", keys=corpus.token_keys())
        try:
            yield site, Path(scratch)
        finally:
            site.close()


def calls(entry) -> list:
    lines = entry.trace.read_text().splitlines()
    return [json.loads(line) for line in lines[1:] if line.strip()]


def signing_mechanisms(entry) -> set:
    return {c["args"]["pMechanism"]["name"] for c in calls(entry)
            if c["fn"] == "C_SignInit" and c["rv"]["value"] == 0}


def reads_value_of(entry, attribute: str) -> bool:
    return any(c["fn"] == "C_GetAttributeValue" and any(
        a.get("name") == attribute and isinstance(a.get("value"), str)
        for a in c["out"].get("pTemplate") or []) for c in calls(entry))


def test_the_corpus_is_what_corpus_yaml_lists_and_holds_no_pin():
    assert len(ENTRIES) >= 10
    for entry in ENTRIES:
        assert entry.trace.exists(), f"{entry.cell}: no trace (python3 -m interop.corpus record)"
        header = json.loads(entry.trace.read_text().splitlines()[0])
        assert header["v"] == 1 and header["kind"] == "signum-pkcs11-trace", entry.cell
        assert "softhsm" in header["module"], f"{entry.cell}: recorded against {header['module']}"
        assert signing_mechanisms(entry), f"{entry.cell}: the session never signs"
        for call in calls(entry):
            if call["fn"] == "C_Login":
                assert call["args"]["pPin"].get("redacted") is True, entry.cell


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.cell for e in ENTRIES])
def test_every_real_tool_session_replays_on_the_provider(deployment, entry):
    site, scratch = deployment
    outcome = corpus.replay(entry, site, scratch)
    assert outcome.returncode == 0, f"{entry.caller}:\n{outcome.output}"
    assert f"{outcome.calls} calls replayed, {outcome.calls} matched, 0 diverged" in outcome.output
    print(f"{entry.cell}: {outcome.summary} in {outcome.seconds:.2f}s")


def ecdsa(entry) -> bool:
    return any("ECDSA" in m for m in signing_mechanisms(entry))


def raw_rsa_pkcs(entry) -> bool:
    return "CKM_RSA_PKCS" in signing_mechanisms(entry)


def pss(entry) -> bool:
    return any("PSS" in m for m in signing_mechanisms(entry))


def reads_ec_point(entry) -> bool:
    return reads_value_of(entry, "CKA_EC_POINT")


def reads_always_authenticate(entry) -> bool:
    return reads_value_of(entry, "CKA_ALWAYS_AUTHENTICATE")


# Callers that pair a certificate with its private key by CKA_ID: SunPKCS11 (jarsigner, keytool)
# and NSS find the key by the certificate's ID; GnuTLS's p11tool compares the certificate's ID with
# the key's. libp11 (OpenSSL, osslsigncode), gnupg-pkcs11-scd and certtool, given a key URI, go by
# label. (What the corpus showed; the trace alone does not say which reads a caller compares.)
PAIRS_BY_ID = {"jarsigner", "keytool-certreq", "pdfsig", "nss-cmsutil", "p11tool"}


def pairs_certificate_and_key_by_id(entry) -> bool:
    return entry.cell.split(".")[0] in PAIRS_BY_ID


# defect of the shim's catalogue -> (which callers it must break, the call that shows it)
DEFECTS = {
    "ecdsa-der-signature": (ecdsa, ("C_Sign",)),
    "rsa-pkcs-ignores-digestinfo": (raw_rsa_pkcs, ("C_Sign",)),
    "pss-ignores-salt-params": (pss, ("C_Sign",)),
    "ec-point-not-der-wrapped": (reads_ec_point, ("C_GetAttributeValue",)),
    "always-authenticate-type-invalid": (reads_always_authenticate, ("C_GetAttributeValue",)),
    # The key search by the certificate's CKA_ID misses, or the CKA_ID read back is not the key's.
    "cert-id-mismatch": (pairs_certificate_and_key_by_id, ("C_FindObjects", "C_GetAttributeValue")),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_catalogue_defect_is_caught_by_the_callers_it_breaks(deployment, defect):
    site, scratch = deployment
    depends, where = DEFECTS[defect]
    caught = []
    for entry in ENTRIES:
        outcome = corpus.replay(entry, site, scratch, defect=defect)
        if depends(entry):
            assert outcome.returncode == 1, f"{defect} not caught by {entry.cell}:\n{outcome.output}"
            assert any(f" {call} " in outcome.first_divergence for call in where), \
                f"{defect} in {entry.cell}: first divergence not at {where}:\n{outcome.output}"
            caught.append(entry.cell)
        else:
            assert outcome.returncode == 0, \
                f"{entry.cell} does not depend on {defect}, yet:\n{outcome.output}"
    assert caught, f"no trace in the corpus depends on {defect}"
    print(f"{defect}: caught by {len(caught)} of {len(ENTRIES)}: {', '.join(caught)}")
