// Typed readers for one field of a JSON object, shared by the two protocols defined in
// reference/core (wire.cc: the HTTPS API; agent_protocol.cc: provider <-> agent), so both name
// the offending field in the same words and treat absent and null alike. Private to signum_core.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "signum/core/bytes.h"
#include "signum/core/status.h"

namespace signum::json_fields {

// kInvalidArgument "field '<field>': <problem>".
Status FieldError(std::string_view field, std::string_view problem);
// kInvalidArgument "<what> must be a JSON object" unless j is one.
Status RequireObject(const nlohmann::json& j, std::string_view what);

// Absent or null: "" (or an error when required).
Result<std::string> StringField(const nlohmann::json& j, const char* field, bool required);
// Absent or null: default_value.
Result<bool> BoolField(const nlohmann::json& j, const char* field, bool default_value);
// Absent or null: 0.
Result<size_t> CountField(const nlohmann::json& j, const char* field);
// Absent or null: nullopt.
Result<std::optional<long>> OptionalIntegerField(const nlohmann::json& j, const char* field);
// Required, standard base64.
Result<Bytes> Base64Field(const nlohmann::json& j, const char* field);
// Absent or null: empty.
Result<std::vector<std::string>> StringListField(const nlohmann::json& j, const char* field);

}  // namespace signum::json_fields
