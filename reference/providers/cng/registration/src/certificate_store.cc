// Publishing the agent's certificates in a Windows system store (registration.h): what lets
// signtool /sha1, certutil, .NET's X509Store and CryptAcquireCertificatePrivateKey find the key
// behind a certificate. The link is CERT_KEY_PROV_INFO: provider name + container name (the
// certificate's id), which Windows hands to our KSP (NCryptOpenKey) or CSP (CryptAcquireContext).
#include <windows.h>
// wincrypt.h needs windows.h's types first.
#include <wincrypt.h>

#include <memory>
#include <string>
#include <vector>

#include "signum/cng/names.h"
#include "signum/cng/provider_runtime.h"
#include "signum/cng/registration.h"
#include "signum/core/encoding.h"
#include "signum/provider/wide_string.h"

namespace signum::cng {
namespace {

constexpr DWORD kEncoding = X509_ASN_ENCODING | PKCS_7_ASN_ENCODING;

const wchar_t* ProviderName(ProviderKind kind) {
  return kind == ProviderKind::kKsp ? kKspName : kCspName;
}

const char* LocationName(StoreLocation location) {
  return location == StoreLocation::kCurrentUser ? "CurrentUser" : "LocalMachine";
}

std::string Win32Message(const std::string& what, DWORD error) {
  char hex[16];
  snprintf(hex, sizeof hex, "0x%08lx", static_cast<unsigned long>(error));
  return what + " failed: " + hex;
}

Status LastError(const std::string& what) {
  const DWORD error = GetLastError();
  if (error == ERROR_ACCESS_DENIED || error == static_cast<DWORD>(E_ACCESSDENIED)) {
    return PermissionDeniedError(Win32Message(what, error) +
                                 " (access denied: LocalMachine stores need administrator rights)");
  }
  return InternalError(Win32Message(what, error));
}

// An open system store, closed on scope exit.
class SystemStore {
 public:
  ~SystemStore() {
    if (store_ != nullptr) CertCloseStore(store_, 0);
  }
  // CERT_STORE_PROV_SYSTEM_W: the logical store, as tools see it.
  // CERT_STORE_PROV_SYSTEM_REGISTRY_W: only its registry part, where
  // CertAddEncodedCertificateToStore puts certificates (Wine's CurrentUser logical stores also show
  // LocalMachine's certificates).
  static Result<std::unique_ptr<SystemStore>> Open(StoreLocation location, const wchar_t* name,
                                                   LPCSTR provider = CERT_STORE_PROV_SYSTEM_W) {
    const DWORD flags = location == StoreLocation::kCurrentUser ? CERT_SYSTEM_STORE_CURRENT_USER
                                                                : CERT_SYSTEM_STORE_LOCAL_MACHINE;
    HCERTSTORE store = CertOpenStore(provider, 0, 0, flags, name);
    if (store == nullptr) {
      return LastError(std::string("CertOpenStore(") + LocationName(location) + "\\" +
                       provider::Utf8FromWide(name) + ")");
    }
    auto opened = std::unique_ptr<SystemStore>(new SystemStore());
    opened->store_ = store;
    return opened;
  }
  HCERTSTORE get() const { return store_; }

 private:
  SystemStore() = default;
  HCERTSTORE store_ = nullptr;
};

// Adds (or replaces) one DER certificate; the returned context must be freed by the caller.
Result<PCCERT_CONTEXT> AddCertificate(HCERTSTORE store, const Bytes& der, const std::string& what) {
  PCCERT_CONTEXT added = nullptr;
  if (!CertAddEncodedCertificateToStore(store, kEncoding, der.data(),
                                        static_cast<DWORD>(der.size()),
                                        CERT_STORE_ADD_REPLACE_EXISTING, &added)) {
    return LastError("CertAddEncodedCertificateToStore(" + what + ")");
  }
  return added;
}

Result<std::string> Sha1HexOf(PCCERT_CONTEXT context) {
  BYTE hash[20];
  DWORD size = sizeof hash;
  if (!CertGetCertificateContextProperty(context, CERT_SHA1_HASH_PROP_ID, hash, &size)) {
    return LastError("CertGetCertificateContextProperty(CERT_SHA1_HASH_PROP_ID)");
  }
  return HexEncode(ByteView(hash, size));
}

bool IsSelfIssued(const provider::CertificateInfo& certificate) {
  return certificate.SubjectDer() == certificate.IssuerDer();
}

}  // namespace

Result<std::vector<std::string>> InstallCertificates(provider::ProviderContext& context,
                                                     ProviderKind kind, StoreLocation location,
                                                     bool install_roots) {
  SIGNUM_ASSIGN_OR_RETURN(std::shared_ptr<const provider::CertificateSet> set,
                          context.Certificates());
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SystemStore> my, SystemStore::Open(location, L"My"));

  std::vector<std::string> installed;
  // Only what the providers serve (provider_runtime.h): a store entry linked to an EC
  // certificate would name a key nobody serves.
  for (const auto& certificate : WindowsKeys(*set)) {
    const std::string what = "certificate " + certificate->id + " (" + certificate->label + ")";
    SIGNUM_ASSIGN_OR_RETURN(PCCERT_CONTEXT added,
                            AddCertificate(my->get(), certificate->certificate.Der(), what));
    std::wstring container = provider::WideFromUtf8(certificate->id);
    CRYPT_KEY_PROV_INFO info = {};
    info.pwszContainerName = container.data();
    info.pwszProvName = const_cast<LPWSTR>(ProviderName(kind));
    info.dwProvType = kind == ProviderKind::kKsp ? 0 : kCspRegisteredType;
    info.dwFlags = 0;
    info.dwKeySpec = kind == ProviderKind::kKsp ? 0 : AT_SIGNATURE;
    const BOOL set_ok =
        CertSetCertificateContextProperty(added, CERT_KEY_PROV_INFO_PROP_ID, 0, &info);
    Status status =
        set_ok ? Status::Ok()
               : LastError("CertSetCertificateContextProperty(CERT_KEY_PROV_INFO, " + what + ")");
    Result<std::string> thumbprint = Sha1HexOf(added);
    CertFreeCertificateContext(added);
    SIGNUM_RETURN_IF_ERROR(status);
    if (!thumbprint.ok()) return thumbprint.status();
    if (*thumbprint != certificate->id) {
      return InternalError("the store computed SHA-1 " + *thumbprint + " for " + what);
    }
    installed.push_back(*thumbprint);
  }

  // CA certificates: intermediates to CA, self-issued roots to Root only when asked (adding to
  // CurrentUser\Root makes Windows ask the user to confirm).
  std::unique_ptr<SystemStore> ca_store, root_store;
  for (const provider::CertificateInfo& authority : set->authorities) {
    const bool root = IsSelfIssued(authority);
    if (root && !install_roots) continue;
    std::unique_ptr<SystemStore>& store = root ? root_store : ca_store;
    if (store == nullptr) {
      SIGNUM_ASSIGN_OR_RETURN(store, SystemStore::Open(location, root ? L"Root" : L"CA"));
    }
    SIGNUM_ASSIGN_OR_RETURN(
        PCCERT_CONTEXT added,
        AddCertificate(store->get(), authority.Der(), "CA certificate " + authority.Subject()));
    CertFreeCertificateContext(added);
  }
  return installed;
}

namespace {

// The certificates in store whose CERT_KEY_PROV_INFO names provider_name (duplicated contexts: the
// caller frees or deletes them).
std::vector<PCCERT_CONTEXT> LinkedCertificates(HCERTSTORE store,
                                               const std::wstring& provider_name) {
  std::vector<PCCERT_CONTEXT> linked;
  PCCERT_CONTEXT current = nullptr;
  while ((current = CertEnumCertificatesInStore(store, current)) != nullptr) {
    DWORD size = 0;
    if (!CertGetCertificateContextProperty(current, CERT_KEY_PROV_INFO_PROP_ID, nullptr, &size)) {
      continue;  // no key link: not ours
    }
    std::vector<BYTE> buffer(size);
    if (!CertGetCertificateContextProperty(current, CERT_KEY_PROV_INFO_PROP_ID, buffer.data(),
                                           &size)) {
      continue;
    }
    const auto* info = reinterpret_cast<const CRYPT_KEY_PROV_INFO*>(buffer.data());
    if (info->pwszProvName == nullptr || provider_name != info->pwszProvName) continue;
    linked.push_back(CertDuplicateCertificateContext(current));
  }
  return linked;
}

}  // namespace

Result<int> RemoveInstalledCertificates(ProviderKind kind, StoreLocation location) {
  const std::wstring provider_name = ProviderName(kind);
  int removed = 0;
  {
    // The registry part of <location>\My, where InstallCertificates added them.
    SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SystemStore> my,
                            SystemStore::Open(location, L"My", CERT_STORE_PROV_SYSTEM_REGISTRY_W));
    // Collected first, deleted after the enumeration: deleting the context an enumeration stands
    // on makes Wine's CertEnumCertificatesInStore loop forever.
    Status status;
    for (PCCERT_CONTEXT context : LinkedCertificates(my->get(), provider_name)) {
      // CertDeleteCertificateFromStore frees the context it is given, also when it fails.
      if (!status.ok()) {
        CertFreeCertificateContext(context);
      } else if (CertDeleteCertificateFromStore(context)) {
        ++removed;
      } else {
        status = LastError("CertDeleteCertificateFromStore");
      }
    }
    SIGNUM_RETURN_IF_ERROR(status);
    // Wine writes deletions to the registry only on an explicit commit; Windows has written them
    // already. The result is checked below either way.
    CertControlStore(my->get(), 0, CERT_STORE_CTRL_COMMIT, nullptr);
  }
  // Read back from a fresh handle: a removal that did not persist is not one.
  SIGNUM_ASSIGN_OR_RETURN(std::unique_ptr<SystemStore> check,
                          SystemStore::Open(location, L"My", CERT_STORE_PROV_SYSTEM_REGISTRY_W));
  std::vector<PCCERT_CONTEXT> left = LinkedCertificates(check->get(), provider_name);
  for (PCCERT_CONTEXT context : left) CertFreeCertificateContext(context);
  if (!left.empty()) {
    return InternalError(std::to_string(left.size()) + " certificate(s) linked to " +
                         provider::Utf8FromWide(provider_name) + " are still in " +
                         LocationName(location) + "\\My after deleting them");
  }
  return removed;
}

}  // namespace signum::cng
