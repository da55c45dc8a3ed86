// The bridge: one function per C_* (generated declarations from functions.h), each doing argument
// validation, the NULL/length-query protocol and handle lookup, then calling into the Provider /
// Session / Object model. They return Status; the exported shims turn it into a CK_RV
// (ck_status.h), trace it and never let an exception escape.
//
// Order of checks in every function: initialised (CKR_CRYPTOKI_NOT_INITIALIZED, also in a forked
// child that has not called C_Initialize), then NULL/inconsistent arguments (CKR_ARGUMENTS_BAD),
// then handles (slot, session, object), then state.
#pragma once

#include <memory>

#include "functions.h"
#include "provider.h"
#include "signum/core/status.h"

namespace signum::pkcs11::bridge {

#define SIGNUM_P11_DECLARE_BRIDGE(Name, Since, Support, Args) Status Name(SIGNUM_P11_PARAMS(Args));
SIGNUM_PKCS11_FUNCTIONS(SIGNUM_P11_DECLARE_BRIDGE)
#undef SIGNUM_P11_DECLARE_BRIDGE

// The provider of this process's current initialisation, or CKR_CRYPTOKI_NOT_INITIALIZED.
Result<std::shared_ptr<Provider>> GetProvider();

}  // namespace signum::pkcs11::bridge
