#include "grades.h"

namespace signum::conformance {

std::string_view LevelName(Level level) { return level == Level::kRequired ? "required" : "spec"; }

namespace {
constexpr Level R = Level::kRequired;
constexpr Level S = Level::kSpec;
}  // namespace

// Callers are named as users know them; "Signum server" is our own server's use of an HSM (the
// hsm profile's reason to exist). Threads: owner/repo#N, F-numbers from
// ../shared/research/conformance-anchors.md (F1-F32) and interop-failures.md (F33-F58).
const std::vector<CheckGrade>& CheckGrades() {
  static const std::vector<CheckGrade> grades = {
      // Info
      {"Info.LibraryInfoIsSpacePadded", R,
       "p11-kit (library-description/-manufacturer URI matching, list-modules), pkcs11-tool -I",
       "F20"},
      {"Info.SlotListTwoCallProtocol", R,
       "every host: p11-kit, NSS, SunPKCS11, libp11, pkcs11-provider, crypto11", ""},
      {"Info.SlotInfoIsSpacePadded", S, "p11-kit slot-description URIs, pkcs11-tool -L", ""},
      {"Info.TokenInfoIsSpacePadded", R,
       "p11-kit/GnuTLS and pkcs11-provider token= URI matching, NSS token names",
       "F20: OpenSC#1922, latchset/pkcs11-provider#119"},
      {"Info.TokenInfoWithoutSlotList", R, "cosign pkcs11-tool list-keys-uris (crypto11)",
       "F19, F38: sigstore/cosign#4768"},
      {"Info.TokenIdentityStableAcrossProcesses", R,
       "gnupg-pkcs11-scd (card serial from manufacturer, model, serial, label), NSS and p11-kit "
       "token URIs saved in configuration",
       "F48: alonbl/gnupg-pkcs11-scd#68"},
      // Interface
      {"Interface.GetFunctionListIsStable", R,
       "p11-kit (deduplicates modules by their function list), NSS", ""},
      {"Interface.FunctionListHasEveryFunction", R,
       "NSS and p11-kit-proxy call entries without NULL checks (a NULL entry is a crash)", ""},
      {"Interface.GetFunctionListNullIsArgumentsBad", S, "none known", "p11-kit client module"},
      {"Interface.GetInterfaceListTwoCallProtocol", S, "p11-kit 0.25 (3.0 interfaces)", ""},
      {"Interface.GetInterfaceReturnsVersion3", R,
       "OpenSSL pkcs11-provider (C_GetInterface for the 3.0 list), p11-kit", ""},
      // Init
      {"Init.CallsBeforeInitializeAreNotInitialized", S, "none known", ""},
      {"Init.DoubleInitializeIsAlreadyInitialized", R,
       "libp11 and pkcs11-provider in one process, p11-kit with a module loaded twice (both treat "
       "CKR_CRYPTOKI_ALREADY_INITIALIZED as success)",
       ""},
      {"Init.DoubleFinalizeIsNotInitialized", S, "none known", ""},
      {"Init.FinalizeReservedNonNullIsArgumentsBad", S, "none known", ""},
      {"Init.InitArgsReservedNonNullAccepted", R,
       "p11-kit and every p11-kit-proxy program (GnuTLS p11tool/certtool), NSS modutil/certutil "
       "(module parameters), SunPKCS11",
       "F49"},
      {"Init.InitArgsPartialMutexCallbacksIsArgumentsBad", S, "none known", ""},
      {"Init.InitArgsNoFlagsNoCallbacksSucceeds", S, "single-threaded hosts", ""},
      {"Init.InitArgsOsLockingSucceeds", R,
       "p11-kit, libp11, pkcs11-provider, SunPKCS11, crypto11 (all pass CKF_OS_LOCKING_OK)", ""},
      {"Init.ReinitializeAfterFinalizeWorks", R,
       "crypto11/cosign and SunPKCS11 reloading a provider, p11-kit module reload", "F16"},
      // Threads
      {"Threads.ConcurrentSigningWithOsLocking", R,
       "crypto11/cosign (goroutines), SunPKCS11 (jarsigner, Java servers), Signum server",
       "F15: softhsm/SoftHSMv2#688, OpenSC/libp11#91"},
      {"Threads.ConcurrentSigningAfterNullInit", S,
       "hosts that call C_Initialize(NULL) and then use threads (the spec lets the module assume one "
       "thread)",
       "softhsm/SoftHSMv2#688"},
      // Session
      {"Session.ReadOnlySessionInfo", S, "pkcs11-tool -I", ""},
      {"Session.ReadWriteSessionInfo", R, "crypto11/cosign (opens CKF_RW_SESSION), pkcs11-tool",
       "F18, F37: sigstore/cosign#2685"},
      {"Session.SerialFlagRequired", S, "none known", ""},
      {"Session.ClosedSessionHandleIsInvalid", S, "none known", ""},
      {"Session.CloseAllSessionsInvalidatesEveryHandle", S, "none known", ""},
      {"Session.ReadWriteSessionCanSign", R, "crypto11/cosign, pkcs11-tool --sign",
       "F37: sigstore/cosign#2685"},
      // Login
      {"Login.WrongPinIsPinIncorrect", R,
       "NSS, GnuTLS and gnupg-pkcs11-scd ask again only on CKR_PIN_INCORRECT", ""},
      {"Login.StateIsSharedAcrossSessions", R,
       "SunPKCS11 (logs in once, signs from a session pool), crypto11/cosign", ""},
      {"Login.SecondLoginIsAlreadyLoggedIn", R,
       "libp11 and pkcs11-provider treat CKR_USER_ALREADY_LOGGED_IN as success",
       "F33: Yubico/yubico-piv-tool#392"},
      {"Login.LogoutEndsUserStateAndSecondLogoutFails", S, "none known", ""},
      {"Login.PrivateKeysHiddenBeforeLogin", S, "NSS (decides to log in from CKF_LOGIN_REQUIRED)",
       ""},
      {"Login.InvalidUserTypeRejected", S, "none known", ""},
      {"Login.OneLoginServesManySignaturesAndSessions", R,
       "jsign (one login, many signatures), SunPKCS11 session pool, osslsigncode via libp11",
       "F33: ebourg/jsign#230, Yubico/yubico-piv-tool#392"},
      {"Login.WrongPinSetsCountLowFlag", S,
       "GnuTLS/p11-kit and pkcs11-tool read CKF_USER_PIN_COUNT_LOW/FINAL_TRY to warn before a "
       "lockout",
       "google/pkcs11test"},
      {"Login.SoLoginWithReadOnlySessionIsReadOnlyExists", S,
       "pkcs11-tool --init-pin/--login-type so", "google/pkcs11test"},
      // Objects
      {"Objects.PrivateKeyHasCertificateWithSameId", R,
       "SunPKCS11 (jarsigner, keytool), gnupg-pkcs11-scd, jsign, libp11",
       "F4: ebourg/jsign#179, tpm2-software/tpm2-pkcs11#340"},
      {"Objects.PrivateKeyHasPublicKeyWithSameId", R, "crypto11/cosign FindKeyPair",
       "F5, F39: ThalesIgnite/crypto11#77, sigstore/cosign#3977"},
      {"Objects.KeyObjectsShareLabel", R, "crypto11/cosign (key by label), pkcs11: URIs object=",
       "F21, F39: Mastercard/pkcs11-tools#100"},
      {"Objects.PrivateKeyCarriesPublicComponents", R,
       "SunPKCS11 (key size from the private key), libp11, pkcs11-provider",
       "F3: tpm2-software/tpm2-pkcs11#203"},
      {"Objects.PublicKeyMatchesCertificate", R, "jsign (post-sign check), SunPKCS11",
       "F35: ebourg/jsign#225"},
      {"Objects.EcPointIsDerOctetString", R, "OpenSSL pkcs11-provider, libp11, OpenSC",
       "F2: opencryptoki#634, OpenSC#1286"},
      {"Objects.CertificateAttributesMatchValue", R,
       "SunPKCS11 (chain by CKA_SUBJECT), NSS (certificates by CKA_ISSUER + CKA_SERIAL_NUMBER)",
       "F36"},
      {"Objects.AuthorityCertificatesPresent", R, "jarsigner via SunPKCS11 (chain from the token)",
       "F6, F36: GoogleCloudPlatform/kms-integrations#34"},
      {"Objects.PrivateKeysAreSensitive", R, "Signum server (keys never leave the HSM)", ""},
      {"Objects.IdReadBackPairsKeyAndCertificate", R,
       "SunPKCS11 and gnupg-pkcs11-scd (read CKA_ID of every key and certificate and pair equal "
       "values)",
       "F34: tpm2-software/tpm2-pkcs11#340, ebourg/jsign#179, alonbl/gnupg-pkcs11-scd#46"},
      {"Objects.ChainWalkBySubjectSearch", R,
       "SunPKCS11/jarsigner (walks issuer to subject with C_FindObjects by CKA_SUBJECT)",
       "F36: GoogleCloudPlatform/kms-integrations#34"},
      // Find
      {"Find.ByClassReturnsOnlyThatClass", R, "every host", ""},
      {"Find.ByIdReturnsKeyTrio", R, "SunPKCS11, libp11 and pkcs11-provider (pkcs11: URI id=)",
       ""},
      {"Find.ByLabelReturnsKeyTrio", R, "crypto11/cosign, pkcs11: URIs object=", "F21"},
      {"Find.SignTrueReturnsPrivateKeys", S, "none known", ""},
      {"Find.TokenTrueMatchesEmptyTemplate", R, "NSS (adds CKA_TOKEN=TRUE to its searches)", ""},
      {"Find.NssVendorClassesMatchNothing", R, "NSS certutil/modutil (searches trust objects)",
       ""},
      {"Find.MaxOneLoopMatchesBulk", R, "libp11 and SunPKCS11 (C_FindObjects one at a time)", ""},
      {"Find.FindObjectsWithoutInitIsNotInitialized", S, "none known", ""},
      {"Find.FindInitWhileActiveIsOperationActive", S, "none known", ""},
      // Attributes
      {"Attributes.NullValueReturnsExactLength", R, "every host (two-call attribute reads)", ""},
      {"Attributes.SensitiveValueIsUnavailable", R,
       "Signum server and every key custodian: the private value never leaves",
       "F50; pkcs11test TookanAttackA3"},
      {"Attributes.SensitiveValueIsAttributeSensitive", S,
       "none known (tpm2-pkcs11 answers CKR_ATTRIBUTE_TYPE_INVALID and no caller breaks)", "F50"},
      {"Attributes.InvalidTypeIsUnavailableOthersFilled", R,
       "pkcs11-provider and python-pkcs11 use ulValueLen as a length",
       "F23, F46: latchset/kryoptic#435, google/native-pkcs11#307"},
      {"Attributes.BufferTooSmallOthersFilled", S, "none known", "F46: FreeRTOS/corePKCS11#170"},
      {"Attributes.MixedTemplateProcessesEveryAttribute", R,
       "SunPKCS11 (reads several attributes in one template)", "F23"},
      {"Attributes.AlwaysAuthenticateReadable", R,
       "libp11 and pkcs11-provider (read CKA_ALWAYS_AUTHENTICATE before signing)",
       "F44: OpenSC/libp11#160, #272, latchset/pkcs11-provider#238"},
      // Mechanisms
      {"Mechanisms.ListTwoCallProtocol", R, "every host", ""},
      {"Mechanisms.NoDuplicates", S, "none known", "F31"},
      {"Mechanisms.InfoAvailableAndConsistent", R,
       "pkcs11-provider (queries every listed mechanism), SunPKCS11",
       "F43: latchset/pkcs11-provider#168"},
      {"Mechanisms.SigningMechanismsHaveSignFlag", R,
       "SunPKCS11 and pkcs11-provider enable an algorithm only with CKF_SIGN", ""},
      {"Mechanisms.KeySizesWithinAdvertisedRange", R,
       "SunPKCS11 (refuses keys outside ulMin/MaxKeySize)", ""},
      {"Mechanisms.UnadvertisedMechanismRejected", R,
       "pkcs11-provider falls back only on CKR_MECHANISM_INVALID",
       "F43: Yubico/yubico-piv-tool#81"},
      // RsaSign
      {"RsaSign.RawPkcsOverDigestInfo", R,
       "libp11 and pkcs11-provider (OpenSSL RSA), gnupg-pkcs11-scd, SunPKCS11 NONEwithRSA",
       "F11: alonbl/gnupg-pkcs11-scd#45"},
      {"RsaSign.RawPkcsInputTooLongIsDataLenRange", S, "none known", ""},
      {"RsaSign.HashAndSign", R, "SunPKCS11 (SHA256withRSA: jarsigner), pkcs11-tool -m", ""},
      {"RsaSign.MultipartMatchesSinglePart", R, "osslsigncode via pkcs11-provider, SunPKCS11",
       "F10, F45: mtrojnar/osslsigncode#465, OpenSC#3494"},
      // RsaPss
      {"RsaPss.RawPssOverDigest", R, "libp11 and pkcs11-provider (openssl cms/pkeyutl -pss)",
       "F12"},
      {"RsaPss.HashAndSign", R, "SunPKCS11 (RSASSA-PSS in jarsigner)", "F12"},
      {"RsaPss.MultipartVerifies", R, "SunPKCS11", ""},
      {"RsaPss.MismatchedParamsRejectedAtInit", S, "none known", "F12"},
      // EcdsaSign
      {"EcdsaSign.RawSignatureIsTwiceOrderLength", R,
       "every ECDSA caller converts raw r||s to DER",
       "F1, F42: latchset/pkcs11-provider#121, tpm2-software/tpm2-pkcs11#277"},
      {"EcdsaSign.HashLongerThanCurve", R, "OpenSSL (SHA-512 with P-256), jarsigner", ""},
      {"EcdsaSign.HashShorterThanCurve", R, "OpenSSL (SHA-256 with P-384), jarsigner", ""},
      {"EcdsaSign.RepeatedSignaturesAllVerify", R, "gpg, every caller signing twice",
       "softhsm/SoftHSMv2#901"},
      {"EcdsaSign.HashAndSign", R, "SunPKCS11 (SHA256withECDSA)", ""},
      {"EcdsaSign.MultipartVerifies", R, "SunPKCS11", ""},
      // SignProtocol
      {"SignProtocol.NullBufferReturnsLengthAndKeepsOperation", R,
       "libp11, pkcs11-provider, SunPKCS11 (length query, then sign)", "F7"},
      {"SignProtocol.BufferTooSmallKeepsOperation", R, "SunPKCS11, pkcs11-provider", "F7"},
      {"SignProtocol.SuccessEndsOperation", R, "every host (next C_SignInit after a signature)",
       "F8"},
      {"SignProtocol.SignFinalLengthQueryKeepsOperation", R,
       "pkcs11-provider and SunPKCS11 multi-part signing", "F9"},
      {"SignProtocol.SignInitWhileActiveIsOperationActive", S, "none known", ""},
      {"SignProtocol.SignWithoutInitIsNotInitialized", S, "none known", ""},
      {"SignProtocol.ErrorEndsOperation", R, "libp11, SunPKCS11 (retry after an error)",
       "F8: OpenSC/libp11#178, JDK-8258833"},
      {"SignProtocol.FailedGetOperationStateKeepsOperation", R,
       "OpenSSL pkcs11-provider (C_GetOperationState during digest-sign), osslsigncode, Linux "
       "sign-file",
       "F41: mtrojnar/osslsigncode#468, latchset/pkcs11-provider#493"},
      // Errors
      {"Errors.InvalidSlotId", S, "none known", ""},
      {"Errors.InvalidSessionHandle", R,
       "SunPKCS11 and Signum server reopen sessions on CKR_SESSION_HANDLE_INVALID", ""},
      {"Errors.InvalidObjectHandle", R,
       "Signum server finds keys again on CKR_OBJECT_HANDLE_INVALID", ""},
      {"Errors.InvalidKeyHandleAtSignInit", R,
       "Signum server finds keys again on CKR_KEY_HANDLE_INVALID", ""},
      {"Errors.KeyTypeInconsistentAtSignInit", S, "none known", ""},
      {"Errors.PublicKeyCannotSign", S, "none known", ""},
      {"Errors.NullArgumentSweep", S, "none known (robustness)", "F32"},
      // Fork
      {"Fork.ChildReinitializesAndSigns", R,
       "gpg-agent/scdaemon and rpmsign (fork, then use the module), p11-kit",
       "F16: OpenSC#510, OpenSC/libp11#39"},
      {"Fork.ChildFinalizeLeavesParentWorking", R,
       "programs that fork helpers while holding a session (gpg, git, rpmsign)", "F16"},
      {"Fork.DuringMultipartOperation", S, "none known", "F16"},
      // hsm profile
      {"KeyGen.Rsa2048", R, "Signum server (init-demo, key enrolment)", "F50"},
      {"KeyGen.Rsa3072", R, "Signum server (init-demo, key enrolment)", "F50"},
      {"KeyGen.Rsa4096", R, "Signum server (init-demo, key enrolment)", "F50"},
      {"KeyGen.EcP256", R, "Signum server (init-demo, key enrolment)", "F50"},
      {"KeyGen.EcP384", R, "Signum server (init-demo, key enrolment)", "F50"},
      {"KeyGen.EcP521", R, "Signum server (init-demo, key enrolment)", "F50"},
      {"Handles.RefindByIdAfterLastSessionCloses", R, "Signum server (session recovery)", ""},
      {"Handles.RefindByIdAfterLogout", R, "Signum server (re-login recovery)", ""},
      {"HsmSessions.ReLoginAfterLogout", R, "Signum server (re-login recovery)", ""},
      {"HsmSessions.ManyThreadsManySessions", R, "Signum server (session pool)", "F15"},
  };
  return grades;
}

const CheckGrade* FindGrade(std::string_view check) {
  for (const CheckGrade& grade : CheckGrades()) {
    if (grade.check == check) return &grade;
  }
  return nullptr;
}

}  // namespace signum::conformance
