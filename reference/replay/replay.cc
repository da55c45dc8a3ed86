// signum-replay: replays a PKCS#11 trace (format v1, docs/trace-format.md) against a module and
// compares every return value and output with the recording (issue 14).
//
//   signum-replay TRACE --module PATH [--pin-file F] [--token LABEL] [--cross-module]
//
// --cross-module: the trace was recorded against another module or token (other keys, other
// CKA_IDs); what the caller depended on is compared (cross_module.h), the rest only noted.
//
// Exit status: 0 every call matched, 1 a divergence (the first one is reported with the calls
// around it), 2 the trace or the module could not be used.
//
// This slice replays the calls of all threads and processes one after another, in the order they
// were recorded (the order they returned), on one thread.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "signum/core/algorithms.h"
#include "signum/core/crypto.h"
#include "signum/core/encoding.h"
#include "signum/core/pkcs11.h"
#include "signum/core/pkcs11_module.h"
#include "signum/core/trace_file.h"
#include "signum/core/x509.h"
#include "cross_module.h"

namespace signum {
namespace {

using json = nlohmann::json;
using replay::AcrossModules;
using replay::kTokenFlagsCallersFollow;
using replay::RuleFor;

// The trace cannot be replayed (unsupported function, malformed line, missing PIN): exit 2.
struct Unusable {
  std::string message;
};

struct Call : trace_file::Record {
  CK_RV rv() const { return code<CK_RV>(); }
  long long pid() const { return j.value("pid", 0LL); }
};

struct Options {
  std::string trace;
  std::string module;
  std::string pin_file;
  std::optional<std::string> token;
  // Recorded against another module or token: objects by class and label, key material by form,
  // the module's self-description only noted (cross_module.h).
  bool cross_module = false;
  bool show_notes = false;
  // --compare A B: the trace against two modules, reporting where they behave differently.
  std::string compare_module;  // B (A is `module`)
  std::string compare_pin_file;
  std::optional<std::string> compare_token;
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "signum-replay: " << why << "\n"
            << "usage: signum-replay TRACE --module PATH [--pin-file F] [--token LABEL]\n"
            << "                     [--cross-module [--notes]]\n"
            << "       signum-replay TRACE --compare A B [--pin-file F] [--token LABEL]\n"
            << "                     [--pin-file-b F] [--token-b LABEL]   (B's, when not A's)\n"
            << "  the PIN comes from --pin-file or SIGNUM_REPLAY_PIN (traces never hold it)\n"
            << "  --cross-module: recorded against another module or token (other keys and\n"
            << "    CKA_IDs): objects match by class and label, key material by size, and the\n"
            << "    module's own description is only noted (--notes lists the notes)\n";
  std::exit(trace_file::kReplayUnusable);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--module") {
      o.module = value();
    } else if (a == "--compare") {
      o.module = value();
      o.compare_module = value();
    } else if (a == "--pin-file-b") {
      o.compare_pin_file = value();
    } else if (a == "--token-b") {
      o.compare_token = value();
    } else if (a == "--pin-file") {
      o.pin_file = value();
    } else if (a == "--token") {
      o.token = value();
    } else if (a == "--cross-module") {
      o.cross_module = true;
    } else if (a == "--notes") {
      o.show_notes = true;
    } else if (a == "-h" || a == "--help") {
      Usage("replays a PKCS#11 trace (docs/trace-format.md)");
    } else if (!a.empty() && a[0] == '-') {
      Usage("unknown option " + a);
    } else if (o.trace.empty()) {
      o.trace = a;
    } else {
      Usage("one trace only");
    }
  }
  if (o.trace.empty()) Usage("no trace given");
  if (o.module.empty()) Usage("--module (or --compare A B) is required");
  return o;
}

// Reads the trace (core's trace_file: refuses any version but 1, and a header of another kind).
std::vector<Call> LoadTrace(const std::string& path, json& header) {
  Result<trace_file::TraceFile> trace =
      trace_file::Read(path, "signum-pkcs11-trace", {"fn", "args", "rv", "out", "seq"});
  if (!trace.ok()) throw Unusable{trace.status().message()};
  header = std::move(trace->header);
  std::vector<Call> calls;
  calls.reserve(trace->calls.size());
  for (trace_file::Record& r : trace->calls) calls.push_back(Call{std::move(r)});
  return calls;
}

Bytes Hex(const json& v) {
  if (!v.is_string()) return {};
  Result<Bytes> b = HexDecode(v.get<std::string>());
  if (!b.ok()) throw Unusable{"bad hex in the trace: " + b.status().message()};
  return std::move(b).value();
}

bool IsRedacted(const json& v) { return v.is_object() && v.value("redacted", false); }

std::string RvName(CK_RV rv) { return CkRvName(rv); }

// One line describing a recorded call: "#15 C_Sign(hSession=1, ...) -> CKR_OK".
std::string Describe(const Call& c) {
  std::ostringstream s;
  s << "#" << c.j.value("seq", 0) << " " << c.fn() << "(";
  bool first = true;
  for (auto& [k, v] : c.args().items()) {
    if (!first) s << ", ";
    first = false;
    std::string val;
    if (v.is_object() && v.contains("name")) {
      val = v["name"].get<std::string>();
    } else if (v.is_array()) {
      val = "[" + std::to_string(v.size()) + " attributes]";
    } else if (v.is_string() && v.get<std::string>().size() > 16) {
      val = v.get<std::string>().substr(0, 16) + "...";
    } else if (IsRedacted(v)) {
      val = "<redacted>";
    } else {
      val = v.dump();
    }
    s << k << "=" << val;
  }
  s << ") -> " << c.j.at("rv").at("name").get<std::string>();
  return s.str();
}

// The identifying attributes of an object: CKA_CLASS, CKA_ID, CKA_LABEL (hex values).
using Identity = std::map<CK_ATTRIBUTE_TYPE, std::string>;
// A recorded object handle is the recording process's: (pid, handle).
using RecordedObject = std::pair<long long, CK_OBJECT_HANDLE>;
// A search template as the live module is given it: (type, value) pairs.
using SearchTemplate = std::vector<std::pair<CK_ATTRIBUTE_TYPE, Bytes>>;

bool Identifying(CK_ATTRIBUTE_TYPE t) { return t == CKA_CLASS || t == CKA_ID || t == CKA_LABEL; }

std::string IdentityText(const Identity& id) {
  std::string s;
  for (auto& [t, v] : id) {
    if (!s.empty()) s += ", ";
    s += AttributeName(t) + "=" + v;
  }
  return s.empty() ? "none known" : s;
}

struct SignState {
  CK_MECHANISM_TYPE mechanism = 0;
  json mechanism_json;
  CK_OBJECT_HANDLE live_key = CK_INVALID_HANDLE;
  Bytes data;  // accumulated by C_SignUpdate
};

class Replayer {
 public:
  Replayer(std::shared_ptr<Pkcs11Module> module, std::vector<Call> calls, Options options,
           std::optional<std::string> pin)
      : module_(std::move(module)),
        fn_(module_->functions()),
        calls_(std::move(calls)),
        options_(std::move(options)),
        pin_(std::move(pin)) {}

  // What became of each call: "" = matched the recording, otherwise why not. A trace that cannot
  // be replayed stops the run (unusable set; verdicts hold the calls replayed before it).
  struct Outcome {
    std::vector<std::string> verdicts;
    std::optional<std::string> unusable;
  };

  Outcome Collect() {
    Prepass();
    Outcome outcome;
    for (const Call& call : calls_) {
      current_ = outcome.verdicts.size();
      try {
        outcome.verdicts.push_back(ReplayOne(call));
      } catch (const Unusable& u) {
        outcome.unusable = "cannot replay " + Describe(call) + ": " + u.message;
        break;
      }
    }
    return outcome;
  }

  int Run() {
    const Outcome outcome = Collect();
    size_t matched = 0, diverged = 0;
    std::optional<size_t> first;
    for (size_t i = 0; i < outcome.verdicts.size(); ++i) {
      if (outcome.verdicts[i].empty()) {
        ++matched;
      } else {
        ++diverged;
        if (!first) first = i;
      }
    }
    const size_t replayed = outcome.verdicts.size();
    if (outcome.unusable) {
      std::cout << "signum-replay: " << *outcome.unusable << "\nsummary: " << replayed
                << " calls replayed, " << matched << " matched, " << diverged
                << " diverged (stopped at line " << calls_[replayed].line << ")\n";
      return trace_file::kReplayUnusable;
    }
    if (first) {
      const Call& c = calls_[*first];
      std::cout << "first divergence: #" << c.j.value("seq", 0) << " " << c.fn() << " (trace line "
                << c.line << "): " << outcome.verdicts[*first] << "\n";
      PrintContext(calls_, *first);
    }
    PrintNotes();
    std::cout << "summary: " << replayed << " calls replayed, " << matched << " matched, "
              << diverged << " diverged";
    if (options_.cross_module) std::cout << ", " << notes_.size() << " notes";
    std::cout << "\n";
    return first ? trace_file::kReplayDiverged : trace_file::kReplayMatched;
  }

  // Differences --cross-module found but the caller did not depend on.
  void PrintNotes() const {
    if (notes_.empty()) return;
    const size_t shown = options_.show_notes ? notes_.size() : std::min<size_t>(notes_.size(), 3);
    for (size_t k = 0; k < shown; ++k) {
      const Call& c = calls_[notes_[k].first];
      std::cout << "note: #" << c.j.value("seq", 0) << " " << c.fn() << ": " << notes_[k].second
                << "\n";
    }
    if (shown < notes_.size())
      std::cout << "note: ... " << notes_.size() - shown << " more (--notes lists them)\n";
  }

  const std::vector<Call>& calls() const { return calls_; }

  static void PrintContext(const std::vector<Call>& calls, size_t at) {
    const size_t from = at >= 2 ? at - 2 : 0;
    const size_t to = std::min(calls.size(), at + 3);
    for (size_t k = from; k < to; ++k)
      std::cout << (k == at ? "  > " : "    ") << Describe(calls[k]) << "\n";
  }

 private:
  // Recorded slot -> token label, recorded object handle -> identifying attributes.
  void Prepass() {
    std::map<std::pair<long long, CK_SESSION_HANDLE>, Identity> find_templates;
    for (size_t i = 0; i < calls_.size(); ++i) last_call_[calls_[i].pid()] = i;
    for (const Call& c : calls_) {
      const std::string fn = c.fn();
      if (fn == "C_GetTokenInfo" && c.rv() == CKR_OK && c.out().contains("pInfo")) {
        const json& info = c.out()["pInfo"];
        if ((info.value("flags", 0ULL) & CKF_TOKEN_INITIALIZED) != 0)
          slot_labels_[c.args().at("slotID").get<CK_SLOT_ID>()] = info.value("label", "");
        else
          empty_slots_.insert(c.args().at("slotID").get<CK_SLOT_ID>());
      } else if (fn == "C_GetTokenInfo" && c.rv() == CKR_TOKEN_NOT_PRESENT) {
        empty_slots_.insert(c.args().at("slotID").get<CK_SLOT_ID>());
      } else if (fn == "C_FindObjectsInit" && c.rv() == CKR_OK) {
        Identity id;
        for (const json& a : c.args().at("pTemplate"))
          if (Identifying(a.at("type").get<CK_ATTRIBUTE_TYPE>()) && a.contains("value") &&
              a["value"].is_string())
            id[a["type"].get<CK_ATTRIBUTE_TYPE>()] = a["value"].get<std::string>();
        find_templates[{c.pid(), c.args().at("hSession").get<CK_SESSION_HANDLE>()}] = id;
      } else if (fn == "C_FindObjects" && c.rv() == CKR_OK && c.out().contains("phObject")) {
        const Identity& id =
            find_templates[{c.pid(), c.args().at("hSession").get<CK_SESSION_HANDLE>()}];
        for (const json& h : c.out()["phObject"]) {
          Identity& known = identities_[{c.pid(), h.get<CK_OBJECT_HANDLE>()}];
          for (auto& [t, v] : id) known[t] = v;
        }
      } else if (fn == "C_SignInit" || fn == "C_VerifyInit") {
        operated_on_.insert({c.pid(), c.args().at("hKey").get<CK_OBJECT_HANDLE>()});
        if (c.args().at("pMechanism").is_object())
          operating_mechanisms_.insert(c.args()["pMechanism"].at("type").get<CK_MECHANISM_TYPE>());
      } else if (fn == "C_GetAttributeValue" && c.out().contains("pTemplate")) {
        Identity& known = identities_[{c.pid(), c.args().at("hObject").get<CK_OBJECT_HANDLE>()}];
        for (const json& a : c.out()["pTemplate"])
          if (Identifying(a.at("type").get<CK_ATTRIBUTE_TYPE>()) && a.contains("value") &&
              a["value"].is_string() && a.value("length", -1LL) >= 0)
            known[a["type"].get<CK_ATTRIBUTE_TYPE>()] = a["value"].get<std::string>();
      }
    }
  }

  // --- handle mapping -------------------------------------------------------------------------

  CK_SLOT_ID LiveSlot(CK_SLOT_ID recorded) {
    if (auto it = slot_map_.find(recorded); it != slot_map_.end()) return it->second;
    std::optional<std::string> label;
    if (options_.token) {
      label = options_.token;
    } else if (auto it = slot_labels_.find(recorded); it != slot_labels_.end()) {
      label = it->second;
    }
    if (label) {
      Result<CK_SLOT_ID> live = module_->FindSlotByTokenLabel(*label);
      if (!live.ok())
        throw Unusable{"recorded slot " + std::to_string(recorded) + " (token '" + *label +
                       "'): " + live.status().message()};
      slot_map_[recorded] = *live;
      return *live;
    }
    return recorded;  // a slot without a token label: kept (mapped by position in C_GetSlotList)
  }

  CK_SESSION_HANDLE LiveSession(const Call& c, const char* name = "hSession") {
    CK_SESSION_HANDLE recorded = c.args().at(name).get<CK_SESSION_HANDLE>();
    auto it = sessions_.find({c.pid(), recorded});
    // An unknown session (never opened in the trace) stays as recorded: the module judges it.
    return it == sessions_.end() ? recorded : it->second;
  }

  // Reads CKA_CLASS, CKA_ID, CKA_LABEL of a live object (those that identity names).
  Identity LiveIdentity(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, const Identity& want) {
    Identity id;
    for (auto& [type, unused] : want) {
      (void)unused;
      CK_ATTRIBUTE a{type, nullptr, 0};
      if (fn_->C_GetAttributeValue(session, object, &a, 1) != CKR_OK ||
          a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        continue;
      Bytes v(a.ulValueLen);
      a.pValue = v.data();
      if (fn_->C_GetAttributeValue(session, object, &a, 1) != CKR_OK) continue;
      v.resize(a.ulValueLen);
      id[type] = HexEncode(v);
    }
    return id;
  }

  // The attributes a recorded object is matched by: all of its identity, except that across
  // modules CKA_ID (each module's own) gives way to the label when there is one.
  // Without a label, the recorded CKA_ID is translated to the live one (LiveId).
  Identity MatchingIdentity(CK_SESSION_HANDLE session, Identity id) {
    if (!options_.cross_module) return id;
    if (id.count(CKA_LABEL)) {
      id.erase(CKA_ID);
    } else if (auto it = id.find(CKA_ID); it != id.end()) {
      it->second = LiveId(session, it->second);
    }
    return id;
  }

  // Across modules: the live CKA_ID of the objects the recording knew under `recorded` (hex),
  // found through the label the trace shows beside it. Unchanged when the trace shows no label.
  std::string LiveId(CK_SESSION_HANDLE session, const std::string& recorded) {
    if (auto it = id_map_.find(recorded); it != id_map_.end()) return it->second;
    for (auto& [handle, id] : identities_) {
      (void)handle;
      auto rid = id.find(CKA_ID);
      if (rid == id.end() || rid->second != recorded || !id.count(CKA_LABEL)) continue;
      Identity by_label = id;
      by_label.erase(CKA_ID);
      std::optional<CK_OBJECT_HANDLE> live = FindByIdentity(session, by_label);
      if (!live) continue;
      Identity live_id = LiveIdentity(session, *live, {{CKA_ID, ""}});
      if (!live_id.count(CKA_ID)) continue;
      id_map_[recorded] = live_id[CKA_ID];
      if (live_id[CKA_ID] != recorded)
        Note("CKA_ID " + recorded + " is " + live_id[CKA_ID] + " here (matched by label)");
      return live_id[CKA_ID];
    }
    return recorded;
  }

  void Note(std::string text) { notes_.emplace_back(current_, std::move(text)); }

  // Finds the live object with the recorded object's identifying attributes. The search runs in
  // a session of its own on the caller's slot: the caller may be in the middle of a search of its
  // own (reading attributes between C_FindObjects calls), where C_FindObjectsInit would fail.
  std::optional<CK_OBJECT_HANDLE> FindByIdentity(CK_SESSION_HANDLE caller, const Identity& id) {
    SearchTemplate search;
    for (auto& [type, value] : id) search.emplace_back(type, Hex(value));
    std::vector<CK_OBJECT_HANDLE> found = SearchInOwnSession(caller, search, 2);
    if (found.empty()) return std::nullopt;
    return found.front();
  }

  // Every live object matching `search` (at most `max`), found in a session of our own on the
  // caller's session's slot (the caller's own if none can be opened).
  std::vector<CK_OBJECT_HANDLE> SearchInOwnSession(CK_SESSION_HANDLE caller,
                                                   const SearchTemplate& search, CK_ULONG max) {
    CK_SESSION_INFO info{};
    CK_SESSION_HANDLE own = CK_INVALID_HANDLE;
    const bool have_own =
        fn_->C_GetSessionInfo(caller, &info) == CKR_OK &&
        fn_->C_OpenSession(info.slotID, CKF_SERIAL_SESSION, nullptr, nullptr, &own) == CKR_OK;
    const CK_SESSION_HANDLE session = have_own ? own : caller;
    std::vector<CK_ATTRIBUTE> tmpl;
    for (const auto& [type, value] : search)
      tmpl.push_back(CK_ATTRIBUTE{type, const_cast<uint8_t*>(value.data()),
                                  static_cast<CK_ULONG>(value.size())});
    std::vector<CK_OBJECT_HANDLE> found(max);
    CK_ULONG count = 0;
    if (fn_->C_FindObjectsInit(session, tmpl.data(), static_cast<CK_ULONG>(tmpl.size())) ==
        CKR_OK) {
      if (fn_->C_FindObjects(session, found.data(), max, &count) != CKR_OK) count = 0;
      fn_->C_FindObjectsFinal(session);
    }
    if (have_own) fn_->C_CloseSession(own);
    found.resize(count);
    return found;
  }

  // The live handle for a recorded object handle; nullopt when no live object has its identity.
  std::optional<CK_OBJECT_HANDLE> LiveObject(CK_SESSION_HANDLE session, RecordedObject recorded) {
    if (auto it = objects_.find(recorded); it != objects_.end()) return it->second;
    auto id = identities_.find(recorded);
    if (id == identities_.end() || id->second.empty())
      throw Unusable{"object handle " + std::to_string(recorded.second) +
                     " is used but the trace never shows its class, CKA_ID or label"};
    std::optional<CK_OBJECT_HANDLE> live =
        FindByIdentity(session, MatchingIdentity(session, id->second));
    if (live) objects_[recorded] = *live;
    return live;
  }

  // --- comparisons ----------------------------------------------------------------------------

  static std::string RvDiff(const Call& c, CK_RV live) {
    if (live == c.rv()) return "";
    return "returned " + RvName(live) + ", recorded " + RvName(c.rv());
  }

  // Compares the named members of a recorded info object with live values.
  static std::string InfoDiff(const json& recorded, const json& live,
                              std::initializer_list<const char*> members) {
    for (const char* m : members) {
      if (!recorded.contains(m)) continue;
      if (recorded[m] != live[m])
        return std::string(m) + " is " + live[m].dump() + ", recorded " + recorded[m].dump();
    }
    return "";
  }

  // A caller asked for an interface the recorded module did not have (NSS asks for
  // CKF_INTERFACE_FORK_SAFE, then for its vendor FIPS interface) and fell back: the same request
  // to the live module. A 2.40 module has no C_GetInterface; the caller falls back there too.
  std::string GetInterfaceRefused(const Call& c) {
    CK_FUNCTION_LIST_3_0_PTR list = module_->functions_3_0();
    if (list == nullptr || list->C_GetInterface == nullptr) return "";
    const json& a = c.args();
    std::string name = a.value("pInterfaceName", json()).is_string()
                           ? a["pInterfaceName"].get<std::string>()
                           : std::string();
    CK_VERSION version{};
    const json& v = a.value("pVersion", json());
    if (v.is_object()) {
      version.major = v.value("major", CK_BYTE{0});
      version.minor = v.value("minor", CK_BYTE{0});
    }
    CK_INTERFACE_PTR found = nullptr;
    const CK_RV rv = list->C_GetInterface(
        a.value("pInterfaceName", json()).is_string() ? reinterpret_cast<CK_UTF8CHAR_PTR>(name.data())
                                                      : nullptr,
        v.is_object() ? &version : nullptr, &found, a.value("flags", CK_FLAGS{0}));
    if (rv == CKR_OK) return Judged("C_GetInterface(" + a.dump() + ") is granted here");
    return "";  // refused here too (the exact error code of a refusal is the module's own)
  }

  // Each recorded process had the module to itself: its own login state, sessions and handles.
  // When one initialises after every earlier one is over (finalised, or no call of it follows:
  // a JVM exits without C_Finalize), the live module starts afresh too, so the earlier login
  // does not carry over. Processes that overlap in the trace share the live module.
  std::string InitializeProcess(const Call& c) {
    bool overlapping = false;
    for (long long pid : started_pids_)
      if (pid != c.pid() && !finalized_pids_.count(pid) && last_call_[pid] > current_)
        overlapping = true;
    if (!started_pids_.empty() && !overlapping) {
      fn_->C_Finalize(nullptr);
      CK_C_INITIALIZE_ARGS args{};
      args.flags = CKF_OS_LOCKING_OK;
      if (CK_RV rv = fn_->C_Initialize(&args); rv != CKR_OK)
        throw Unusable{"the module does not initialise again (" + RvName(rv) + ")"};
      sessions_.clear();
      objects_.clear();
      signs_.clear();
      slot_map_.clear();
    }
    started_pids_.insert(c.pid());
    finalized_pids_.erase(c.pid());
    return "";
  }

  // A difference in what the module says about itself: across modules only a note.
  std::string Judged(std::string difference) {
    if (!options_.cross_module || difference.empty()) return difference;
    Note(difference);
    return "";
  }

  std::string TokenFlagsAcross(const json& recorded, const CK_TOKEN_INFO& live) {
    const CK_FLAGS was = recorded.value("flags", CK_FLAGS{0});
    if (((was ^ live.flags) & kTokenFlagsCallersFollow) != 0) {
      std::ostringstream s;
      s << "token flags the caller follows are 0x" << std::hex
        << (live.flags & kTokenFlagsCallersFollow) << ", recorded 0x"
        << (was & kTokenFlagsCallersFollow);
      return s.str();
    }
    if (was != live.flags) Judged(InfoDiff(recorded, json{{"flags", live.flags}}, {"flags"}));
    return "";
  }

  // A mechanism that could sign (or verify) when recorded must still; key sizes are noted.
  std::string MechanismFlagsAcross(const Call& c, CK_MECHANISM_TYPE type,
                                   const CK_MECHANISM_INFO& live) {
    const json recorded = c.out().value("pInfo", json::object());
    const CK_FLAGS was = recorded.value("flags", CK_FLAGS{0});
    // Only for the mechanisms the caller goes on to use: a module may leave the flags of others
    // unset (SoftHSM2 hands back whatever the caller's buffer held for CKM_AES_CBC_PAD).
    for (CK_FLAGS f : {CK_FLAGS{CKF_SIGN}, CK_FLAGS{CKF_VERIFY}})
      if (operating_mechanisms_.count(type) && (was & f) != 0 && (live.flags & f) == 0)
        return MechanismName(type) + (f == CKF_SIGN ? " cannot sign here" : " cannot verify here");
    json now = {{"ulMinKeySize", live.ulMinKeySize},
                {"ulMaxKeySize", live.ulMaxKeySize},
                {"flags", live.flags}};
    Judged(InfoDiff(recorded, now, {"ulMinKeySize", "ulMaxKeySize", "flags"}));
    return "";
  }

  // --- the calls ------------------------------------------------------------------------------

  std::string ReplayOne(const Call& c) {
    const std::string fn = c.fn();
    const json& a = c.args();
    const json& out = c.out();

    // Loading the module already did C_GetInterface/C_GetFunctionList and C_Initialize; the
    // module object finalizes at exit.
    if (fn == "C_GetInterface" && c.rv() != CKR_OK) return GetInterfaceRefused(c);
    if (fn == "C_Initialize" && c.rv() == CKR_OK) return InitializeProcess(c);
    if (fn == "C_Finalize" && c.rv() == CKR_OK) {
      finalized_pids_.insert(c.pid());
      return "";
    }
    if (fn == "C_GetInterface" || fn == "C_GetFunctionList" || fn == "C_Initialize" ||
        fn == "C_Finalize" || fn == "C_GetInterfaceList") {
      if (c.rv() == CKR_OK || c.rv() == CKR_CRYPTOKI_ALREADY_INITIALIZED) return "";
      return "recorded " + RvName(c.rv()) + ", the module loaded and initialised";
    }
    // Across modules, a slot that held no initialised token when recorded (SoftHSM2's spare slot)
    // has no counterpart: what the caller asked about it is noted, not replayed.
    if (options_.cross_module && a.contains("slotID") && a["slotID"].is_number_unsigned() &&
        empty_slots_.count(a["slotID"].get<CK_SLOT_ID>())) {
      Note("slot " + a["slotID"].dump() + " held no initialised token when recorded; not replayed");
      return "";
    }
    if (fn == "C_GetInfo") {
      CK_INFO info{};
      CK_RV rv = fn_->C_GetInfo(&info);
      if (auto d = RvDiff(c, rv); !d.empty() || rv != CKR_OK) return d;
      json live = {
          {"cryptokiVersion",
           {{"major", info.cryptokiVersion.major}, {"minor", info.cryptokiVersion.minor}}}};
      return Judged(InfoDiff(out.value("pInfo", json::object()), live, {"cryptokiVersion"}));
    }
    if (fn == "C_GetSlotList") return GetSlotList(c);
    if (fn == "C_GetSlotInfo") {
      CK_SLOT_INFO info{};
      CK_RV rv = fn_->C_GetSlotInfo(LiveSlot(a.at("slotID").get<CK_SLOT_ID>()), &info);
      if (auto d = RvDiff(c, rv); !d.empty() || rv != CKR_OK) return d;
      return Judged(
          InfoDiff(out.value("pInfo", json::object()), json{{"flags", info.flags}}, {"flags"}));
    }
    if (fn == "C_GetTokenInfo") {
      CK_TOKEN_INFO info{};
      CK_RV rv = fn_->C_GetTokenInfo(LiveSlot(a.at("slotID").get<CK_SLOT_ID>()), &info);
      if (auto d = RvDiff(c, rv); !d.empty() || rv != CKR_OK) return d;
      json live = {{"flags", info.flags}, {"label", TrimPadded(info.label, sizeof info.label)}};
      if (options_.cross_module) return TokenFlagsAcross(out.value("pInfo", json::object()), info);
      if (options_.token) return InfoDiff(out.value("pInfo", json::object()), live, {"flags"});
      return InfoDiff(out.value("pInfo", json::object()), live, {"label", "flags"});
    }
    if (fn == "C_GetMechanismList") return GetMechanismList(c);
    if (fn == "C_GetMechanismInfo") {
      CK_MECHANISM_INFO info{};
      const CK_MECHANISM_TYPE type = a.at("type").at("type").get<CK_MECHANISM_TYPE>();
      CK_RV rv = fn_->C_GetMechanismInfo(LiveSlot(a.at("slotID").get<CK_SLOT_ID>()), type, &info);
      if (options_.cross_module && rv != c.rv() && unoffered_.count(type)) {
        Note("asked about " + MechanismName(type) + ", which this module does not offer: " +
             RvDiff(c, rv));
        return "";
      }
      if (auto d = RvDiff(c, rv); !d.empty() || rv != CKR_OK) return d;
      if (options_.cross_module) return MechanismFlagsAcross(c, type, info);
      json live = {{"ulMinKeySize", info.ulMinKeySize},
                   {"ulMaxKeySize", info.ulMaxKeySize},
                   {"flags", info.flags}};
      return InfoDiff(out.value("pInfo", json::object()), live,
                      {"ulMinKeySize", "ulMaxKeySize", "flags"});
    }
    if (fn == "C_OpenSession") {
      CK_SESSION_HANDLE live = CK_INVALID_HANDLE;
      CK_RV rv = fn_->C_OpenSession(LiveSlot(a.at("slotID").get<CK_SLOT_ID>()),
                                    a.at("flags").get<CK_FLAGS>(), nullptr, nullptr, &live);
      if (rv == CKR_OK && out.contains("phSession"))
        sessions_[{c.pid(), out["phSession"].get<CK_SESSION_HANDLE>()}] = live;
      return RvDiff(c, rv);
    }
    if (fn == "C_CloseSession") {
      CK_SESSION_HANDLE live = LiveSession(c);
      CK_RV rv = fn_->C_CloseSession(live);
      if (rv == CKR_OK) sessions_.erase({c.pid(), a.at("hSession").get<CK_SESSION_HANDLE>()});
      return RvDiff(c, rv);
    }
    if (fn == "C_CloseAllSessions") {
      return RvDiff(c, fn_->C_CloseAllSessions(LiveSlot(a.at("slotID").get<CK_SLOT_ID>())));
    }
    if (fn == "C_GetSessionInfo") {
      CK_SESSION_INFO info{};
      CK_RV rv = fn_->C_GetSessionInfo(LiveSession(c), &info);
      if (auto d = RvDiff(c, rv); !d.empty() || rv != CKR_OK) return d;
      return InfoDiff(out.value("pInfo", json::object()),
                      json{{"state", info.state}, {"flags", info.flags}}, {"state", "flags"});
    }
    if (fn == "C_Login") {
      const json& pin = a.at("pPin");
      std::string value;
      if (IsRedacted(pin)) {
        if (!pin_)
          throw Unusable{"the trace logs in; give the PIN with --pin-file or SIGNUM_REPLAY_PIN"};
        value = *pin_;
      } else if (pin.is_string()) {
        Bytes b = Hex(pin);
        value.assign(b.begin(), b.end());
      }
      CK_RV rv =
          fn_->C_Login(LiveSession(c), a.at("userType").get<CK_USER_TYPE>(),
                       pin.is_null() ? nullptr : reinterpret_cast<CK_UTF8CHAR_PTR>(value.data()),
                       static_cast<CK_ULONG>(value.size()));
      return RvDiff(c, rv);
    }
    if (fn == "C_Logout") {
      const CK_RV rv = fn_->C_Logout(LiveSession(c));
      // Either way nobody is logged in afterwards; SoftHSM2 says CKR_OK to a logout without a
      // login (gnupg-pkcs11-scd logs out first, and ignores the answer), the spec
      // CKR_USER_NOT_LOGGED_IN. Across modules that difference is a note.
      const bool both_logged_out = (rv == CKR_OK || rv == CKR_USER_NOT_LOGGED_IN) &&
                                   (c.rv() == CKR_OK || c.rv() == CKR_USER_NOT_LOGGED_IN);
      return both_logged_out ? Judged(RvDiff(c, rv)) : RvDiff(c, rv);
    }
    if (fn == "C_FindObjectsInit") {
      std::vector<Bytes> values;
      std::vector<CK_ATTRIBUTE> tmpl;
      for (const json& t : a.at("pTemplate")) {
        if (IsRedacted(t.value("value", json())))
          throw Unusable{"a redacted value in the template"};
        if (options_.cross_module && t.at("type").get<CK_ATTRIBUTE_TYPE>() == CKA_ID &&
            t.value("value", json()).is_string()) {
          values.push_back(Hex(json(LiveId(LiveSession(c), t["value"].get<std::string>()))));
          continue;
        }
        values.push_back(Hex(t.value("value", json())));
      }
      size_t k = 0;
      SearchTemplate& search = searches_[LiveSession(c)];
      search.clear();
      for (const json& t : a.at("pTemplate")) {
        tmpl.push_back(CK_ATTRIBUTE{t.at("type").get<CK_ATTRIBUTE_TYPE>(), values[k].data(),
                                    static_cast<CK_ULONG>(values[k].size())});
        search.emplace_back(tmpl.back().type, values[k]);
        ++k;
      }
      return RvDiff(c, fn_->C_FindObjectsInit(LiveSession(c), tmpl.data(),
                                              static_cast<CK_ULONG>(tmpl.size())));
    }
    if (fn == "C_FindObjects") return FindObjects(c);
    if (fn == "C_FindObjectsFinal") return RvDiff(c, fn_->C_FindObjectsFinal(LiveSession(c)));
    if (fn == "C_GetAttributeValue") return GetAttributeValue(c);
    if (fn == "C_SignInit") return SignInit(c);
    if (fn == "C_Sign" || fn == "C_SignFinal") return Sign(c, fn == "C_SignFinal");
    if (fn == "C_SignUpdate") {
      Bytes part = Hex(a.at("pPart"));
      CK_RV rv = fn_->C_SignUpdate(LiveSession(c), part.data(), static_cast<CK_ULONG>(part.size()));
      if (rv == CKR_OK) {
        SignState& s = signs_[LiveSession(c)];
        s.data.insert(s.data.end(), part.begin(), part.end());
      }
      return RvDiff(c, rv);
    }
    if (fn == "C_SeedRandom") {
      Bytes seed = Hex(a.at("pSeed"));
      CK_RV rv = fn_->C_SeedRandom(LiveSession(c), seed.data(), static_cast<CK_ULONG>(seed.size()));
      // Callers (NSS) seed and ignore the answer: across modules only a note.
      return Judged(RvDiff(c, rv));
    }
    if (fn == "C_GenerateRandom") {
      // Random bytes: only the length can be compared.
      CK_ULONG len = a.at("ulRandomLen").get<CK_ULONG>();
      Bytes buf(len);
      CK_RV rv = fn_->C_GenerateRandom(LiveSession(c), buf.data(), len);
      return RvDiff(c, rv);
    }
    throw Unusable{fn + " is not replayed by this version of signum-replay"};
  }

  // The count a list function reports for a length query (0 when it fails: the real call judges).
  template <typename Query>
  static CK_ULONG LiveCount(Query query) {
    CK_ULONG n = 0;
    return query(&n) == CKR_OK ? n : 0;
  }

  std::string GetSlotList(const Call& c) {
    const json& a = c.args();
    const json& out = c.out();
    CK_BBOOL present = a.at("tokenPresent").get<bool>() ? CK_TRUE : CK_FALSE;
    const bool buffer = a.at("pSlotList").value("buffer", false);
    CK_ULONG count = a.at("pulCount").is_null() ? 0 : a["pulCount"].get<CK_ULONG>();
    // Across modules the list has its own length: the buffer is made to fit it.
    if (options_.cross_module && buffer) count = std::max(count, LiveCount([&](CK_ULONG* n) {
                                                  return fn_->C_GetSlotList(present, nullptr, n);
                                                }));
    std::vector<CK_SLOT_ID> slots(buffer ? count : 0);
    CK_RV rv = fn_->C_GetSlotList(present, buffer ? slots.data() : nullptr, &count);
    if (auto d = RvDiff(c, rv); !d.empty()) return d;
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) return "";
    if (out.contains("pulCount") && out["pulCount"].get<CK_ULONG>() != count) {
      const std::string d =
          "*pulCount is " + std::to_string(count) + ", recorded " + out["pulCount"].dump();
      if (!options_.cross_module) return d;
      Note(d);  // and on: the recorded entries are still looked for
    }
    if (rv == CKR_OK && buffer && out.contains("pSlotList")) {
      // Slots with a recorded token label map to the live slot of that token; the others by
      // their position in the list.
      const json& rec = out["pSlotList"];
      for (size_t k = 0; k < rec.size() && k < count; ++k) {
        CK_SLOT_ID r = rec[k].get<CK_SLOT_ID>();
        if (!slot_labels_.count(r) && !options_.token && !slot_map_.count(r) &&
            !(options_.cross_module && empty_slots_.count(r)))
          slot_map_[r] = slots[k];
      }
      for (size_t k = 0; k < rec.size(); ++k) {
        CK_SLOT_ID r = rec[k].get<CK_SLOT_ID>();
        if (!slot_labels_.count(r) && !(options_.token && slot_map_.count(r))) continue;
        CK_SLOT_ID live = LiveSlot(r);
        if (std::find(slots.begin(), slots.begin() + static_cast<long>(count), live) ==
            slots.begin() + static_cast<long>(count))
          return "slot " + std::to_string(r) + " (mapped to " + std::to_string(live) +
                 ") is not in the live slot list";
      }
    }
    return "";
  }

  std::string GetMechanismList(const Call& c) {
    const json& a = c.args();
    const json& out = c.out();
    const bool buffer = a.at("pMechanismList").value("buffer", false);
    CK_ULONG count = a.at("pulCount").is_null() ? 0 : a["pulCount"].get<CK_ULONG>();
    const CK_SLOT_ID slot = LiveSlot(a.at("slotID").get<CK_SLOT_ID>());
    if (options_.cross_module && buffer) count = std::max(count, LiveCount([&](CK_ULONG* n) {
                                                  return fn_->C_GetMechanismList(slot, nullptr, n);
                                                }));
    std::vector<CK_MECHANISM_TYPE> mechs(buffer ? count : 0);
    CK_RV rv = fn_->C_GetMechanismList(slot, buffer ? mechs.data() : nullptr, &count);
    if (auto d = RvDiff(c, rv); !d.empty()) return d;
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) return "";
    if (out.contains("pulCount") && out["pulCount"].get<CK_ULONG>() != count) {
      const std::string d =
          "*pulCount is " + std::to_string(count) + ", recorded " + out["pulCount"].dump();
      if (!options_.cross_module) return d;
      Note(d);  // and on: the recorded entries are still looked for
    }
    if (rv == CKR_OK && buffer && out.contains("pMechanismList")) {
      std::set<CK_MECHANISM_TYPE> live(mechs.begin(), mechs.begin() + static_cast<long>(count));
      std::vector<std::string> missing;
      for (const json& m : out["pMechanismList"]) {
        const CK_MECHANISM_TYPE type = m.at("type").get<CK_MECHANISM_TYPE>();
        if (live.count(type)) continue;
        if (!options_.cross_module)
          return m.value("name", std::string("?")) + " was offered when recorded, not now";
        unoffered_.insert(type);
        missing.push_back(m.value("name", std::string("?")));
      }
      // Across modules a mechanism the caller then uses fails at its C_*Init; the rest is noted.
      if (!missing.empty()) {
        std::string list;
        for (const std::string& name : missing) list += (list.empty() ? "" : ", ") + name;
        Note(std::to_string(missing.size()) + " recorded mechanisms not offered here: " + list);
      }
    }
    return "";
  }

  std::string FindObjects(const Call& c) {
    const json& a = c.args();
    const json& out = c.out();
    CK_SESSION_HANDLE session = LiveSession(c);
    CK_ULONG max = a.at("ulMaxObjectCount").get<CK_ULONG>();
    const bool buffer = a.at("phObject").value("buffer", false);
    std::vector<CK_OBJECT_HANDLE> found(buffer ? max : 0);
    CK_ULONG count = 0;
    CK_RV rv = fn_->C_FindObjects(session, buffer ? found.data() : nullptr, max, &count);
    if (auto d = RvDiff(c, rv); !d.empty() || rv != CKR_OK) return d;
    found.resize(count);
    if (options_.cross_module) return FoundAcross(c, session, found);
    if (out.contains("pulObjectCount") && out["pulObjectCount"].get<CK_ULONG>() != count)
      return "found " + std::to_string(count) + " objects, recorded " +
             out["pulObjectCount"].dump();
    // Each recorded handle maps to the live one with its identifying attributes.
    std::set<CK_OBJECT_HANDLE> used;
    const json recorded = out.value("phObject", json::array());
    for (size_t k = 0; k < recorded.size() && k < found.size(); ++k) {
      CK_OBJECT_HANDLE r = recorded[k].get<CK_OBJECT_HANDLE>();
      const Identity& want = identities_[{c.pid(), r}];
      std::optional<CK_OBJECT_HANDLE> match;
      if (want.empty()) {
        match = found[k];
      } else {
        for (CK_OBJECT_HANDLE h : found)
          if (!used.count(h) && LiveIdentity(session, h, want) == want) {
            match = h;
            break;
          }
      }
      if (!match)
        return "no live object found here has the identity of recorded object " +
               std::to_string(r) + " (" + IdentityText(want) + ")";
      used.insert(*match);
      objects_[{c.pid(), r}] = *match;
    }
    return "";
  }

  // Across modules a search may find more or fewer objects; it diverges only when an object the
  // caller went on to sign with is not among them.
  std::string FoundAcross(const Call& c, CK_SESSION_HANDLE session,
                          const std::vector<CK_OBJECT_HANDLE>& found) {
    std::set<CK_OBJECT_HANDLE> used;
    const json recorded = c.out().value("phObject", json::array());
    for (const json& r_json : recorded) {
      const CK_OBJECT_HANDLE r = r_json.get<CK_OBJECT_HANDLE>();
      const Identity want = MatchingIdentity(session, identities_[{c.pid(), r}]);
      std::optional<CK_OBJECT_HANDLE> match;
      for (CK_OBJECT_HANDLE h : found)
        if (!used.count(h) && (want.empty() || LiveIdentity(session, h, want) == want)) {
          match = h;
          break;
        }
      if (match) {
        used.insert(*match);
        objects_[{c.pid(), r}] = *match;
        continue;
      }
      const std::string what =
          "recorded object " + std::to_string(r) + " (" + IdentityText(want) + ")";
      // Modules hand out matches in their own order (SoftHSM2's differs per token): a caller
      // fetching one at a time (libp11) would have met it later in the same search.
      if (auto later = LaterInSearch(session, want)) {
        objects_[{c.pid(), r}] = *later;
        Note(what + " comes in another order in this search here");
        continue;
      }
      if (operated_on_.count({c.pid(), r})) return "the caller signs with " + what + "; this search misses it";
      Note(what + " is not found here");
    }
    if (found.size() != recorded.size())
      Note("found " + std::to_string(found.size()) + " objects, recorded " +
           std::to_string(recorded.size()));
    return "";
  }

  // The live object with identity `want` among everything the session's current search matches.
  std::optional<CK_OBJECT_HANDLE> LaterInSearch(CK_SESSION_HANDLE session, const Identity& want) {
    auto search = searches_.find(session);
    if (search == searches_.end() || want.empty()) return std::nullopt;
    for (CK_OBJECT_HANDLE h : SearchInOwnSession(session, search->second, kMaxSearchResults))
      if (LiveIdentity(session, h, want) == want) return h;
    return std::nullopt;
  }

  // Across modules: the caller's template as recorded, each buffer as large as the recorded one
  // or the live value, and every attribute judged by its rule (cross_module.h).
  std::string AttributesAcross(const Call& c, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) {
    const json& in = c.args().at("pTemplate");
    std::vector<CK_ATTRIBUTE> query;
    for (const json& t : in) query.push_back({t.at("type").get<CK_ATTRIBUTE_TYPE>(), nullptr, 0});
    (void)fn_->C_GetAttributeValue(session, object, query.data(),
                                   static_cast<CK_ULONG>(query.size()));
    std::vector<Bytes> buffers;
    std::vector<CK_ATTRIBUTE> tmpl;
    for (size_t i = 0; i < query.size(); ++i) {
      const json& t = in[i];
      const bool buffer = t.value("buffer", false);
      size_t size = static_cast<size_t>(std::max(0LL, t.value("length", 0LL)));
      if (query[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
        size = std::max<size_t>(size, query[i].ulValueLen);
      buffers.emplace_back(buffer ? std::max<size_t>(size, 1) : 0);
      tmpl.push_back({query[i].type, buffer ? buffers.back().data() : nullptr,
                      static_cast<CK_ULONG>(buffer ? size : 0)});
    }
    const CK_RV rv = fn_->C_GetAttributeValue(session, object, tmpl.data(),
                                              static_cast<CK_ULONG>(tmpl.size()));
    const json rec = c.out().value("pTemplate", json::array());
    std::string divergence;
    for (size_t i = 0; i < rec.size() && i < tmpl.size() && divergence.empty(); ++i)
      divergence = AttributeAcross(session, rec[i], tmpl[i]);
    if (!divergence.empty()) return divergence;
    // A different return value that the attributes above explain (one the module does not have,
    // and the caller did not depend on) is noted.
    if (rv != c.rv()) Note(RvDiff(c, rv));
    return "";
  }

  std::string AttributeAcross(CK_SESSION_HANDLE session, const json& recorded,
                              const CK_ATTRIBUTE& live) {
    const std::string name = recorded.value("name", AttributeName(live.type));
    const long long was = recorded.value("length", -1LL);
    const long long now =
        live.ulValueLen == CK_UNAVAILABLE_INFORMATION ? -1 : static_cast<long long>(live.ulValueLen);
    const std::optional<AcrossModules> rule = RuleFor(live.type);
    auto differs = [&](const std::string& what) -> std::string {
      if (rule) return what;
      Note(what);
      return "";
    };
    if (was < 0 && now < 0) return "";
    if (was < 0) {
      Note(name + " is available here (" + std::to_string(now) + " bytes), not when recorded");
      return "";
    }
    if (now < 0) return differs(name + " is not available here, recorded " + std::to_string(was) +
                                " bytes");
    const bool have_values = recorded.contains("value") && recorded["value"].is_string() &&
                             live.pValue != nullptr;
    const std::string live_hex =
        have_values ? HexEncode(ByteView(static_cast<const uint8_t*>(live.pValue),
                                         static_cast<size_t>(now)))
                    : "";
    const std::string was_hex = have_values ? recorded["value"].get<std::string>() : "";
    switch (rule.value_or(AcrossModules::kSameValue)) {
      case AcrossModules::kSameValue:
        if (was != now)
          return differs(name + " length is " + std::to_string(now) + ", recorded " +
                         std::to_string(was));
        if (have_values && live_hex != was_hex)
          return differs(name + " is " + live_hex + ", recorded " + was_hex);
        return "";
      case AcrossModules::kSameSize:
        if (was != now)
          return name + " is " + std::to_string(now) + " bytes, recorded " + std::to_string(was) +
                 " (another key size, or another encoding)";
        return "";
      case AcrossModules::kPresent:
        return "";
      case AcrossModules::kMappedId:
        if (have_values && LiveId(session, was_hex) != live_hex)
          return name + " is " + live_hex + ", and the object recorded with " + was_hex +
                 " has " + LiveId(session, was_hex) + " here";
        return "";
    }
    return "";
  }

  std::string GetAttributeValue(const Call& c) {
    const json& a = c.args();
    const json& out = c.out();
    CK_SESSION_HANDLE session = LiveSession(c);
    CK_OBJECT_HANDLE recorded = a.at("hObject").get<CK_OBJECT_HANDLE>();
    std::optional<CK_OBJECT_HANDLE> object = LiveObject(session, {c.pid(), recorded});
    const std::string missing =
        "no live object has the identity of recorded object " + std::to_string(recorded) + " (" +
        IdentityText(MatchingIdentity(session, identities_[{c.pid(), recorded}])) + ")";
    if (options_.cross_module) {
      if (object) return AttributesAcross(c, session, *object);
      if (operated_on_.count({c.pid(), recorded})) return missing;
      Note(missing + "; its attributes were not read");
      return "";
    }
    if (!object) return missing;
    const json& in = a.at("pTemplate");
    std::vector<Bytes> buffers;
    std::vector<CK_ATTRIBUTE> tmpl;
    for (const json& t : in) {
      const bool buffer = t.value("buffer", false);
      long long len = t.value("length", 0LL);
      buffers.emplace_back(buffer && len > 0 ? static_cast<size_t>(len) : 0);
    }
    size_t k = 0;
    for (const json& t : in) {
      const bool buffer = t.value("buffer", false);
      tmpl.push_back(CK_ATTRIBUTE{t.at("type").get<CK_ATTRIBUTE_TYPE>(),
                                  buffer ? buffers[k].data() : nullptr,
                                  static_cast<CK_ULONG>(t.value("length", 0LL))});
      if (buffer && buffers[k].empty()) tmpl.back().pValue = buffers[k].data();
      ++k;
    }
    CK_RV rv =
        fn_->C_GetAttributeValue(session, *object, tmpl.data(), static_cast<CK_ULONG>(tmpl.size()));
    if (auto d = RvDiff(c, rv); !d.empty()) return d;
    if (!out.contains("pTemplate")) return "";
    const json& rec = out["pTemplate"];
    for (size_t i = 0; i < rec.size() && i < tmpl.size(); ++i) {
      const json& r = rec[i];
      const std::string name = r.value("name", AttributeName(tmpl[i].type));
      long long rlen = r.value("length", -1LL);
      long long llen = tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION
                           ? -1
                           : static_cast<long long>(tmpl[i].ulValueLen);
      if (rlen != llen)
        return name + " length is " + std::to_string(llen) + ", recorded " + std::to_string(rlen);
      if (llen < 0 || !r.contains("value") || IsRedacted(r["value"]) || tmpl[i].pValue == nullptr)
        continue;
      const std::string live = HexEncode(ByteView(buffers[i].data(), static_cast<size_t>(llen)));
      if (live != r["value"].get<std::string>())
        return name + " is " + live + ", recorded " + r["value"].get<std::string>();
    }
    return "";
  }

  std::string SignInit(const Call& c) {
    const json& a = c.args();
    CK_SESSION_HANDLE session = LiveSession(c);
    const json& m = a.at("pMechanism");
    if (m.is_null()) throw Unusable{"C_SignInit without a mechanism"};
    Bytes param = Hex(m.value("parameter", json()));
    CK_MECHANISM mech{m.at("type").get<CK_MECHANISM_TYPE>(), param.empty() ? nullptr : param.data(),
                      static_cast<CK_ULONG>(param.size())};
    CK_OBJECT_HANDLE recorded = a.at("hKey").get<CK_OBJECT_HANDLE>();
    std::optional<CK_OBJECT_HANDLE> key = LiveObject(session, {c.pid(), recorded});
    if (!key)
      return "no live key has the identity of recorded key " + std::to_string(recorded) + " (" +
             IdentityText(identities_[{c.pid(), recorded}]) + ")";
    CK_RV rv = fn_->C_SignInit(session, &mech, *key);
    if (rv == CKR_OK) signs_[session] = SignState{mech.mechanism, m, *key, {}};
    return RvDiff(c, rv);
  }

  std::string Sign(const Call& c, bool final) {
    const json& a = c.args();
    const json& out = c.out();
    CK_SESSION_HANDLE session = LiveSession(c);
    Bytes data = final ? Bytes{} : Hex(a.at("pData"));
    const bool buffer = a.at("pSignature").value("buffer", false);
    CK_ULONG len = a.at("pulSignatureLen").is_null() ? 0 : a["pulSignatureLen"].get<CK_ULONG>();
    Bytes sig(buffer ? len : 0);
    CK_RV rv = final ? fn_->C_SignFinal(session, buffer ? sig.data() : nullptr, &len)
                     : fn_->C_Sign(session, data.data(), static_cast<CK_ULONG>(data.size()),
                                   buffer ? sig.data() : nullptr, &len);
    std::optional<SignState> state;
    if (auto it = signs_.find(session); it != signs_.end()) {
      state = it->second;
      // The operation ends unless this was a length query or the buffer was too small.
      if (!(rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && !buffer))) signs_.erase(it);
    }
    if (auto d = RvDiff(c, rv); !d.empty()) return d;
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) return "";
    if (out.contains("pulSignatureLen") && out["pulSignatureLen"].get<CK_ULONG>() != len)
      return "signature length is " + std::to_string(len) + ", recorded " +
             out["pulSignatureLen"].dump();
    if (rv != CKR_OK || !buffer || !out.contains("pSignature")) return "";
    if (!state) return "";  // the module accepted a sign without a recorded C_SignInit
    sig.resize(len);
    Bytes recorded = Hex(out["pSignature"]);
    if (final) data = state->data;
    return JudgeSignature(session, *state, data, sig, recorded);
  }

  // --- signatures -----------------------------------------------------------------------------

  struct Scheme {
    SignatureScheme scheme;
    std::optional<HashAlgorithm> hash;  // hashed by the mechanism; nullopt: data is the digest
  };

  // The signing mechanisms core's hash table names (HashInfo ckm_rsa_pkcs / ckm_rsa_pss /
  // ckm_ecdsa), plus the three that sign what they are given.
  static std::optional<Scheme> SchemeFor(CK_MECHANISM_TYPE m) {
    switch (m) {
      case CKM_RSA_PKCS:
        return Scheme{SignatureScheme::kRsaPkcs1, std::nullopt};
      case CKM_RSA_PKCS_PSS:
        return Scheme{SignatureScheme::kRsaPss, std::nullopt};
      case CKM_ECDSA:
        return Scheme{SignatureScheme::kEcdsa, std::nullopt};
    }
    for (const HashInfo& h : AllHashes()) {
      if (m == h.ckm_rsa_pkcs) return Scheme{SignatureScheme::kRsaPkcs1, h.algorithm};
      if (m == h.ckm_rsa_pss) return Scheme{SignatureScheme::kRsaPss, h.algorithm};
      if (m == h.ckm_ecdsa) return Scheme{SignatureScheme::kEcdsa, h.algorithm};
    }
    return std::nullopt;
  }

  Result<Bytes> Attribute(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                          CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    CK_RV rv = fn_->C_GetAttributeValue(session, object, &a, 1);
    if (rv != CKR_OK) return CkStatus(rv, "C_GetAttributeValue(" + AttributeName(type) + ")");
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
      return NotFoundError(AttributeName(type) + " unavailable");
    Bytes v(a.ulValueLen);
    a.pValue = v.data();
    rv = fn_->C_GetAttributeValue(session, object, &a, 1);
    if (rv != CKR_OK) return CkStatus(rv, "C_GetAttributeValue(" + AttributeName(type) + ")");
    v.resize(a.ulValueLen);
    return v;
  }

  std::optional<CK_OBJECT_HANDLE> FindOne(CK_SESSION_HANDLE session, CK_OBJECT_CLASS cls,
                                          const Bytes& id) {
    Identity want{
        {CKA_CLASS, HexEncode(ByteView(reinterpret_cast<const uint8_t*>(&cls), sizeof cls))},
        {CKA_ID, HexEncode(id)}};
    return FindByIdentity(session, want);
  }

  // The public key of a live private key: from the certificate with its CKA_ID, else the public
  // key object with its CKA_ID, else the private key's own public attributes.
  Result<PublicKey> PublicKeyOf(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
    Result<Bytes> id = Attribute(session, key, CKA_ID);
    if (id.ok()) {
      if (auto cert = FindOne(session, CKO_CERTIFICATE, *id)) {
        if (Result<Bytes> der = Attribute(session, *cert, CKA_VALUE); der.ok())
          if (Result<Certificate> c = Certificate::FromDer(*der); c.ok()) return c->GetPublicKey();
      }
    }
    std::optional<CK_OBJECT_HANDLE> pub;
    if (id.ok()) pub = FindOne(session, CKO_PUBLIC_KEY, *id);
    const CK_OBJECT_HANDLE source = pub ? *pub : key;
    if (Result<Bytes> n = Attribute(session, source, CKA_MODULUS); n.ok()) {
      SIGNUM_ASSIGN_OR_RETURN(Bytes e, Attribute(session, source, CKA_PUBLIC_EXPONENT));
      return PublicKey::FromRsaComponents(*n, e);
    }
    SIGNUM_ASSIGN_OR_RETURN(Bytes params, Attribute(session, source, CKA_EC_PARAMS));
    SIGNUM_ASSIGN_OR_RETURN(Bytes point_der, Attribute(session, source, CKA_EC_POINT));
    std::optional<EcCurve> curve = CurveFromParamsDer(params);
    if (!curve) return InvalidArgumentError("unsupported CKA_EC_PARAMS " + HexEncode(params));
    SIGNUM_ASSIGN_OR_RETURN(Bytes point, UnwrapEcPointOctetString(point_der));
    return PublicKey::FromEcPoint(*curve, point);
  }

  // Live and recorded signatures must both verify with the live key's public key; RSA PKCS#1
  // v1.5 (deterministic) must also be byte for byte the recorded one.
  std::string JudgeSignature(CK_SESSION_HANDLE session, const SignState& s, const Bytes& data,
                             const Bytes& live, const Bytes& recorded) {
    std::optional<Scheme> scheme = SchemeFor(s.mechanism);
    if (!scheme) {
      // A mechanism this slice cannot verify: only a byte comparison is possible.
      if (live == recorded) return "";
      return "signature (" + MechanismName(s.mechanism) +
             ", not verifiable by signum-replay) differs from the recorded one";
    }
    Result<PublicKey> key = PublicKeyOf(session, s.live_key);
    if (!key.ok()) return "cannot read the key's public key to verify: " + key.status().message();
    HashAlgorithm hash = HashAlgorithm::kSha256;
    Bytes digest;
    std::optional<size_t> salt;
    if (scheme->hash) {
      hash = *scheme->hash;
      digest = Digest(hash, data);
    } else if (scheme->scheme == SignatureScheme::kRsaPkcs1) {
      Result<ParsedDigestInfo> di = ParseDigestInfo(data);
      if (!di.ok()) {
        if (live == recorded) return "";
        return "CKM_RSA_PKCS signature over non-DigestInfo data differs from the recorded one";
      }
      hash = di->hash;
      digest = di->digest;
    } else if (scheme->scheme == SignatureScheme::kEcdsa) {
      std::optional<HashAlgorithm> h = HashForDigestSize(data.size());
      if (!h) return "CKM_ECDSA input of " + std::to_string(data.size()) + " bytes is no digest";
      hash = *h;
      digest = data;
    } else {
      digest = data;
    }
    if (scheme->scheme == SignatureScheme::kRsaPss) {
      // The CK_RSA_PKCS_PSS_PARAMS C_SignInit was given: the recorded parameter bytes (the "pss"
      // object beside them is for people, with hashAlg as a name).
      const Bytes param = Hex(s.mechanism_json.value("parameter", json()));
      if (param.size() == sizeof(CK_RSA_PKCS_PSS_PARAMS)) {
        CK_RSA_PKCS_PSS_PARAMS pss;
        std::memcpy(&pss, param.data(), sizeof pss);
        if (!scheme->hash)
          if (auto h = HashForMechanism(pss.hashAlg)) hash = *h;
        salt = pss.sLen;
      }
      if (!scheme->hash && digest.size() != GetHashInfo(hash).digest_size)
        return "CKM_RSA_PKCS_PSS input is not a " + std::string(HashName(hash)) + " digest";
    }
    if (Status st = VerifyDigestSignature(*key, scheme->scheme, hash, digest, live, salt); !st.ok())
      return "the live signature does not verify with the key's public key: " + st.message();
    if (Status st = VerifyDigestSignature(*key, scheme->scheme, hash, digest, recorded, salt);
        !st.ok()) {
      if (options_.cross_module) {
        Note("the recorded signature was made with another key (the live signature verifies)");
        return "";
      }
      return "the recorded signature does not verify with the live key's public key (another "
             "key?): " +
             st.message();
    }
    if (scheme->scheme == SignatureScheme::kRsaPkcs1 && live != recorded)
      return "RSA PKCS#1 v1.5 signature differs byte for byte from the recorded one";
    return "";
  }

  std::shared_ptr<Pkcs11Module> module_;
  CK_FUNCTION_LIST_PTR fn_;
  std::vector<Call> calls_;
  Options options_;
  std::optional<std::string> pin_;

  std::map<CK_SLOT_ID, std::string> slot_labels_;
  // Object handles are the recording process's: keyed by (pid, handle).
  std::map<RecordedObject, Identity> identities_;
  std::map<CK_SLOT_ID, CK_SLOT_ID> slot_map_;
  std::map<std::pair<long long, CK_SESSION_HANDLE>, CK_SESSION_HANDLE> sessions_;
  std::map<RecordedObject, CK_OBJECT_HANDLE> objects_;
  std::map<CK_SESSION_HANDLE, SignState> signs_;
  // Recorded handles the caller signed or verified with: their absence is never only a note.
  std::set<RecordedObject> operated_on_;
  // Recorded slots whose token was absent or not initialised.
  std::set<CK_SLOT_ID> empty_slots_;
  // Recorded processes: initialised so far, finalised, and the index of each one's last call.
  std::set<long long> started_pids_;
  std::set<long long> finalized_pids_;
  std::map<long long, size_t> last_call_;
  // --cross-module: recorded CKA_ID (hex) -> live CKA_ID; mechanisms offered then but not now.
  std::map<std::string, std::string> id_map_;
  std::set<CK_MECHANISM_TYPE> unoffered_;
  // Mechanisms the trace signs or verifies with: what the module says of these matters.
  std::set<CK_MECHANISM_TYPE> operating_mechanisms_;
  // Each live session's current search template (C_FindObjectsInit, as given to the module).
  std::map<CK_SESSION_HANDLE, SearchTemplate> searches_;
  // Enough for any token a signing tool meets; a search that matches more is only truncated.
  static constexpr CK_ULONG kMaxSearchResults = 1024;
  std::vector<std::pair<size_t, std::string>> notes_;  // (call index, what differed)
  size_t current_ = 0;
};

std::optional<std::string> ReadPin(const Options& o) {
  if (!o.pin_file.empty()) {
    std::ifstream in(o.pin_file);
    if (!in) throw Unusable{o.pin_file + ": cannot read the PIN file"};
    std::string pin;
    std::getline(in, pin);
    while (!pin.empty() && (pin.back() == '\r' || pin.back() == '\n')) pin.pop_back();
    return pin;
  }
  if (const char* env = std::getenv("SIGNUM_REPLAY_PIN")) return std::string(env);
  return std::nullopt;
}

std::shared_ptr<Pkcs11Module> LoadModule(const std::string& path) {
  Result<std::shared_ptr<Pkcs11Module>> module = Pkcs11Module::Load(path);
  if (!module.ok()) throw Unusable{path + ": " + module.status().message()};
  return std::move(module).value();
}

// --compare A B: the same trace replayed against A, then B (one after the other: the trace's own
// C_Finalize ends each run), and every call whose outcome differs between them. Exit 0 when A and
// B behave the same (whether or not both match the recording), 1 at the first difference.
int Compare(const Options& options, const std::vector<Call>& calls) {
  Options a = options, b = options;
  b.module = options.compare_module;
  if (!options.compare_pin_file.empty()) b.pin_file = options.compare_pin_file;
  if (options.compare_token) b.token = options.compare_token;
  Replayer::Outcome outcomes[2];
  const Options* sides[2] = {&a, &b};
  for (int side = 0; side < 2; ++side) {
    Replayer replayer(LoadModule(sides[side]->module), calls, *sides[side], ReadPin(*sides[side]));
    outcomes[side] = replayer.Collect();
    if (outcomes[side].unusable) {
      std::cout << "signum-replay: " << (side == 0 ? "A" : "B") << " (" << sides[side]->module
                << "): " << *outcomes[side].unusable << "\n";
      return trace_file::kReplayUnusable;
    }
  }
  auto verdict = [](const std::string& v) { return v.empty() ? std::string("matches") : v; };
  size_t same = 0, only_a = 0, only_b = 0, both_differently = 0;
  std::optional<size_t> first;
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string& va = outcomes[0].verdicts[i];
    const std::string& vb = outcomes[1].verdicts[i];
    if (va == vb) {
      ++same;
      continue;
    }
    if (!first) first = i;
    if (va.empty()) {
      ++only_b;
    } else if (vb.empty()) {
      ++only_a;
    } else {
      ++both_differently;
    }
  }
  if (first) {
    const Call& c = calls[*first];
    std::cout << "first difference: #" << c.j.value("seq", 0) << " " << c.fn() << " (trace line "
              << c.line << ")\n  A " << a.module << ": " << verdict(outcomes[0].verdicts[*first])
              << "\n  B " << b.module << ": " << verdict(outcomes[1].verdicts[*first]) << "\n";
    Replayer::PrintContext(calls, *first);
  }
  std::cout << "summary: " << calls.size() << " calls; " << same << " alike, " << only_b
            << " diverge on B only, " << only_a << " on A only, " << both_differently
            << " on both differently\n";
  return first ? trace_file::kReplayDiverged : trace_file::kReplayMatched;
}

int Main(int argc, char** argv) {
  Options options = ParseArgs(argc, argv);
  try {
    json header;
    std::vector<Call> calls = LoadTrace(options.trace, header);
    if (!options.compare_module.empty()) {
      std::cout << "signum-replay: " << calls.size() << " calls from " << options.trace
                << " (recorded against " << header.value("module", std::string("?"))
                << "), A = " << options.module << ", B = " << options.compare_module << "\n";
      return Compare(options, calls);
    }
    std::optional<std::string> pin = ReadPin(options);
    std::shared_ptr<Pkcs11Module> module = LoadModule(options.module);
    std::cout << "signum-replay: " << calls.size() << " calls from " << options.trace
              << " (recorded against " << header.value("module", std::string("?")) << ") on "
              << options.module << "\n";
    Replayer replayer(std::move(module), std::move(calls), options, std::move(pin));
    return replayer.Run();
  } catch (const Unusable& u) {
    std::cerr << "signum-replay: " << u.message << "\n";
    return trace_file::kReplayUnusable;
  } catch (const json::exception& e) {
    std::cerr << "signum-replay: malformed trace: " << e.what() << "\n";
    return trace_file::kReplayUnusable;
  }
}

}  // namespace
}  // namespace signum

int main(int argc, char** argv) { return signum::Main(argc, argv); }
