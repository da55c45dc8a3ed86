#include "objects.h"

#include <cstring>

#include "signum/core/crypto.h"

namespace signum::pkcs11 {

HandleAllocator::HandleAllocator() {
  // Seeded from OpenSSL's CSPRNG, which reseeds after fork(): a child that initialises again
  // does not replay its parent's handles.
  Bytes seed = RandomBytes(sizeof(uint64_t));
  uint64_t value = 0;
  std::memcpy(&value, seed.data(), sizeof value);
  random_.seed(value);
}

CK_ULONG HandleAllocator::Allocate() {
  std::lock_guard lock(mu_);
  for (;;) {
    // 31 bits: positive in every signed representation a binding might use (Java int, C long
    // on LLP64), and still 2^31 values to draw from.
    const CK_ULONG h = static_cast<CK_ULONG>(random_() & 0x7fffffffu);
    if (h == CK_INVALID_HANDLE) continue;
    if (used_.insert(h).second) return h;
  }
}

bool Object::Matches(const CK_ATTRIBUTE* tmpl, CK_ULONG count) const {
  for (CK_ULONG i = 0; i < count; ++i) {
    bool sensitive = false;
    const Bytes* value = attributes.Find(tmpl[i].type, &sensitive);
    if (value == nullptr) return false;  // absent or sensitive: never a match
    if (tmpl[i].ulValueLen != value->size()) return false;
    if (value->empty()) continue;
    if (tmpl[i].pValue == nullptr) return false;
    if (std::memcmp(tmpl[i].pValue, value->data(), value->size()) != 0) return false;
  }
  return true;
}

ObjectStore::ObjectStore(HandleAllocator* handles) : handles_(handles) {}

CK_OBJECT_HANDLE ObjectStore::HandleFor(const std::string& key) {
  auto it = handle_by_key_.find(key);
  if (it != handle_by_key_.end()) return it->second;
  const CK_OBJECT_HANDLE h = handles_->Allocate();
  handle_by_key_[key] = h;
  return h;
}

void ObjectStore::Update(const provider::CertificateSet& set, bool private_keys_private,
                         std::vector<std::string>* problems) {
  std::vector<std::shared_ptr<const Object>> objects;
  std::lock_guard lock(mu_);
  auto add = [&](const std::string& key, ObjectSubject subject,
                 std::shared_ptr<const provider::ProviderCertificate> leaf) {
    auto attributes = BuildAttributes(subject);
    if (!attributes.ok()) {
      problems->push_back(key + ": " + attributes.status().ToString());
      return;
    }
    auto object = std::make_shared<Object>();
    object->handle = HandleFor(key);
    object->kind = subject.kind;
    object->is_private = subject.kind == ObjectKind::kPrivateKey && private_keys_private;
    object->certificate = std::move(leaf);
    object->attributes = std::move(attributes).value();
    objects.push_back(std::move(object));
  };
  for (const auto& leaf : set.certificates) {
    for (ObjectKind kind :
         {ObjectKind::kCertificate, ObjectKind::kPublicKey, ObjectKind::kPrivateKey}) {
      ObjectSubject subject{.kind = kind,
                            .certificate = &leaf->certificate,
                            .leaf = leaf.get(),
                            .label = leaf->label,
                            .id = leaf->thumbprint,
                            .authority = false,
                            .private_keys_private = private_keys_private};
      add(std::to_string(static_cast<int>(kind)) + ":" + leaf->id, subject, leaf);
    }
  }
  for (const provider::CertificateInfo& ca : set.authorities) {
    ObjectSubject subject{.kind = ObjectKind::kCertificate,
                          .certificate = &ca,
                          .leaf = nullptr,
                          .label = AuthorityLabel(ca),
                          .id = ca.Sha1Thumbprint(),
                          .authority = true,
                          .private_keys_private = private_keys_private};
    add("ca:" + ca.Sha1ThumbprintHex(), subject, nullptr);
  }
  objects_ = std::move(objects);
  by_handle_.clear();
  for (const auto& o : objects_) by_handle_[o->handle] = o;
}

std::shared_ptr<const Object> ObjectStore::Find(CK_OBJECT_HANDLE handle) const {
  std::lock_guard lock(mu_);
  auto it = by_handle_.find(handle);
  return it == by_handle_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Object>> ObjectStore::All() const {
  std::lock_guard lock(mu_);
  return objects_;
}

}  // namespace signum::pkcs11
