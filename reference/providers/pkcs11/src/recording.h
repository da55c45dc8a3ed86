// SIGNUM_PKCS11_RECORD=FILE: this module writes trace format v1 (docs/trace-format.md) itself, with
// the encoder it shares with libsignum-pkcs11-recorder.so (../record/trace_v1.h), so a session of
// any application can be replayed (signum-replay) without a wrapper module. Unlike the wrapper, the
// module knows why a call failed: its records carry the Status message as "error" (and remarks on
// calls that succeeded as "note").
//
// Independent of SIGNUM_PKCS11_TRACE (the human-readable text trace, trace.h): either, both or
// neither may be on. Both are filled by the same expansion of the call table (exports.cc).
#pragma once

namespace signum::pkcs11::recording {

// (Re)reads SIGNUM_PKCS11_RECORD. Called on the first call and by every C_Initialize, so a process
// can switch recording on, off or to another file between initialisations.
void Configure();
// True when a trace file is open (configuring it on first use).
bool Enabled();

}  // namespace signum::pkcs11::recording
