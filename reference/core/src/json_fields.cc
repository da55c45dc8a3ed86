#include "json_fields.h"

#include "signum/core/encoding.h"

namespace signum::json_fields {

using nlohmann::json;

Status FieldError(std::string_view field, std::string_view problem) {
  return InvalidArgumentError("field '" + std::string(field) + "': " + std::string(problem));
}

Status RequireObject(const json& j, std::string_view what) {
  if (!j.is_object()) return InvalidArgumentError(std::string(what) + " must be a JSON object");
  return Status::Ok();
}

Result<std::string> StringField(const json& j, const char* field, bool required) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return FieldError(field, "is required");
    return std::string();
  }
  if (!it->is_string()) return FieldError(field, "must be a string");
  return it->get<std::string>();
}

Result<bool> BoolField(const json& j, const char* field, bool default_value) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return default_value;
  if (!it->is_boolean()) return FieldError(field, "must be true or false");
  return it->get<bool>();
}

Result<size_t> CountField(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return size_t{0};
  if (!it->is_number_unsigned()) return FieldError(field, "must be a non-negative integer");
  return it->get<size_t>();
}

Result<std::optional<long>> OptionalIntegerField(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<long>();
  if (!it->is_number_integer()) return FieldError(field, "must be an integer");
  return std::optional<long>(it->get<long>());
}

Result<Bytes> Base64Field(const json& j, const char* field) {
  SIGNUM_ASSIGN_OR_RETURN(std::string text, StringField(j, field, true));
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) return FieldError(field, "is not valid base64");
  return std::move(bytes).value();
}

Result<std::vector<std::string>> StringListField(const json& j, const char* field) {
  std::vector<std::string> out;
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return FieldError(field, "must be an array of strings");
  for (const json& item : *it) {
    if (!item.is_string()) return FieldError(field, "must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace signum::json_fields
