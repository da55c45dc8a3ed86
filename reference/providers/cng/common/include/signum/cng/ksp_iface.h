/* The CNG Key Storage Provider interface: NCRYPT_KEY_STORAGE_FUNCTION_TABLE, the NCrypt*Fn entry
 * point types and GetKeyStorageInterface. mingw-w64 ships ncrypt.h (the application API) but not
 * the CPDK's ncrypt_provider.h, so this is our own rendering of Microsoft's public definitions
 * (Learn "GetKeyStorageInterface function"; the Win32 metadata as published in windows-sys,
 * struct NCRYPT_KEY_STORAGE_FUNCTION_TABLE); see windows-recipes.md section 3.2.
 *
 * The field order is ABI: ncrypt.dll indexes the table. Do not reorder, insert or remove slots.
 * signumksp.dll fills it; the test-only ncrypt router (conformance/cng/router) and the layer (a)
 * suite (conformance/cng/src/ksp_table_test.cc) call through it. Compiles as C and as C++. */
#ifndef SIGNUM_CNG_KSP_IFACE_H_
#define SIGNUM_CNG_KSP_IFACE_H_

#include <windows.h>
/* Blocks of their own: these need windows.h first, so formatting must not reorder them. */
#include <bcrypt.h>
#include <ncrypt.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version 1.0 is the base table; 2.0 gives KeyDerivation a meaning (Windows 8); 3.0 the claim
 * functions (Windows 10). All 29 slots are present in every version. */
typedef SECURITY_STATUS(WINAPI* NCryptOpenProviderFn)(NCRYPT_PROV_HANDLE* phProvider,
                                                      LPCWSTR pszProviderName, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptOpenKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                 NCRYPT_KEY_HANDLE* phKey, LPCWSTR pszKeyName,
                                                 DWORD dwLegacyKeySpec, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptCreatePersistedKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                            NCRYPT_KEY_HANDLE* phKey,
                                                            LPCWSTR pszAlgId, LPCWSTR pszKeyName,
                                                            DWORD dwLegacyKeySpec, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptGetProviderPropertyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                             LPCWSTR pszProperty, PBYTE pbOutput,
                                                             DWORD cbOutput, DWORD* pcbResult,
                                                             DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptGetKeyPropertyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                        NCRYPT_KEY_HANDLE hKey, LPCWSTR pszProperty,
                                                        PBYTE pbOutput, DWORD cbOutput,
                                                        DWORD* pcbResult, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptSetProviderPropertyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                             LPCWSTR pszProperty, PBYTE pbInput,
                                                             DWORD cbInput, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptSetKeyPropertyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                        NCRYPT_KEY_HANDLE hKey, LPCWSTR pszProperty,
                                                        PBYTE pbInput, DWORD cbInput,
                                                        DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptFinalizeKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                     NCRYPT_KEY_HANDLE hKey, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptDeleteKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                   NCRYPT_KEY_HANDLE hKey, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptFreeProviderFn)(NCRYPT_PROV_HANDLE hProvider);
typedef SECURITY_STATUS(WINAPI* NCryptFreeKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                 NCRYPT_KEY_HANDLE hKey);
/* No provider handle: ncrypt routes NCryptFreeBuffer to the provider that allocated the buffer. */
typedef SECURITY_STATUS(WINAPI* NCryptFreeBufferFn)(PVOID pvInput);
typedef SECURITY_STATUS(WINAPI* NCryptEncryptFn)(NCRYPT_PROV_HANDLE hProvider,
                                                 NCRYPT_KEY_HANDLE hKey, PBYTE pbInput,
                                                 DWORD cbInput, VOID* pPaddingInfo, PBYTE pbOutput,
                                                 DWORD cbOutput, DWORD* pcbResult, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptDecryptFn)(NCRYPT_PROV_HANDLE hProvider,
                                                 NCRYPT_KEY_HANDLE hKey, PBYTE pbInput,
                                                 DWORD cbInput, VOID* pPaddingInfo, PBYTE pbOutput,
                                                 DWORD cbOutput, DWORD* pcbResult, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptIsAlgSupportedFn)(NCRYPT_PROV_HANDLE hProvider,
                                                        LPCWSTR pszAlgId, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptEnumAlgorithmsFn)(NCRYPT_PROV_HANDLE hProvider,
                                                        DWORD dwAlgClass, DWORD* pdwAlgCount,
                                                        NCryptAlgorithmName** ppAlgList,
                                                        DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptEnumKeysFn)(NCRYPT_PROV_HANDLE hProvider, LPCWSTR pszScope,
                                                  NCryptKeyName** ppKeyName, PVOID* ppEnumState,
                                                  DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptImportKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                   NCRYPT_KEY_HANDLE hImportKey,
                                                   LPCWSTR pszBlobType,
                                                   NCryptBufferDesc* pParameterList,
                                                   NCRYPT_KEY_HANDLE* phKey, PBYTE pbData,
                                                   DWORD cbData, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptExportKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                   NCRYPT_KEY_HANDLE hKey,
                                                   NCRYPT_KEY_HANDLE hExportKey,
                                                   LPCWSTR pszBlobType,
                                                   NCryptBufferDesc* pParameterList, PBYTE pbOutput,
                                                   DWORD cbOutput, DWORD* pcbResult, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptSignHashFn)(NCRYPT_PROV_HANDLE hProvider,
                                                  NCRYPT_KEY_HANDLE hKey, VOID* pPaddingInfo,
                                                  PBYTE pbHashValue, DWORD cbHashValue,
                                                  PBYTE pbSignature, DWORD cbSignature,
                                                  DWORD* pcbResult, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptVerifySignatureFn)(NCRYPT_PROV_HANDLE hProvider,
                                                         NCRYPT_KEY_HANDLE hKey, VOID* pPaddingInfo,
                                                         PBYTE pbHashValue, DWORD cbHashValue,
                                                         PBYTE pbSignature, DWORD cbSignature,
                                                         DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptPromptUserFn)(NCRYPT_PROV_HANDLE hProvider,
                                                    NCRYPT_KEY_HANDLE hKey, LPCWSTR pszOperation,
                                                    DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptNotifyChangeKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                         HANDLE* phEvent, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptSecretAgreementFn)(NCRYPT_PROV_HANDLE hProvider,
                                                         NCRYPT_KEY_HANDLE hPrivKey,
                                                         NCRYPT_KEY_HANDLE hPubKey,
                                                         NCRYPT_SECRET_HANDLE* phAgreedSecret,
                                                         DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptDeriveKeyFn)(NCRYPT_PROV_HANDLE hProvider,
                                                   NCRYPT_SECRET_HANDLE hSharedSecret,
                                                   LPCWSTR pwszKDF,
                                                   NCryptBufferDesc* pParameterList,
                                                   PBYTE pbDerivedKey, DWORD cbDerivedKey,
                                                   DWORD* pcbResult, ULONG dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptFreeSecretFn)(NCRYPT_PROV_HANDLE hProvider,
                                                    NCRYPT_SECRET_HANDLE hSharedSecret);
typedef SECURITY_STATUS(WINAPI* NCryptKeyDerivationFn)(NCRYPT_PROV_HANDLE hProvider,
                                                       NCRYPT_KEY_HANDLE hKey,
                                                       NCryptBufferDesc* pParameterList,
                                                       PUCHAR pbDerivedKey, DWORD cbDerivedKey,
                                                       DWORD* pcbResult, ULONG dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptCreateClaimFn)(
    NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hSubjectKey, NCRYPT_KEY_HANDLE hAuthorityKey,
    DWORD dwClaimType, NCryptBufferDesc* pParameterList, PBYTE pbClaimBlob, DWORD cbClaimBlob,
    DWORD* pcbResult, DWORD dwFlags);
typedef SECURITY_STATUS(WINAPI* NCryptVerifyClaimFn)(
    NCRYPT_PROV_HANDLE hProvider, NCRYPT_KEY_HANDLE hSubjectKey, NCRYPT_KEY_HANDLE hAuthorityKey,
    DWORD dwClaimType, NCryptBufferDesc* pParameterList, PBYTE pbClaimBlob, DWORD cbClaimBlob,
    NCryptBufferDesc* pOutput, DWORD dwFlags);

typedef struct _NCRYPT_KEY_STORAGE_FUNCTION_TABLE {
  BCRYPT_INTERFACE_VERSION Version;
  NCryptOpenProviderFn OpenProvider;               /*  1 */
  NCryptOpenKeyFn OpenKey;                         /*  2 */
  NCryptCreatePersistedKeyFn CreatePersistedKey;   /*  3 */
  NCryptGetProviderPropertyFn GetProviderProperty; /*  4 */
  NCryptGetKeyPropertyFn GetKeyProperty;           /*  5 */
  NCryptSetProviderPropertyFn SetProviderProperty; /*  6 */
  NCryptSetKeyPropertyFn SetKeyProperty;           /*  7 */
  NCryptFinalizeKeyFn FinalizeKey;                 /*  8 */
  NCryptDeleteKeyFn DeleteKey;                     /*  9 */
  NCryptFreeProviderFn FreeProvider;               /* 10 */
  NCryptFreeKeyFn FreeKey;                         /* 11 */
  NCryptFreeBufferFn FreeBuffer;                   /* 12 */
  NCryptEncryptFn Encrypt;                         /* 13 */
  NCryptDecryptFn Decrypt;                         /* 14 */
  NCryptIsAlgSupportedFn IsAlgSupported;           /* 15 */
  NCryptEnumAlgorithmsFn EnumAlgorithms;           /* 16 */
  NCryptEnumKeysFn EnumKeys;                       /* 17 */
  NCryptImportKeyFn ImportKey;                     /* 18 */
  NCryptExportKeyFn ExportKey;                     /* 19 */
  NCryptSignHashFn SignHash;                       /* 20 */
  NCryptVerifySignatureFn VerifySignature;         /* 21 */
  NCryptPromptUserFn PromptUser;                   /* 22 */
  NCryptNotifyChangeKeyFn NotifyChangeKey;         /* 23 */
  NCryptSecretAgreementFn SecretAgreement;         /* 24 */
  NCryptDeriveKeyFn DeriveKey;                     /* 25 */
  NCryptFreeSecretFn FreeSecret;                   /* 26 */
  NCryptKeyDerivationFn KeyDerivation;             /* 27, version 2 */
  NCryptCreateClaimFn CreateClaim;                 /* 28, version 3 */
  NCryptVerifyClaimFn VerifyClaim;                 /* 29, version 3 */
} NCRYPT_KEY_STORAGE_FUNCTION_TABLE;

/* The one export of a KSP DLL (undecorated; on x86 the .def file strips the @12). ncrypt.dll
 * finds it with GetProcAddress(SIGNUM_KSP_ENTRY_POINT_NAME); no SDK header declares it for
 * callers. Learn documents HRESULT, the CPDK header NTSTATUS: both are a LONG, 0 = success. */
#define SIGNUM_KSP_ENTRY_POINT_NAME "GetKeyStorageInterface"
typedef NTSTATUS(WINAPI* GetKeyStorageInterfaceFn)(
    LPCWSTR pszProviderName, NCRYPT_KEY_STORAGE_FUNCTION_TABLE** ppFunctionTable, DWORD dwFlags);

/* ABI checks: a 4-byte Version padded to pointer alignment, then 29 pointer slots, on x64 (240
 * bytes) and x86 (120 bytes). */
#ifdef __cplusplus
#define SIGNUM_KSP_STATIC_ASSERT static_assert
#else
#define SIGNUM_KSP_STATIC_ASSERT _Static_assert
#endif
SIGNUM_KSP_STATIC_ASSERT(sizeof(BCRYPT_INTERFACE_VERSION) == 4, "Version is two USHORTs");
SIGNUM_KSP_STATIC_ASSERT(sizeof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE) == 30 * sizeof(void*),
                         "Version + 29 function pointers");
SIGNUM_KSP_STATIC_ASSERT(offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, OpenProvider) == sizeof(void*),
                         "slot 1 follows the padded Version");
SIGNUM_KSP_STATIC_ASSERT(offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, FreeBuffer) ==
                             12 * sizeof(void*),
                         "slot 12");
SIGNUM_KSP_STATIC_ASSERT(offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, SignHash) ==
                             20 * sizeof(void*),
                         "slot 20");
SIGNUM_KSP_STATIC_ASSERT(offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, KeyDerivation) ==
                             27 * sizeof(void*),
                         "slot 27");
SIGNUM_KSP_STATIC_ASSERT(offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, VerifyClaim) ==
                             29 * sizeof(void*),
                         "slot 29");
#if defined(_WIN64)
SIGNUM_KSP_STATIC_ASSERT(sizeof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE) == 240, "x64 size");
#else
SIGNUM_KSP_STATIC_ASSERT(sizeof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE) == 120, "x86 size");
#endif
#undef SIGNUM_KSP_STATIC_ASSERT

#ifdef __cplusplus
}
#endif

#endif /* SIGNUM_CNG_KSP_IFACE_H_ */
