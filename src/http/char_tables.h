// Byte classes of HTTP/1 syntax (RFC 9110/9112), as constant tables: shared by the request
// parser and the upstream response parser.
#pragma once

namespace portico::http {

// One flag (or hex value, -1 for none) per byte value; a compile-time constant.
struct CharTables {
  bool tchar[256] = {};
  bool fieldValue[256] = {};
  bool target[256] = {};
  bool authority[256] = {};
  bool nginxName[256] = {};  // letters, digits, '-'
  signed char hex[256] = {};
};

constexpr CharTables makeCharTables() {
  CharTables t;
  for (int c = 0; c < 256; ++c) {
    t.hex[c] = -1;
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum) {
      t.tchar[c] = true;
      t.authority[c] = true;
      t.nginxName[c] = true;
    }
    // Field values: VCHAR, SP, HTAB and obs-text; every other CTL (NUL, CR, LF, DEL) is out.
    t.fieldValue[c] = c == '\t' || (c >= 0x20 && c != 0x7F);
    t.target[c] = c >= 0x21 && c <= 0x7E;
  }
  for (const char* p = "!#$%&'*+-.^_`|~"; *p; ++p) t.tchar[static_cast<unsigned char>(*p)] = true;
  t.nginxName[static_cast<unsigned char>('-')] = true;
  // RFC 3986 unreserved, sub-delims, ':' and IP-literal brackets, '%' for pct-encoded.
  for (const char* p = "-._~!$&'()*+,;=:[]%"; *p; ++p) {
    t.authority[static_cast<unsigned char>(*p)] = true;
  }
  for (int c = '0'; c <= '9'; ++c) t.hex[c] = static_cast<signed char>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t.hex[c] = static_cast<signed char>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t.hex[c] = static_cast<signed char>(c - 'A' + 10);
  return t;
}

inline constexpr CharTables kCharTables = makeCharTables();

}  // namespace portico::http
