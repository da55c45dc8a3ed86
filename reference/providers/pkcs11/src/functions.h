// The one list of PKCS#11 functions. Everything that must agree on the set of C_* functions and
// their arguments is generated from it:
//   - the exported extern "C" shims (exports.cc),
//   - CK_FUNCTION_LIST (2.40) and CK_FUNCTION_LIST_3_0 for C_GetFunctionList / C_GetInterface,
//   - the bridge declarations, and stubs for the functions Signum does not offer (bridge.h/.cc),
//   - the call traces: every argument recorded by its kind, as text (trace.h) and as trace format
//     v1 (../record/trace_v1.h, shared with the recorder).
// The linker version script exports C_* and nothing else; tests check the .so against this list.
//
// SIGNUM_PKCS11_FUNCTIONS(X) calls X(Name, Since, Support, Args) per function, in the order of
// the OASIS pkcs11f.h:
//   Name     the function without "C_" (bridge::Sign implements C_Sign)
//   Since    V2: in CK_FUNCTION_LIST (2.40) and CK_FUNCTION_LIST_3_0; V3: 3.0 only
//   Support  IMPL: bridge.cc implements it; STUB: CKR_FUNCTION_NOT_SUPPORTED once initialised
//   Args     a Boost.Preprocessor sequence of (KIND, type, name [, type, name ...]) tuples; KIND
//            says how the traces record the argument(s) (trace.h and trace_v1.h have one In_/Out_
//            pair per KIND):
//              HANDLE  session/object handle (hex)        SLOT   slot ID        ULONG  a count
//              FLAGS   CK_FLAGS (hex)                      USER   CK_USER_TYPE   BOOL   CK_BBOOL
//              PTR     opaque pointer                      INIT_ARGS CK_C_INITIALIZE_ARGS
//              MECHANISM CK_MECHANISM_PTR                  VERSION CK_VERSION_PTR
//              INTERFACE_NAME NUL-terminated UTF-8         LABEL  32-byte padded label
//              BYTES   input buffer + length               SECRET PIN + length (never printed)
//              TEMPLATE input attribute template + count   OUT_TEMPLATE template filled by the call
//              OUT_BYTES output buffer + in/out length     OUT_RANDOM output buffer + length
//              OUT_ULONG / OUT_HANDLE / OUT_SLOT  written CK_ULONG
//              OUT_INFO  written CK_*_INFO struct          OUT_FUNCTION_LIST / OUT_INTERFACE
//              OUT_SLOTS / OUT_MECHANISMS / OUT_INTERFACES  array + in/out count
//              OUT_HANDLES object handle array + max + written count
#pragma once

#include <boost/preprocessor/cat.hpp>
#include <boost/preprocessor/punctuation/comma_if.hpp>
#include <boost/preprocessor/seq/for_each.hpp>
#include <boost/preprocessor/seq/for_each_i.hpp>
#include <boost/preprocessor/tuple/elem.hpp>
#include <boost/preprocessor/tuple/size.hpp>

#include "signum/core/pkcs11.h"

// clang-format off
#define SIGNUM_PKCS11_FUNCTIONS(X) \
  X(Initialize, V2, IMPL, ((INIT_ARGS, CK_VOID_PTR, pInitArgs))) \
  X(Finalize, V2, IMPL, ((PTR, CK_VOID_PTR, pReserved))) \
  X(GetInfo, V2, IMPL, ((OUT_INFO, CK_INFO_PTR, pInfo))) \
  X(GetFunctionList, V2, IMPL, ((OUT_FUNCTION_LIST, CK_FUNCTION_LIST_PTR_PTR, ppFunctionList))) \
  X(GetSlotList, V2, IMPL, ((BOOL, CK_BBOOL, tokenPresent)) \
      ((OUT_SLOTS, CK_SLOT_ID_PTR, pSlotList, CK_ULONG_PTR, pulCount))) \
  X(GetSlotInfo, V2, IMPL, ((SLOT, CK_SLOT_ID, slotID))((OUT_INFO, CK_SLOT_INFO_PTR, pInfo))) \
  X(GetTokenInfo, V2, IMPL, ((SLOT, CK_SLOT_ID, slotID))((OUT_INFO, CK_TOKEN_INFO_PTR, pInfo))) \
  X(GetMechanismList, V2, IMPL, ((SLOT, CK_SLOT_ID, slotID)) \
      ((OUT_MECHANISMS, CK_MECHANISM_TYPE_PTR, pMechanismList, CK_ULONG_PTR, pulCount))) \
  X(GetMechanismInfo, V2, IMPL, ((SLOT, CK_SLOT_ID, slotID))((MECHANISM_TYPE, CK_MECHANISM_TYPE, type)) \
      ((OUT_INFO, CK_MECHANISM_INFO_PTR, pInfo))) \
  X(InitToken, V2, STUB, ((SLOT, CK_SLOT_ID, slotID))((SECRET, CK_UTF8CHAR_PTR, pPin, CK_ULONG, ulPinLen)) \
      ((LABEL, CK_UTF8CHAR_PTR, pLabel))) \
  X(InitPIN, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((SECRET, CK_UTF8CHAR_PTR, pPin, CK_ULONG, ulPinLen))) \
  X(SetPIN, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((SECRET, CK_UTF8CHAR_PTR, pOldPin, CK_ULONG, ulOldLen))((SECRET, CK_UTF8CHAR_PTR, pNewPin, CK_ULONG, ulNewLen))) \
  X(OpenSession, V2, IMPL, ((SLOT, CK_SLOT_ID, slotID))((FLAGS, CK_FLAGS, flags))((PTR, CK_VOID_PTR, pApplication)) \
      ((PTR, CK_NOTIFY, Notify))((OUT_HANDLE, CK_SESSION_HANDLE_PTR, phSession))) \
  X(CloseSession, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(CloseAllSessions, V2, IMPL, ((SLOT, CK_SLOT_ID, slotID))) \
  X(GetSessionInfo, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((OUT_INFO, CK_SESSION_INFO_PTR, pInfo))) \
  X(GetOperationState, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_BYTES, CK_BYTE_PTR, pOperationState, CK_ULONG_PTR, pulOperationStateLen))) \
  X(SetOperationState, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pOperationState, CK_ULONG, ulOperationStateLen)) \
      ((HANDLE, CK_OBJECT_HANDLE, hEncryptionKey))((HANDLE, CK_OBJECT_HANDLE, hAuthenticationKey))) \
  X(Login, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((USER, CK_USER_TYPE, userType)) \
      ((SECRET, CK_UTF8CHAR_PTR, pPin, CK_ULONG, ulPinLen))) \
  X(Logout, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(CreateObject, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulCount)) \
      ((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phObject))) \
  X(CopyObject, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((HANDLE, CK_OBJECT_HANDLE, hObject)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulCount))((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phNewObject))) \
  X(DestroyObject, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((HANDLE, CK_OBJECT_HANDLE, hObject))) \
  X(GetObjectSize, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((HANDLE, CK_OBJECT_HANDLE, hObject)) \
      ((OUT_ULONG, CK_ULONG_PTR, pulSize))) \
  X(GetAttributeValue, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((HANDLE, CK_OBJECT_HANDLE, hObject)) \
      ((OUT_TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulCount))) \
  X(SetAttributeValue, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((HANDLE, CK_OBJECT_HANDLE, hObject)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulCount))) \
  X(FindObjectsInit, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulCount))) \
  X(FindObjects, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_HANDLES, CK_OBJECT_HANDLE_PTR, phObject, CK_ULONG, ulMaxObjectCount, CK_ULONG_PTR, pulObjectCount))) \
  X(FindObjectsFinal, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(EncryptInit, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(Encrypt, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pEncryptedData, CK_ULONG_PTR, pulEncryptedDataLen))) \
  X(EncryptUpdate, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pPart, CK_ULONG, ulPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pEncryptedPart, CK_ULONG_PTR, pulEncryptedPartLen))) \
  X(EncryptFinal, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_BYTES, CK_BYTE_PTR, pLastEncryptedPart, CK_ULONG_PTR, pulLastEncryptedPartLen))) \
  X(DecryptInit, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(Decrypt, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pEncryptedData, CK_ULONG, ulEncryptedDataLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pData, CK_ULONG_PTR, pulDataLen))) \
  X(DecryptUpdate, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pEncryptedPart, CK_ULONG, ulEncryptedPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pPart, CK_ULONG_PTR, pulPartLen))) \
  X(DecryptFinal, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_BYTES, CK_BYTE_PTR, pLastPart, CK_ULONG_PTR, pulLastPartLen))) \
  X(DigestInit, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism))) \
  X(Digest, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pDigest, CK_ULONG_PTR, pulDigestLen))) \
  X(DigestUpdate, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pPart, CK_ULONG, ulPartLen))) \
  X(DigestKey, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(DigestFinal, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_BYTES, CK_BYTE_PTR, pDigest, CK_ULONG_PTR, pulDigestLen))) \
  X(SignInit, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(Sign, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pSignature, CK_ULONG_PTR, pulSignatureLen))) \
  X(SignUpdate, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pPart, CK_ULONG, ulPartLen))) \
  X(SignFinal, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_BYTES, CK_BYTE_PTR, pSignature, CK_ULONG_PTR, pulSignatureLen))) \
  X(SignRecoverInit, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(SignRecover, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pSignature, CK_ULONG_PTR, pulSignatureLen))) \
  X(VerifyInit, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(Verify, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen)) \
      ((BYTES, CK_BYTE_PTR, pSignature, CK_ULONG, ulSignatureLen))) \
  X(VerifyUpdate, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pPart, CK_ULONG, ulPartLen))) \
  X(VerifyFinal, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pSignature, CK_ULONG, ulSignatureLen))) \
  X(VerifyRecoverInit, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(VerifyRecover, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pSignature, CK_ULONG, ulSignatureLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pData, CK_ULONG_PTR, pulDataLen))) \
  X(DigestEncryptUpdate, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pPart, CK_ULONG, ulPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pEncryptedPart, CK_ULONG_PTR, pulEncryptedPartLen))) \
  X(DecryptDigestUpdate, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pEncryptedPart, CK_ULONG, ulEncryptedPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pPart, CK_ULONG_PTR, pulPartLen))) \
  X(SignEncryptUpdate, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pPart, CK_ULONG, ulPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pEncryptedPart, CK_ULONG_PTR, pulEncryptedPartLen))) \
  X(DecryptVerifyUpdate, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((BYTES, CK_BYTE_PTR, pEncryptedPart, CK_ULONG, ulEncryptedPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pPart, CK_ULONG_PTR, pulPartLen))) \
  X(GenerateKey, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulCount))((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phKey))) \
  X(GenerateKeyPair, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pPublicKeyTemplate, CK_ULONG, ulPublicKeyAttributeCount)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pPrivateKeyTemplate, CK_ULONG, ulPrivateKeyAttributeCount)) \
      ((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phPublicKey))((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phPrivateKey))) \
  X(WrapKey, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hWrappingKey))((HANDLE, CK_OBJECT_HANDLE, hKey)) \
      ((OUT_BYTES, CK_BYTE_PTR, pWrappedKey, CK_ULONG_PTR, pulWrappedKeyLen))) \
  X(UnwrapKey, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hUnwrappingKey))((BYTES, CK_BYTE_PTR, pWrappedKey, CK_ULONG, ulWrappedKeyLen)) \
      ((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulAttributeCount))((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phKey))) \
  X(DeriveKey, V2, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hBaseKey))((TEMPLATE, CK_ATTRIBUTE_PTR, pTemplate, CK_ULONG, ulAttributeCount)) \
      ((OUT_HANDLE, CK_OBJECT_HANDLE_PTR, phKey))) \
  X(SeedRandom, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_BYTE_PTR, pSeed, CK_ULONG, ulSeedLen))) \
  X(GenerateRandom, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession)) \
      ((OUT_RANDOM, CK_BYTE_PTR, RandomData, CK_ULONG, ulRandomLen))) \
  X(GetFunctionStatus, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(CancelFunction, V2, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(WaitForSlotEvent, V2, IMPL, ((FLAGS, CK_FLAGS, flags))((OUT_SLOT, CK_SLOT_ID_PTR, pSlot))((PTR, CK_VOID_PTR, pReserved))) \
  X(GetInterfaceList, V3, IMPL, ((OUT_INTERFACES, CK_INTERFACE_PTR, pInterfacesList, CK_ULONG_PTR, pulCount))) \
  X(GetInterface, V3, IMPL, ((INTERFACE_NAME, CK_UTF8CHAR_PTR, pInterfaceName))((VERSION, CK_VERSION_PTR, pVersion)) \
      ((OUT_INTERFACE, CK_INTERFACE_PTR_PTR, ppInterface))((FLAGS, CK_FLAGS, flags))) \
  X(LoginUser, V3, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((USER, CK_USER_TYPE, userType)) \
      ((SECRET, CK_UTF8CHAR_PTR, pPin, CK_ULONG, ulPinLen))((BYTES, CK_UTF8CHAR_PTR, pUsername, CK_ULONG, ulUsernameLen))) \
  X(SessionCancel, V3, IMPL, ((HANDLE, CK_SESSION_HANDLE, hSession))((FLAGS, CK_FLAGS, flags))) \
  X(MessageEncryptInit, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(EncryptMessage, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pAssociatedData, CK_ULONG, ulAssociatedDataLen))((BYTES, CK_BYTE_PTR, pPlaintext, CK_ULONG, ulPlaintextLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pCiphertext, CK_ULONG_PTR, pulCiphertextLen))) \
  X(EncryptMessageBegin, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pAssociatedData, CK_ULONG, ulAssociatedDataLen))) \
  X(EncryptMessageNext, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pPlaintextPart, CK_ULONG, ulPlaintextPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pCiphertextPart, CK_ULONG_PTR, pulCiphertextPartLen))((FLAGS, CK_FLAGS, flags))) \
  X(MessageEncryptFinal, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(MessageDecryptInit, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(DecryptMessage, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pAssociatedData, CK_ULONG, ulAssociatedDataLen))((BYTES, CK_BYTE_PTR, pCiphertext, CK_ULONG, ulCiphertextLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pPlaintext, CK_ULONG_PTR, pulPlaintextLen))) \
  X(DecryptMessageBegin, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pAssociatedData, CK_ULONG, ulAssociatedDataLen))) \
  X(DecryptMessageNext, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pCiphertextPart, CK_ULONG, ulCiphertextPartLen)) \
      ((OUT_BYTES, CK_BYTE_PTR, pPlaintextPart, CK_ULONG_PTR, pulPlaintextPartLen))((FLAGS, CK_FLAGS, flags))) \
  X(MessageDecryptFinal, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(MessageSignInit, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(SignMessage, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen))((OUT_BYTES, CK_BYTE_PTR, pSignature, CK_ULONG_PTR, pulSignatureLen))) \
  X(SignMessageBegin, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen))) \
  X(SignMessageNext, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen))((OUT_BYTES, CK_BYTE_PTR, pSignature, CK_ULONG_PTR, pulSignatureLen))) \
  X(MessageSignFinal, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))) \
  X(MessageVerifyInit, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((MECHANISM, CK_MECHANISM_PTR, pMechanism)) \
      ((HANDLE, CK_OBJECT_HANDLE, hKey))) \
  X(VerifyMessage, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen))((BYTES, CK_BYTE_PTR, pSignature, CK_ULONG, ulSignatureLen))) \
  X(VerifyMessageBegin, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen))) \
  X(VerifyMessageNext, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession))((BYTES, CK_VOID_PTR, pParameter, CK_ULONG, ulParameterLen)) \
      ((BYTES, CK_BYTE_PTR, pData, CK_ULONG, ulDataLen))((BYTES, CK_BYTE_PTR, pSignature, CK_ULONG, ulSignatureLen))) \
  X(MessageVerifyFinal, V3, STUB, ((HANDLE, CK_SESSION_HANDLE, hSession)))
// clang-format on

// --- Expanding an Args sequence ----------------------------------------------------------------
// Each tuple has 3, 5 or 7 elements: (KIND, type, name), (KIND, t1, n1, t2, n2), (KIND, t1, n1,
// t2, n2, t3, n3). The helpers below pick the right form by tuple size.

// "CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen"
#define SIGNUM_P11_PARAMS(Args) BOOST_PP_SEQ_FOR_EACH_I(SIGNUM_P11_PARAM_, ~, Args)
#define SIGNUM_P11_PARAM_(r, data, i, elem) \
  BOOST_PP_COMMA_IF(i) BOOST_PP_CAT(SIGNUM_P11_PARAM_, BOOST_PP_TUPLE_SIZE(elem)) elem
#define SIGNUM_P11_PARAM_3(k, t1, n1) t1 n1
#define SIGNUM_P11_PARAM_5(k, t1, n1, t2, n2) t1 n1, t2 n2
#define SIGNUM_P11_PARAM_7(k, t1, n1, t2, n2, t3, n3) t1 n1, t2 n2, t3 n3

// Types only (stubs that ignore their arguments): "CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG"
#define SIGNUM_P11_TYPES(Args) BOOST_PP_SEQ_FOR_EACH_I(SIGNUM_P11_TYPE_, ~, Args)
#define SIGNUM_P11_TYPE_(r, data, i, elem) \
  BOOST_PP_COMMA_IF(i) BOOST_PP_CAT(SIGNUM_P11_TYPE_, BOOST_PP_TUPLE_SIZE(elem)) elem
#define SIGNUM_P11_TYPE_3(k, t1, n1) t1
#define SIGNUM_P11_TYPE_5(k, t1, n1, t2, n2) t1, t2
#define SIGNUM_P11_TYPE_7(k, t1, n1, t2, n2, t3, n3) t1, t2, t3

// Argument names for a call: "hSession, pData, ulDataLen"
#define SIGNUM_P11_ARGS(Args) BOOST_PP_SEQ_FOR_EACH_I(SIGNUM_P11_ARG_, ~, Args)
#define SIGNUM_P11_ARG_(r, data, i, elem) \
  BOOST_PP_COMMA_IF(i) BOOST_PP_CAT(SIGNUM_P11_ARG_, BOOST_PP_TUPLE_SIZE(elem)) elem
#define SIGNUM_P11_ARG_3(k, t1, n1) n1
#define SIGNUM_P11_ARG_5(k, t1, n1, t2, n2) n1, n2
#define SIGNUM_P11_ARG_7(k, t1, n1, t2, n2, t3, n3) n1, n2, n3

// Trace statements: In_KIND(record, "name", name, ...); and the Out_ twin, which also gets the
// return value (outputs are only meaningful for some return values). Unqualified on purpose: the
// record's type picks the trace (trace::Record -> trace.h, trace_v1::Call -> trace_v1.h) by
// argument-dependent lookup, so one expansion drives both.
#define SIGNUM_P11_TRACE_IN(record, Args) BOOST_PP_SEQ_FOR_EACH(SIGNUM_P11_TRACE_IN_, record, Args)
#define SIGNUM_P11_TRACE_IN_(r, record, elem)    \
  BOOST_PP_CAT(In_, BOOST_PP_TUPLE_ELEM(0, elem)) \
  (record, BOOST_PP_CAT(SIGNUM_P11_NAMED_, BOOST_PP_TUPLE_SIZE(elem)) elem);
#define SIGNUM_P11_TRACE_OUT(record, rv, Args) \
  BOOST_PP_SEQ_FOR_EACH(SIGNUM_P11_TRACE_OUT_, (record, rv), Args)
#define SIGNUM_P11_TRACE_OUT_(r, record_rv, elem)                          \
  BOOST_PP_CAT(Out_, BOOST_PP_TUPLE_ELEM(0, elem))                          \
  (BOOST_PP_TUPLE_ELEM(0, record_rv), BOOST_PP_TUPLE_ELEM(1, record_rv),   \
   BOOST_PP_CAT(SIGNUM_P11_NAMED_, BOOST_PP_TUPLE_SIZE(elem)) elem);
#define SIGNUM_P11_NAMED_3(k, t1, n1) #n1, n1
#define SIGNUM_P11_NAMED_5(k, t1, n1, t2, n2) #n1, n1, #n2, n2
#define SIGNUM_P11_NAMED_7(k, t1, n1, t2, n2, t3, n3) #n1, n1, #n2, n2, #n3, n3

// Since / Support filters: SIGNUM_P11_IF_V2(Since)(code) keeps code for 2.40 functions.
#define SIGNUM_P11_IF_V2(Since) BOOST_PP_CAT(SIGNUM_P11_IF_V2_, Since)
#define SIGNUM_P11_IF_V2_V2(...) __VA_ARGS__
#define SIGNUM_P11_IF_V2_V3(...)
#define SIGNUM_P11_IF_STUB(Support) BOOST_PP_CAT(SIGNUM_P11_IF_STUB_, Support)
#define SIGNUM_P11_IF_STUB_STUB(...) __VA_ARGS__
#define SIGNUM_P11_IF_STUB_IMPL(...)
