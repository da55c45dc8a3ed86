"""The regression corpus (issue 14): PKCS#11 sessions of real tools, recorded in the matrix's
direct column (the tool in front of SoftHSM2, through libsignum-pkcs11-recorder.so) and committed
as traces (docs/trace-format.md). ci/test replays every one against libsignumpkcs11.so on a fresh
deployment with `signum-replay --cross-module`, so a provider change that breaks what OpenSSL,
osslsigncode, SunPKCS11, NSS, GnuTLS or gnupg-pkcs11-scd does fails without the tool.

  python3 -m interop.corpus record [CELL...]   re-record (all of corpus.yaml, or the cells named)
  python3 -m interop.corpus replay [--module M] [--defect NAME]
                                               replay every trace against the provider (or M; with
                                               NAME from the defect shim's catalogue in front)
"""
