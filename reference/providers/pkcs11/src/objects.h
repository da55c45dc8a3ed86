// Objects on the token and their handles.
//
// Handles are random non-zero CK_ULONGs (like kmsp11's HandleMap), never reused while the provider
// lives, so a stale or forged handle does not alias another object. An object keeps its handle
// across a certificate-list refresh (it is keyed by what it is: kind + certificate thumbprint),
// so tools that cached a handle keep working for the life of C_Initialize.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attributes.h"
#include "signum/core/pkcs11.h"
#include "signum/provider/provider_certificate.h"

namespace signum::pkcs11 {

// One namespace of handles for sessions and objects alike: a session handle passed as an object
// handle (or the reverse) is simply invalid.
class HandleAllocator {
 public:
  HandleAllocator();
  CK_ULONG Allocate();

 private:
  std::mutex mu_;
  std::mt19937_64 random_;
  std::set<CK_ULONG> used_;
};

struct Object {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  ObjectKind kind = ObjectKind::kCertificate;
  bool is_private = false;  // CKA_PRIVATE: invisible until C_Login
  // The signing certificate behind a leaf certificate or key object; null for CA certificates.
  std::shared_ptr<const provider::ProviderCertificate> certificate;
  AttributeMap attributes;

  // Exact match of every template attribute (type present, not sensitive, same bytes). Unknown,
  // vendor and sensitive attributes match nothing.
  bool Matches(const CK_ATTRIBUTE* attributes, CK_ULONG count) const;
};

class ObjectStore {
 public:
  explicit ObjectStore(HandleAllocator* handles);

  // Replaces the objects with those of `set`, keeping the handles of objects that remain.
  // Objects are listed per certificate (certificate, public key, private key), then the CAs.
  void Update(const provider::CertificateSet& set, bool private_keys_private,
              std::vector<std::string>* problems);

  std::shared_ptr<const Object> Find(CK_OBJECT_HANDLE handle) const;
  std::vector<std::shared_ptr<const Object>> All() const;

 private:
  CK_OBJECT_HANDLE HandleFor(const std::string& key);

  HandleAllocator* handles_;
  mutable std::mutex mu_;
  std::map<std::string, CK_OBJECT_HANDLE> handle_by_key_;  // survives updates
  std::vector<std::shared_ptr<const Object>> objects_;
  std::map<CK_OBJECT_HANDLE, std::shared_ptr<const Object>> by_handle_;
};

}  // namespace signum::pkcs11
