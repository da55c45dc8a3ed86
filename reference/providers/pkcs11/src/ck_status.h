// Status <-> CK_RV, in one place. Errors born in this module carry the CK_RV the spec asks for
// (CkError); errors that come from below (the agent, the server, the HSM) carry a portable
// ErrorCode only and are mapped by the table in ck_status.cc, which docs/pkcs11-provider.md
// reproduces.
#pragma once

#include <string>

#include "signum/core/pkcs11.h"
#include "signum/core/status.h"

namespace signum::pkcs11 {

// A Status carrying rv; the ErrorCode follows signum::CkStatus's classification.
Status CkError(CK_RV rv, std::string message);

// The CK_RV for a Status: its own payload when it has one, else the table by ErrorCode.
CK_RV ToCkRv(const Status& status);

// The table itself (exposed for tests and the documentation check).
CK_RV CkRvForErrorCode(ErrorCode code);

}  // namespace signum::pkcs11
