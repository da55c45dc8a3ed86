// Helpers for tests that load the real libsignumpkcs11.so with dlopen and drive it through its
// function lists, the way every PKCS#11 application does.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "signum/core/bytes.h"
#include "signum/core/pkcs11.h"
#include "signum/core/pkcs11_module.h"
#include "signum/testing/scoped_env.h"

namespace signum::pkcs11::testing {

inline constexpr const char* kModulePath = SIGNUM_PKCS11_MODULE;

// Compares return values by name, so failures read "CKR_OK vs CKR_DEVICE_ERROR".
#define EXPECT_RV(expected, expr) EXPECT_EQ(::signum::CkRvName(expr), ::signum::CkRvName(expected))
#define ASSERT_RV(expected, expr) ASSERT_EQ(::signum::CkRvName(expr), ::signum::CkRvName(expected))

// The module, loaded once per test process (a PKCS#11 library has one state per process anyway).
struct Module {
  void* handle = nullptr;
  CK_FUNCTION_LIST_PTR f = nullptr;       // from C_GetFunctionList (2.40)
  CK_FUNCTION_LIST_3_0_PTR f3 = nullptr;  // from C_GetInterface("PKCS 11", 3.0)

  static Module& Get() {
    static Module* module = [] {
      auto* m = new Module();
      m->handle = ::dlopen(kModulePath, RTLD_NOW | RTLD_LOCAL);
      if (m->handle == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
      auto get_list =
          reinterpret_cast<CK_C_GetFunctionList>(::dlsym(m->handle, "C_GetFunctionList"));
      auto get_interface =
          reinterpret_cast<CK_C_GetInterface>(::dlsym(m->handle, "C_GetInterface"));
      if (get_list == nullptr || get_interface == nullptr)
        throw std::runtime_error("missing entry points");
      if (get_list(&m->f) != CKR_OK) throw std::runtime_error("C_GetFunctionList failed");
      CK_INTERFACE_PTR iface = nullptr;
      CK_VERSION v{3, 0};
      if (get_interface(reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>("PKCS 11")), &v, &iface,
                        0) != CKR_OK) {
        throw std::runtime_error("C_GetInterface failed");
      }
      m->f3 = static_cast<CK_FUNCTION_LIST_3_0_PTR>(iface->pFunctionList);
      return m;
    }();
    return *module;
  }
};

inline CK_FUNCTION_LIST_3_0_PTR F() { return Module::Get().f3; }

using ::signum::testing::ScopedEnv;

// C_Initialize for the scope (C_Finalize at the end).
class Initialized {
 public:
  explicit Initialized(CK_C_INITIALIZE_ARGS* args = nullptr) {
    rv_ = F()->C_Initialize(args);
    EXPECT_RV(CKR_OK, rv_);
  }
  ~Initialized() {
    if (rv_ == CKR_OK) F()->C_Finalize(nullptr);
  }
  Initialized(const Initialized&) = delete;
  Initialized& operator=(const Initialized&) = delete;

 private:
  CK_RV rv_;
};

inline CK_C_INITIALIZE_ARGS OsLockingArgs() {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  return args;
}

inline CK_SESSION_HANDLE OpenSession(bool read_write = false) {
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  EXPECT_RV(CKR_OK, F()->C_OpenSession(1, flags, nullptr, nullptr, &h));
  return h;
}

// The whole result of a search, fetched one handle at a time (as libp11 does).
inline std::vector<CK_OBJECT_HANDLE> Find(CK_SESSION_HANDLE session,
                                          std::vector<CK_ATTRIBUTE> tmpl) {
  std::vector<CK_OBJECT_HANDLE> out;
  EXPECT_RV(CKR_OK,
            F()->C_FindObjectsInit(session, tmpl.empty() ? nullptr : tmpl.data(), tmpl.size()));
  for (;;) {
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    EXPECT_RV(CKR_OK, F()->C_FindObjects(session, &h, 1, &n));
    if (n == 0) break;
    out.push_back(h);
  }
  EXPECT_RV(CKR_OK, F()->C_FindObjectsFinal(session));
  return out;
}

// One attribute through the two-call protocol; nullopt (and the CK_RV) when it cannot be read.
struct AttributeResult {
  CK_RV rv = CKR_OK;
  Bytes value;
};
inline AttributeResult GetAttribute(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                    CK_ATTRIBUTE_TYPE type) {
  AttributeResult r;
  CK_ATTRIBUTE a{type, nullptr, 0};
  r.rv = F()->C_GetAttributeValue(session, object, &a, 1);
  if (r.rv != CKR_OK) return r;
  r.value.resize(a.ulValueLen);
  a.pValue = r.value.data();
  r.rv = F()->C_GetAttributeValue(session, object, &a, 1);
  r.value.resize(a.ulValueLen == CK_UNAVAILABLE_INFORMATION ? 0 : a.ulValueLen);
  return r;
}

inline Bytes Ulong(CK_ULONG v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

inline CK_ULONG AsUlong(const Bytes& b) {
  CK_ULONG v = 0;
  if (b.size() == sizeof v) std::memcpy(&v, b.data(), sizeof v);
  return v;
}

inline std::string Field(const CK_UTF8CHAR* p, size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

}  // namespace signum::pkcs11::testing
