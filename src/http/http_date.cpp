#include "http/http_date.h"

#include <array>
#include <cstdint>

#include "http/request.h"

namespace portico::http {

namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                   "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); avoids
// timegm's dependence on the process time zone machinery.
int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool isLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int daysInMonth(int64_t y, int m) {
  static constexpr int kLen[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kLen[m - 1];
}

// A tiny cursor over the date string; every method consumes on success only.
struct Cursor {
  std::string_view s;
  size_t i = 0;

  bool lit(std::string_view l) {
    if (s.substr(i, l.size()) != l) return false;
    i += l.size();
    return true;
  }
  template <size_t N>
  int oneOf(const std::array<std::string_view, N>& names) {
    for (size_t k = 0; k < N; ++k) {
      if (s.size() - i >= names[k].size() && iequals(s.substr(i, names[k].size()), names[k])) {
        i += names[k].size();
        return static_cast<int>(k);
      }
    }
    return -1;
  }
  bool digits(size_t n, int& out) {
    if (s.size() - i < n) return false;
    int v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = s[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    out = v;
    i += n;
    return true;
  }
  bool time(int& h, int& m, int& sec) {
    return digits(2, h) && lit(":") && digits(2, m) && lit(":") && digits(2, sec);
  }
  bool done() const { return i == s.size(); }
};

std::optional<std::time_t> build(int64_t year, int month, int day, int h, int m, int s) {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return std::nullopt;
  if (h > 23 || m > 59 || s > 60) return std::nullopt;  // 60: a leap second
  int64_t t = daysFromCivil(year, month, day) * 86400 + h * 3600 + m * 60 + s;
  return static_cast<std::time_t>(t);
}

int currentYear() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  return tm.tm_year + 1900;
}

void put2(std::string& out, int v) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

}  // namespace

std::string formatHttpDate(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string out;
  out.reserve(29);
  out.append(kDays[static_cast<size_t>(tm.tm_wday) % 7]);
  out += ", ";
  put2(out, tm.tm_mday);
  out += ' ';
  out.append(kMonths[static_cast<size_t>(tm.tm_mon) % 12]);
  out += ' ';
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) year = year < 0 ? 0 : 9999;
  put2(out, year / 100);
  put2(out, year % 100);
  out += ' ';
  put2(out, tm.tm_hour);
  out += ':';
  put2(out, tm.tm_min);
  out += ':';
  put2(out, tm.tm_sec);
  out += " GMT";
  return out;
}

std::optional<std::time_t> parseHttpDate(std::string_view value) {
  int day = 0, year = 0, h = 0, m = 0, s = 0;
  {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    Cursor c{value};
    int month;
    if (c.oneOf(kDays) >= 0 && c.lit(", ") && c.digits(2, day) && c.lit(" ") &&
        (month = c.oneOf(kMonths)) >= 0 && c.lit(" ") && c.digits(4, year) && c.lit(" ") &&
        c.time(h, m, s) && c.lit(" GMT") && c.done()) {
      return build(year, month + 1, day, h, m, s);
    }
  }
  {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    Cursor c{value};
    int month;
    int yy;
    if (c.oneOf(kLongDays) >= 0 && c.lit(", ") && c.digits(2, day) && c.lit("-") &&
        (month = c.oneOf(kMonths)) >= 0 && c.lit("-") && c.digits(2, yy) && c.lit(" ") &&
        c.time(h, m, s) && c.lit(" GMT") && c.done()) {
      // RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past century.
      int cy = currentYear();
      int64_t full = cy / 100 * 100 + yy;
      if (full > cy + 50) full -= 100;
      return build(full, month + 1, day, h, m, s);
    }
  }
  {
    // asctime: "Sun Nov  6 08:49:37 1994"
    Cursor c{value};
    int month;
    if (c.oneOf(kDays) >= 0 && c.lit(" ") && (month = c.oneOf(kMonths)) >= 0 && c.lit(" ") &&
        (c.lit(" ") ? c.digits(1, day) : c.digits(2, day)) && c.lit(" ") && c.time(h, m, s) &&
        c.lit(" ") && c.digits(4, year) && c.done()) {
      return build(year, month + 1, day, h, m, s);
    }
  }
  return std::nullopt;
}

const std::string& cachedHttpDate(std::time_t now) {
  thread_local std::time_t cachedAt = -1;
  thread_local std::string cached;
  if (now != cachedAt || cached.empty()) {
    cached = formatHttpDate(now);
    cachedAt = now;
  }
  return cached;
}

}  // namespace portico::http
