#include "defect_catalogue.h"

namespace signum::conformance {

const std::vector<DefectInfo>& DefectCatalogue() {
  static const std::vector<DefectInfo> catalogue = {
      {Defect::kEcdsaDerSignature,
       "ecdsa-der-signature",
       "C_Sign/C_SignFinal with an ECDSA mechanism return the signature DER-encoded "
       "(SEQUENCE{r,s}) instead of raw r||s of 2*nLen bytes",
       "F1: tpm2-pkcs11#277, #292; pkcs11-provider#121",
       // Every check that signs with "one key of each type" verifies an EC signature too.
       {"EcdsaSign.HashLongerThanCurve", "EcdsaSign.HashShorterThanCurve", "EcdsaSign.RawSignatureIsTwiceOrderLength", "EcdsaSign.RepeatedSignaturesAllVerify", "Fork.ChildFinalizeLeavesParentWorking", "Fork.ChildReinitializesAndSigns", "Init.InitArgsReservedNonNullAccepted", "Init.ReinitializeAfterFinalizeWorks", "Login.OneLoginServesManySignaturesAndSessions", "Session.ReadWriteSessionCanSign", "SignProtocol.BufferTooSmallKeepsOperation", "SignProtocol.FailedGetOperationStateKeepsOperation", "SignProtocol.NullBufferReturnsLengthAndKeepsOperation", "SignProtocol.SignInitWhileActiveIsOperationActive", "Threads.ConcurrentSigningWithOsLocking"},
       {"EcdsaSign.HashLongerThanCurve", "EcdsaSign.HashShorterThanCurve", "EcdsaSign.RawSignatureIsTwiceOrderLength", "EcdsaSign.RepeatedSignaturesAllVerify", "Fork.ChildFinalizeLeavesParentWorking", "Fork.ChildReinitializesAndSigns", "Handles.RefindByIdAfterLastSessionCloses", "Handles.RefindByIdAfterLogout", "HsmSessions.ManyThreadsManySessions", "HsmSessions.ReLoginAfterLogout", "Init.InitArgsReservedNonNullAccepted", "Init.ReinitializeAfterFinalizeWorks", "KeyGen.EcP256", "KeyGen.EcP384", "KeyGen.EcP521", "Login.OneLoginServesManySignaturesAndSessions", "Session.ReadWriteSessionCanSign", "SignProtocol.BufferTooSmallKeepsOperation", "SignProtocol.FailedGetOperationStateKeepsOperation", "SignProtocol.NullBufferReturnsLengthAndKeepsOperation", "SignProtocol.SignInitWhileActiveIsOperationActive", "Threads.ConcurrentSigningWithOsLocking"}},
      {Defect::kLengthQueryEndsOperation,
       "length-query-ends-operation",
       "C_Sign/C_SignFinal with pSignature == NULL report the length but end the operation, so "
       "the following call gets CKR_OPERATION_NOT_INITIALIZED",
       "F7: OpenSC pkcs11-tool test_signature; cryptoauthlib#315; Pkcs11Interop#229",
       {"EcdsaSign.HashLongerThanCurve", "EcdsaSign.HashShorterThanCurve", "EcdsaSign.RawSignatureIsTwiceOrderLength", "EcdsaSign.RepeatedSignaturesAllVerify", "Fork.ChildFinalizeLeavesParentWorking", "Fork.ChildReinitializesAndSigns", "Fork.DuringMultipartOperation", "Init.InitArgsReservedNonNullAccepted", "Init.ReinitializeAfterFinalizeWorks", "Login.OneLoginServesManySignaturesAndSessions", "RsaPss.HashAndSign", "RsaPss.MultipartVerifies", "RsaPss.RawPssOverDigest", "RsaSign.HashAndSign", "RsaSign.MultipartMatchesSinglePart", "RsaSign.RawPkcsOverDigestInfo", "Session.ReadWriteSessionCanSign", "SignProtocol.NullBufferReturnsLengthAndKeepsOperation", "SignProtocol.SignFinalLengthQueryKeepsOperation", "SignProtocol.SuccessEndsOperation", "Threads.ConcurrentSigningWithOsLocking"},
       {"EcdsaSign.HashLongerThanCurve", "EcdsaSign.HashShorterThanCurve", "EcdsaSign.RawSignatureIsTwiceOrderLength", "EcdsaSign.RepeatedSignaturesAllVerify", "Fork.ChildFinalizeLeavesParentWorking", "Fork.ChildReinitializesAndSigns", "Fork.DuringMultipartOperation", "Handles.RefindByIdAfterLastSessionCloses", "Handles.RefindByIdAfterLogout", "HsmSessions.ManyThreadsManySessions", "HsmSessions.ReLoginAfterLogout", "Init.InitArgsReservedNonNullAccepted", "Init.ReinitializeAfterFinalizeWorks", "KeyGen.EcP256", "KeyGen.EcP384", "KeyGen.EcP521", "KeyGen.Rsa2048", "KeyGen.Rsa3072", "KeyGen.Rsa4096", "Login.OneLoginServesManySignaturesAndSessions", "RsaPss.HashAndSign", "RsaPss.MultipartVerifies", "RsaPss.RawPssOverDigest", "RsaSign.HashAndSign", "RsaSign.MultipartMatchesSinglePart", "RsaSign.RawPkcsOverDigestInfo", "Session.ReadWriteSessionCanSign", "SignProtocol.NullBufferReturnsLengthAndKeepsOperation", "SignProtocol.SignFinalLengthQueryKeepsOperation", "SignProtocol.SuccessEndsOperation", "Threads.ConcurrentSigningWithOsLocking"}},
      {Defect::kBufferTooSmallReturnsOk,
       "buffer-too-small-returns-ok",
       "a too-small output buffer (C_Sign, C_SignFinal, C_GetAttributeValue) gets CKR_OK and "
       "truncated data instead of CKR_BUFFER_TOO_SMALL",
       "F7, F23: FreeRTOS corePKCS11#170; jacknji11#59",
       {"Attributes.BufferTooSmallOthersFilled", "Attributes.MixedTemplateProcessesEveryAttribute",
        "SignProtocol.BufferTooSmallKeepsOperation",
        "SignProtocol.SignFinalLengthQueryKeepsOperation"},
       {"Attributes.BufferTooSmallOthersFilled", "Attributes.MixedTemplateProcessesEveryAttribute",
        "SignProtocol.BufferTooSmallKeepsOperation",
        "SignProtocol.SignFinalLengthQueryKeepsOperation"}},
      {Defect::kSignErrorLeavesOperationActive,
       "sign-error-leaves-operation-active",
       "after C_Sign fails with anything but CKR_BUFFER_TOO_SMALL the session stays stuck: the "
       "next C_SignInit returns CKR_OPERATION_ACTIVE until the session is closed",
       "F8: OpenSC/libp11#178; kms-integrations#38; JDK-8258833",
       {"SignProtocol.ErrorEndsOperation", "SignProtocol.SuccessEndsOperation"},
       {"SignProtocol.ErrorEndsOperation", "SignProtocol.SuccessEndsOperation"}},
      {Defect::kCertIdMismatch,
       "cert-id-mismatch",
       "certificate objects report a CKA_ID that differs (last byte) from their key's; searches "
       "by CKA_ID are consistent with that",
       "F4: kms-integrations#2; tpm2-pkcs11#156, #340; jsign#179",
       {"Objects.IdReadBackPairsKeyAndCertificate", "Objects.PrivateKeyHasCertificateWithSameId", "Objects.PublicKeyMatchesCertificate"},
       {}},
      {Defect::kNoPublicKeyObjects,
       "no-public-key-objects",
       "C_FindObjects never returns CKO_PUBLIC_KEY objects",
       "F5: crypto11#77; cosign#3977",
       {"Objects.IdReadBackPairsKeyAndCertificate", "Objects.PrivateKeyHasPublicKeyWithSameId", "Objects.PublicKeyMatchesCertificate"},
       {"Objects.IdReadBackPairsKeyAndCertificate", "Objects.PrivateKeyHasPublicKeyWithSameId", "Objects.PublicKeyMatchesCertificate"}},
      {Defect::kPrivateKeyLacksPublicComponents,
       "private-key-lacks-public-components",
       "private keys answer CKR_ATTRIBUTE_TYPE_INVALID for CKA_MODULUS, CKA_PUBLIC_EXPONENT, "
       "CKA_EC_PARAMS and CKA_EC_POINT",
       "F3: tpm2-pkcs11#203, #347; Mastercard/pkcs11-tools#100",
       {"Objects.EcPointIsDerOctetString"},
       {"Objects.EcPointIsDerOctetString"}},
      {Defect::kEcPointNotDerWrapped,
       "ec-point-not-der-wrapped",
       "CKA_EC_POINT is the raw X9.62 point instead of a DER OCTET STRING wrapping it",
       "F2: opencryptoki#634; OpenSC#1286; pkcs11-provider#478",
       {"Objects.EcPointIsDerOctetString", "Objects.PublicKeyMatchesCertificate"},
       {"KeyGen.EcP256", "KeyGen.EcP384", "KeyGen.EcP521", "Objects.EcPointIsDerOctetString",
        "Objects.PublicKeyMatchesCertificate"}},
      {Defect::kUnpaddedTokenLabel,
       "unpadded-token-label",
       "CK_TOKEN_INFO.label is NUL-padded instead of space-padded",
       "F20: OpenSC#1922, #1541; Pkcs11Interop#39; pkcs11-provider#119",
       {"Info.TokenInfoIsSpacePadded"},
       {"Info.TokenInfoIsSpacePadded"}},
      {Defect::kNullArgCrash,
       "null-arg-crash",
       "NULL output or template arguments (C_GetSlotList(NULL count), C_GetInfo(NULL), "
       "C_GetTokenInfo(NULL), C_OpenSession(NULL handle), C_GetAttributeValue(NULL template), "
       "C_FindObjectsInit(NULL, n), C_FindObjects(NULL count), C_Sign(NULL length), "
       "C_GenerateRandom(NULL)) crash the process with SIGSEGV instead of CKR_ARGUMENTS_BAD",
       "F32: SoftHSMv2#706; pkcs11test *Fail* tests",
       {"Errors.NullArgumentSweep"},
       {"Errors.NullArgumentSweep"}},
      {Defect::kSensitiveAttributeReturnsValue,
       "sensitive-attribute-returns-value",
       "CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2 and CKA_COEFFICIENT of a "
       "sensitive key return 32 bytes and CKR_OK instead of CKR_ATTRIBUTE_SENSITIVE",
       "pkcs11test TookanAttackA3/A4; F23",
       {"Attributes.MixedTemplateProcessesEveryAttribute", "Attributes.SensitiveValueIsAttributeSensitive", "Attributes.SensitiveValueIsUnavailable"},
       {"Attributes.MixedTemplateProcessesEveryAttribute", "Attributes.SensitiveValueIsAttributeSensitive", "Attributes.SensitiveValueIsUnavailable", "KeyGen.EcP256", "KeyGen.EcP384", "KeyGen.EcP521", "KeyGen.Rsa2048", "KeyGen.Rsa3072", "KeyGen.Rsa4096"}},
      {Defect::kUlValueLenNotUnavailable,
       "ulValueLen-not-unavailable",
       "C_GetAttributeValue leaves ulValueLen = 0 instead of CK_UNAVAILABLE_INFORMATION for "
       "attributes it cannot return (invalid type, sensitive, buffer too small)",
       "F23: kryoptic#435; native-pkcs11#307; python-pkcs11#207",
       {"Attributes.BufferTooSmallOthersFilled", "Attributes.InvalidTypeIsUnavailableOthersFilled",
        "Attributes.MixedTemplateProcessesEveryAttribute",
        "Attributes.SensitiveValueIsUnavailable"},
       {"Attributes.BufferTooSmallOthersFilled", "Attributes.InvalidTypeIsUnavailableOthersFilled",
        "Attributes.MixedTemplateProcessesEveryAttribute", "Attributes.SensitiveValueIsUnavailable",
        "KeyGen.EcP256", "KeyGen.EcP384", "KeyGen.EcP521", "KeyGen.Rsa2048", "KeyGen.Rsa3072",
        "KeyGen.Rsa4096"}},
      {Defect::kRsaPkcsIgnoresDigestInfo,
       "rsa-pkcs-ignores-digestinfo",
       "CKM_RSA_PKCS over a DigestInfo signs only the hash inside it (the DigestInfo prefix is "
       "dropped), so the signature does not verify as RSASSA-PKCS1-v1_5",
       "F11: aws-kms-pkcs11#9, #21; gnupg-pkcs11-scd#45",
       // SignProtocol.ErrorEndsOperation signs CKM_RSA_PKCS over a DigestInfo after the error.
       {"RsaSign.RawPkcsOverDigestInfo", "SignProtocol.ErrorEndsOperation"},
       {"RsaSign.RawPkcsOverDigestInfo", "SignProtocol.ErrorEndsOperation"}},
      {Defect::kPssIgnoresSaltParams,
       "pss-ignores-salt-params",
       "RSA-PSS mechanisms ignore CK_RSA_PKCS_PSS_PARAMS.sLen and sign with salt length 0 (or 20 "
       "when 0 was asked for)",
       "F12: OpenSC#2474; kmsp11 rsassa_pss.cc",
       {"RsaPss.HashAndSign", "RsaPss.MultipartVerifies", "RsaPss.RawPssOverDigest"},
       {"RsaPss.HashAndSign", "RsaPss.MultipartVerifies", "RsaPss.RawPssOverDigest"}},
      {Defect::kMechanismListDuplicates,
       "mechanism-list-duplicates",
       "C_GetMechanismList lists its first mechanism twice",
       "F31: kmsp11 provider.h; pkcs11test EnumerateMechanisms",
       {"Mechanisms.NoDuplicates"},
       {"Mechanisms.NoDuplicates"}},
      {Defect::kForkUnsafe,
       "fork-unsafe",
       "in a forked child every call (C_Initialize included) returns CKR_DEVICE_ERROR: the "
       "child inherits state it cannot use and cannot start over",
       "F16: OpenSC#510, #1507; pkcs11-helper#5; libp11#39",
       // The checks whose probes run in a forked child that must initialise the module again.
       {"Errors.NullArgumentSweep", "Fork.ChildReinitializesAndSigns", "Info.TokenIdentityStableAcrossProcesses", "Init.FinalizeReservedNonNullIsArgumentsBad"},
       {"Errors.NullArgumentSweep", "Fork.ChildReinitializesAndSigns", "Info.TokenIdentityStableAcrossProcesses", "Init.FinalizeReservedNonNullIsArgumentsBad"}},
      {Defect::kThreadUnsafe,
       "thread-unsafe",
       "C_SignInit/C_Sign fail with CKR_DEVICE_ERROR when another thread is inside them at the "
       "same time (each call takes 2 ms, as a module without locking would corrupt state)",
       "F15: SoftHSMv2#688; libp11#91; nethsm-pkcs11#325",
       {"Threads.ConcurrentSigningWithOsLocking"},
       {"HsmSessions.ManyThreadsManySessions", "Threads.ConcurrentSigningWithOsLocking"}},
      // Defects found by reading what real callers do (interop-failures.md F33-F50).
      {Defect::kReservedInitArgsRejected,
       "reserved-init-args-rejected",
       "C_Initialize answers CKR_ARGUMENTS_BAD when CK_C_INITIALIZE_ARGS.pReserved is not NULL "
       "(the letter of the spec; p11-kit and NSS put parameters there)",
       "F49: libsignumpkcs11.so before this check; p11-kit 'module failed to initialize'",
       {"Init.InitArgsReservedNonNullAccepted"},
       {"Init.InitArgsReservedNonNullAccepted"}},
      {Defect::kTokenSerialPerProcess,
       "token-serial-per-process",
       "CK_TOKEN_INFO.serialNumber is derived from the process ID, so every process sees another "
       "token",
       "F48: alonbl/gnupg-pkcs11-scd#68",
       {"Info.TokenIdentityStableAcrossProcesses"},
       {"Info.TokenIdentityStableAcrossProcesses"}},
      {Defect::kLoginBoundToItsSession,
       "login-bound-to-its-session",
       "closing the session that called C_Login logs the token out, though other sessions are "
       "still open",
       "F33: ebourg/jsign#230, Yubico/yubico-piv-tool#392",
       {"Login.OneLoginServesManySignaturesAndSessions"},
       {"Login.OneLoginServesManySignaturesAndSessions"}},
      {Defect::kCertIdReadBackDiffers,
       "cert-id-read-back-differs",
       "a certificate's CKA_ID reads back as the hex text of its label, while searches by CKA_ID "
       "still match the key's CKA_ID",
       "F34: tpm2-software/tpm2-pkcs11#340",
       {"Objects.IdReadBackPairsKeyAndCertificate"},
       {"Objects.IdReadBackPairsKeyAndCertificate"}},
      {Defect::kSensitiveAttributeTypeInvalid,
       "sensitive-attribute-type-invalid",
       "a sensitive private value answers CKR_ATTRIBUTE_TYPE_INVALID instead of "
       "CKR_ATTRIBUTE_SENSITIVE (still never returned)",
       "F50: tpm2-pkcs11 1.9",
       {"Attributes.SensitiveValueIsAttributeSensitive"},
       {"Attributes.SensitiveValueIsAttributeSensitive"}},
      {Defect::kAlwaysAuthenticateTypeInvalid,
       "always-authenticate-type-invalid",
       "private keys answer CKR_ATTRIBUTE_TYPE_INVALID for CKA_ALWAYS_AUTHENTICATE",
       "F44: OpenSC/libp11#160, #272; latchset/pkcs11-provider#238",
       {"Attributes.AlwaysAuthenticateReadable"},
       {"Attributes.AlwaysAuthenticateReadable"}},
      {Defect::kSubjectSearchFindsNothing,
       "subject-search-finds-nothing",
       "C_FindObjects finds nothing when the template holds CKA_SUBJECT",
       "F36: GoogleCloudPlatform/kms-integrations#34",
       // The demo HSM token keeps only leaf certificates, so the check skips on it in both
       // profiles: nothing here can see the defect. Through Signum (chain on the token) the check
       // runs and passes.
       {},
       {}},
      {Defect::kOperationStateEndsSign,
       "operation-state-ends-sign",
       "C_GetOperationState answers CKR_STATE_UNSAVEABLE and ends the session's active signing "
       "operation",
       "F41: mtrojnar/osslsigncode#468, latchset/pkcs11-provider#493",
       {"SignProtocol.FailedGetOperationStateKeepsOperation"},
       {"SignProtocol.FailedGetOperationStateKeepsOperation"}},
      {Defect::kSoLoginChecksPinFirst,
       "so-login-checks-pin-first",
       "C_Login(CKU_SO) checks the PIN before the sessions: CKR_PIN_INCORRECT even with a "
       "read-only session open",
       "PKCS#11 2.40 5.6.8; google/pkcs11test",
       // The hsm profile does not run the check (it would spend an SO PIN retry on an HSM).
       {"Login.SoLoginWithReadOnlySessionIsReadOnlyExists"},
       {}},
      {Defect::kPinFlagsNeverSet,
       "pin-flags-never-set",
       "CK_TOKEN_INFO.flags never carry CKF_USER_PIN_COUNT_LOW, FINAL_TRY or LOCKED, whatever "
       "PINs were tried",
       "google/pkcs11test; GnuTLS 'final try' warning",
       {"Login.WrongPinSetsCountLowFlag"},
       {"Login.WrongPinSetsCountLowFlag"}},
      {Defect::kPssSignDataInvalid,
       "pss-sign-data-invalid",
       "lists CKM_RSA_PKCS_PSS and the CKM_SHA*_RSA_PKCS_PSS mechanisms and accepts them at "
       "C_SignInit, but C_Sign/C_SignFinal with any of them answer CKR_DATA_INVALID (and end the "
       "operation)",
       "openCryptoki soft token (opencryptoki/opencryptoki: CKM_RSA_PKCS_PSS, "
       "CKM_SHA224_RSA_PKCS_PSS -> CKR_DATA_INVALID at C_Sign)",
       {"RsaPss.HashAndSign", "RsaPss.MultipartVerifies", "RsaPss.RawPssOverDigest"},
       {"RsaPss.HashAndSign", "RsaPss.MultipartVerifies", "RsaPss.RawPssOverDigest"}},
  };
  return catalogue;
}

const DefectInfo* FindDefect(std::string_view name) {
  static const DefectInfo none{
      Defect::kNone, "none", "no defect: every call is forwarded", "", {}, {}};
  if (name.empty() || name == "none") return &none;
  for (const DefectInfo& info : DefectCatalogue())
    if (info.name == name) return &info;
  return nullptr;
}

}  // namespace signum::conformance
