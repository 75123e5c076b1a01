#include "core/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace portico {

// Owns the pcre2_code; shared so that copies of a Regex share one compiled program.
struct Regex::Code {
  explicit Code(pcre2_code* c) : code(c) {}
  ~Code() { pcre2_code_free(code); }
  Code(const Code&) = delete;
  Code& operator=(const Code&) = delete;
  pcre2_code* code;
};

namespace {

// RAII for the per-call match data.
struct MatchData {
  explicit MatchData(const pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* data;
};

}  // namespace

std::optional<Regex> Regex::compile(std::string_view pattern, bool caseless, std::string& error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = caseless ? PCRE2_CASELESS : 0;
  pcre2_code* compiled = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                       options, &code, &offset, nullptr);
  if (!compiled) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(code, buffer, sizeof buffer);
    error = std::string(reinterpret_cast<const char*>(buffer)) + " at offset " +
            std::to_string(offset);
    return std::nullopt;
  }
  uint32_t captures = 0;
  pcre2_pattern_info(compiled, PCRE2_INFO_CAPTURECOUNT, &captures);
  return Regex(std::make_shared<const Code>(compiled), std::string(pattern), caseless,
               static_cast<int>(captures));
}

bool Regex::matches(std::string_view subject) const {
  MatchData md(code_->code);
  return pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
                     0, md.data, nullptr) >= 0;
}

bool Regex::match(std::string_view subject, Match& out) const {
  MatchData md(code_->code);
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                       0, 0, md.data, nullptr);
  if (rc < 0) return false;
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.data);
  out.groups.assign(static_cast<size_t>(captureCount_) + 1, std::string());
  for (int i = 0; i <= captureCount_ && i < rc; ++i) {
    if (ov[2 * i] == PCRE2_UNSET) continue;
    out.groups[i].assign(subject.substr(ov[2 * i], ov[2 * i + 1] - ov[2 * i]));
  }
  out.named.clear();
  uint32_t count = 0, entrySize = 0;
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMEENTRYSIZE, &entrySize);
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMETABLE, &table);
  for (uint32_t i = 0; i < count; ++i) {
    PCRE2_SPTR entry = table + i * entrySize;
    int group = (entry[0] << 8) | entry[1];
    std::string name(reinterpret_cast<const char*>(entry + 2));
    out.named.emplace_back(std::move(name),
                           group < static_cast<int>(out.groups.size()) ? out.groups[group] : "");
  }
  return true;
}

}  // namespace portico
