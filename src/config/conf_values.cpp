#include "config/conf_values.h"

#include <limits>

namespace portico::config {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::optional<int64_t> scaled(std::string_view text, bool allowGiga) {
  if (text.empty()) return std::nullopt;
  int64_t scale = 1;
  switch (text.back()) {
    case 'k':
    case 'K':
      scale = int64_t{1} << 10;
      break;
    case 'm':
    case 'M':
      scale = int64_t{1} << 20;
      break;
    case 'g':
    case 'G':
      if (allowGiga) scale = int64_t{1} << 30;
      break;
    default:
      break;
  }
  if (scale != 1) text.remove_suffix(1);
  auto value = parseNginxNumber(text);
  if (!value || *value > kMax / scale) return std::nullopt;
  return *value * scale;
}

}  // namespace

std::optional<int64_t> parseNginxNumber(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (kMax - (c - '0')) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<int64_t> parseNginxSize(std::string_view text) { return scaled(text, false); }

std::optional<int64_t> parseNginxOffset(std::string_view text) { return scaled(text, true); }

std::optional<int64_t> parseNginxTime(std::string_view text, bool seconds) {
  // The units in the order they must appear (each at most once, larger first).
  enum Step { kStart, kYear, kMonth, kWeek, kDay, kHour, kMin, kSec, kMsec, kLast };
  Step step = seconds ? kStart : kMonth;
  bool valid = false;
  int64_t value = 0, total = 0;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      if (value > (kMax - (c - '0')) / 10) return std::nullopt;
      value = value * 10 + (c - '0');
      valid = true;
      ++i;
      continue;
    }
    ++i;
    int64_t scale = 1, max = kMax;
    switch (c) {
      case 'y':
        if (step > kStart) return std::nullopt;
        step = kYear;
        scale = 60 * 60 * 24 * 365;
        break;
      case 'M':
        if (step >= kMonth) return std::nullopt;
        step = kMonth;
        scale = 60 * 60 * 24 * 30;
        break;
      case 'w':
        if (step >= kWeek) return std::nullopt;
        step = kWeek;
        scale = 60 * 60 * 24 * 7;
        break;
      case 'd':
        if (step >= kDay) return std::nullopt;
        step = kDay;
        scale = 60 * 60 * 24;
        break;
      case 'h':
        if (step >= kHour) return std::nullopt;
        step = kHour;
        scale = 60 * 60;
        break;
      case 'm':
        if (i < text.size() && text[i] == 's') {
          if (seconds || step >= kMsec) return std::nullopt;
          ++i;
          step = kMsec;
          scale = 1;
          break;
        }
        if (step >= kMin) return std::nullopt;
        step = kMin;
        scale = 60;
        break;
      case 's':
        if (step >= kSec) return std::nullopt;
        step = kSec;
        scale = 1;
        break;
      case ' ':
        if (step >= kSec) return std::nullopt;
        step = kLast;
        scale = 1;
        break;
      default:
        return std::nullopt;
    }
    if (step != kMsec && !seconds) scale *= 1000;
    max = kMax / scale;
    if (value > max) return std::nullopt;
    value *= scale;
    if (total > kMax - value) return std::nullopt;
    total += value;
    value = 0;
    while (i < text.size() && text[i] == ' ') ++i;  // "1y 2M": spaces after a unit
  }
  if (!valid) return std::nullopt;
  if (!seconds) {
    if (value > kMax / 1000) return std::nullopt;
    value *= 1000;
  }
  if (total > kMax - value) return std::nullopt;
  return total + value;
}

}  // namespace portico::config
