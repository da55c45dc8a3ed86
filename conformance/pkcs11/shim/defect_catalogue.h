// The defects libsignum-defect-shim.so can inject, defined once: each with the conformance checks
// that must fail when it is injected (and, by implication, that no other check may fail). The
// shim implements them, signum-defect-catalogue prints this table as JSON for the defect test
// and for people.
#pragma once

#include <string_view>
#include <vector>

namespace signum::conformance {

enum class Defect {
  kNone,
  kEcdsaDerSignature,
  kLengthQueryEndsOperation,
  kBufferTooSmallReturnsOk,
  kSignErrorLeavesOperationActive,
  kCertIdMismatch,
  kNoPublicKeyObjects,
  kPrivateKeyLacksPublicComponents,
  kEcPointNotDerWrapped,
  kUnpaddedTokenLabel,
  kNullArgCrash,
  kSensitiveAttributeReturnsValue,
  kUlValueLenNotUnavailable,
  kRsaPkcsIgnoresDigestInfo,
  kPssIgnoresSaltParams,
  kMechanismListDuplicates,
  kForkUnsafe,
  kThreadUnsafe,
  kReservedInitArgsRejected,
  kTokenSerialPerProcess,
  kLoginBoundToItsSession,
  kCertIdReadBackDiffers,
  kSensitiveAttributeTypeInvalid,
  kAlwaysAuthenticateTypeInvalid,
  kSubjectSearchFindsNothing,
  kOperationStateEndsSign,
  kSoLoginChecksPinFirst,
  kPinFlagsNeverSet,
  kPssSignDataInvalid,
};

struct DefectInfo {
  Defect defect;
  std::string_view name;         // the value of SIGNUM_SHIM_DEFECT
  std::string_view description;  // what the shim does, in the module's voice
  std::string_view evidence;     // where real modules did this (conformance-anchors.md §6)
  // Check names (conformance/pkcs11/CHECKS.md) that must fail, per suite profile. Empty: the
  // profile cannot see the defect (the hsm profile does not require certificates), so no check
  // may fail.
  std::vector<std::string_view> failing_provider_checks;
  std::vector<std::string_view> failing_hsm_checks;
};

const std::vector<DefectInfo>& DefectCatalogue();  // every defect except kNone
// nullptr for an unknown name; "" and "none" give kNone's entry.
const DefectInfo* FindDefect(std::string_view name);

}  // namespace signum::conformance
