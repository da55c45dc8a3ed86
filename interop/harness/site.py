"""A deployment as the rows see it: the two columns (signum, direct), the keys and certificates on
each token, and the trust anchor.

The deployment itself (signum-server + signum-agent on a fresh SoftHSM2 token, or on a vendor's
token) is brought up by the C++ Deployment class through the `signum_harness` pybind11 module;
certificates are read from the tokens through reference/core's PKCS#11 loader, not from files,
so a row signs with exactly what the tool will find on the token.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Optional

from . import native

# A site file describes a deployment that runs elsewhere, for a platform without the native module:
# the Windows job runs its deployment in WSL and interop/tools/windows/export-site.py writes the
# file there (docs/windows.md). With this variable set, the runner uses it instead of provisioning.
SITE_FILE_VARIABLE = "SIGNUM_MATRIX_SITE"

@dataclasses.dataclass(frozen=True)
class Column:
    name: str          # signum | direct
    module: str        # the PKCS#11 module a tool loads
    token_label: str
    pin: str


@dataclasses.dataclass(frozen=True)
class Key:
    label: str
    id_hex: str
    certificate_pem: str
    sha1_thumbprint: str


@dataclasses.dataclass(frozen=True)
class VendorHsm:
    module: str
    token_label: str
    pin_file: str
    env: dict


class Site:
    """One running deployment (owned: up() here, down() in close())."""

    def __init__(self, directory: Path, keys=(), vendor: Optional[VendorHsm] = None,
                 owned: bool = True):
        """`owned`: close() takes the deployment down (False for one someone else runs)."""
        self.directory = Path(directory)
        self.owned = owned
        options = {"dir": str(self.directory), "keys": list(keys)}
        if vendor:
            options.update(vendor_module=vendor.module, vendor_token=vendor.token_label,
                           vendor_pin_file=vendor.pin_file, vendor_env=dict(vendor.env))
        self.vendor = vendor
        if vendor:
            self._refuse_taken_labels(vendor, keys)
        self._deployment = native.module().Deployment(**options)
        self._deployment.up()
        self.env = dict(self._deployment.env())
        # The direct column only: the HSM PIN is kept out of env.sh (docs/demo-deployment.md).
        self.hsm_baseline_env = dict(self._deployment.hsm_baseline_env())
        self.root_ca = self.env["SIGNUM_CA_CERT"]
        self.chain = str(self.directory / "ca" / "chain.pem")
        self.columns = {
            "signum": Column("signum", self.env["SIGNUM_PKCS11_MODULE"],
                             self.env["SIGNUM_TOKEN_LABEL"], self.env["SIGNUM_PKCS11_PIN"]),
            "direct": Column("direct", self.hsm_baseline_env["SIGNUM_HSM_MODULE"],
                             self.hsm_baseline_env["SIGNUM_HSM_TOKEN_LABEL"],
                             self.hsm_baseline_env["SIGNUM_HSM_PIN"]),
        }
        self._keys = {}

    @staticmethod
    def _refuse_taken_labels(vendor: VendorHsm, labels):
        """The direct column finds keys by label, so a vendor token that already holds objects
        with the labels this run creates would make it sign with the wrong key."""
        pin = Path(vendor.pin_file).read_text().strip()
        existing = native.module().Token(vendor.module, vendor.token_label, pin,
                                         dict(vendor.env)).objects()
        taken = sorted({o["label"] for o in existing} & set(labels))
        if taken:
            raise RuntimeError(
                f"vendor token `{vendor.token_label}` already holds objects labelled {taken} "
                "(left by an interrupted run? `signum-server remove-demo-keys DIR` removes a "
                "deployment's keys); refusing to add a second key under the same label")

    def module_environment(self) -> dict:
        """What a tool process needs to reach both tokens (agent address, SoftHSM2 config, ...)."""
        names = ("SIGNUM_AGENT_SOCKET", "SIGNUM_AGENT_TCP", "SIGNUM_AGENT_SECRET_FILE")
        environment = {name: self.env[name] for name in names if self.env.get(name)}
        # The HSM module's own variables (SOFTHSM2_CONF, a vendor's), never the SIGNUM_HSM_* ones:
        # the HSM PIN reaches a tool only as the direct column's PIN.
        environment.update({name: value for name, value in self.hsm_baseline_env.items()
                            if value and not name.startswith("SIGNUM_HSM_")})
        return environment

    def keys(self, column: str) -> dict:
        """label -> Key for every certificate on the column's token (read once)."""
        if column not in self._keys:
            spec = self.columns[column]
            token = native.module().Token(spec.module, spec.token_label, spec.pin,
                                          self.module_environment())
            objects = token.objects()
            key_ids = {o["id"] for o in objects if o["class"] == "private_key"}
            found = {}
            for entry in objects:
                # Authority certificates on the token have no private key beside them.
                if entry["class"] == "certificate" and entry["id"] in key_ids:
                    info = native.module().certificate_info(entry["certificate_pem"])
                    found[entry["label"]] = Key(entry["label"], entry["id"],
                                                entry["certificate_pem"],
                                                info["sha1"])
            self._keys[column] = found
        return self._keys[column]

    def close(self):
        if self._deployment is not None and self.owned:
            self._deployment.down()
            if self.vendor:
                # A vendor's token is left as it was found: the keys, public keys and
                # certificates this deployment created go again.
                server = native.module().binary_paths()["server"]
                subprocess.run([server, "remove-demo-keys", str(self.directory)], check=True,
                               stdout=subprocess.DEVNULL)
            self._deployment = None


class DescribedSite(Site):
    """A running deployment known only from its site file (never owned: close() leaves it up).
    Columns, keys and certificates are what the exporting side read from the tokens."""

    def __init__(self, path):
        path = Path(path)
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise RuntimeError(f"site file {path}: {error}") from error
        self.directory = path.parent
        self.owned = False
        self.vendor = None
        self._deployment = None
        self.env = dict(document["env"])
        self.hsm_baseline_env = {}  # an exported site has the signum column only
        self.root_ca = document["root_ca"]
        self.chain = document["chain"]
        self.columns = {name: Column(name, spec["module"], spec["token_label"], spec["pin"])
                        for name, spec in document["columns"].items()}
        self._keys = {column: {label: Key(label, k["id_hex"], k["certificate_pem"], k["sha1"])
                               for label, k in keys.items()}
                      for column, keys in document["keys"].items()}

    def keys(self, column: str) -> dict:
        if column not in self._keys:
            raise LookupError(f"the site file describes no `{column}` column "
                              f"(it has {sorted(self._keys)})")
        return self._keys[column]


def described_site_from_environment():
    """The DescribedSite named by $SIGNUM_MATRIX_SITE, or None."""
    path = os.environ.get(SITE_FILE_VARIABLE, "")
    return DescribedSite(path) if path else None
