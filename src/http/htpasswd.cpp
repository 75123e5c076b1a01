#include "http/htpasswd.h"

#include <crypt.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace portico::http {
namespace {

int base64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// One-shot digests through EVP (MD5 and SHA-1 are what the formats are defined with).
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  void update(std::string_view s) { update(s.data(), s.size()); }
  void final(unsigned char* out) { EVP_DigestFinal_ex(ctx_, out, nullptr); }

 private:
  EVP_MD_CTX* ctx_;
};

void to64(std::string& out, uint32_t v, int n) {
  static constexpr char kItoa64[] =
      "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  while (n--) {
    out.push_back(kItoa64[v & 0x3f]);
    v >>= 6;
  }
}

std::string cryptSsha(std::string_view key, std::string_view hash) {
  std::string_view encoded = hash.substr(6);
  std::optional<std::string> decoded = decodeBase64Nginx(encoded);
  std::string data = decoded ? *decoded : std::string();
  if (!decoded || data.size() < 20) data.resize(20);  // as nginx: no salt
  Digest sha(EVP_sha1());
  sha.update(key);
  sha.update(data.data() + 20, data.size() - 20);
  unsigned char digest[20];
  sha.final(digest);
  std::memcpy(data.data(), digest, 20);
  return "{SSHA}" + encodeBase64(data);
}

std::string cryptSha(std::string_view key) {
  Digest sha(EVP_sha1());
  sha.update(key);
  unsigned char digest[20];
  sha.final(digest);
  return "{SHA}" + encodeBase64(std::string_view(reinterpret_cast<char*>(digest), 20));
}

}  // namespace

std::optional<std::string> decodeBase64Nginx(std::string_view src) {
  size_t len = 0;
  for (; len < src.size(); ++len) {
    if (src[len] == '=') break;
    if (base64Value(static_cast<unsigned char>(src[len])) < 0) return std::nullopt;
  }
  if (len % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (size_t i = 0; i < len; ++i) {
    bits = (bits << 6) | static_cast<uint32_t>(base64Value(static_cast<unsigned char>(src[i])));
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

std::string encodeBase64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == data.size()) {
    uint32_t v = byte(i) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<BasicCredentials> parseBasicAuthorization(std::string_view value) {
  if (value.size() < 6) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != "basic "[i]) return std::nullopt;
  }
  value.remove_prefix(6);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.empty()) return std::nullopt;
  std::optional<std::string> decoded = decodeBase64Nginx(value);
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == 0 || colon == std::string::npos) return std::nullopt;
  BasicCredentials c;
  c.user = decoded->substr(0, colon);
  c.password = decoded->substr(colon + 1);
  // nginx hands the password to crypt as a C string.
  size_t nul = c.password.find('\0');
  if (nul != std::string::npos) c.password.resize(nul);
  return c;
}

std::optional<std::string> findHtpasswdEntry(std::string_view file, std::string_view user) {
  // A port of the scanner in ngx_http_auth_basic_handler (login, passwd, skip states).
  enum { kLogin, kPasswd, kSkip } state = kLogin;
  size_t login = 0;
  size_t passwd = 0;
  for (size_t i = 0; i < file.size(); ++i) {
    char c = file[i];
    switch (state) {
      case kLogin:
        if (login == 0) {
          if (c == '#' || c == '\r') {
            state = kSkip;
            break;
          }
          if (c == '\n') break;
        }
        if (login >= user.size() ? c != ':' : c != user[login]) {
          state = kSkip;
          break;
        }
        if (login == user.size()) {
          state = kPasswd;
          passwd = i + 1;
        }
        ++login;
        break;
      case kPasswd:
        if (c == '\n' || c == '\r' || c == ':') return std::string(file.substr(passwd, i - passwd));
        break;
      case kSkip:
        if (c == '\n') {
          state = kLogin;
          login = 0;
        }
        break;
    }
  }
  if (state == kPasswd) return std::string(file.substr(passwd));
  return std::nullopt;
}

std::string cryptApr1(std::string_view key, std::string_view hash) {
  std::string_view salt = hash.substr(6);
  size_t saltlen = 0;
  while (saltlen < salt.size() && saltlen < 8 && salt[saltlen] != '$') ++saltlen;
  salt = salt.substr(0, saltlen);
  unsigned char final[16];
  Digest md5(EVP_md5());
  md5.update(key);
  md5.update("$apr1$");
  md5.update(salt);
  {
    Digest ctx1(EVP_md5());
    ctx1.update(key);
    ctx1.update(salt);
    ctx1.update(key);
    ctx1.final(final);
  }
  for (ptrdiff_t n = static_cast<ptrdiff_t>(key.size()); n > 0; n -= 16) {
    md5.update(final, n > 16 ? 16 : static_cast<size_t>(n));
  }
  std::memset(final, 0, sizeof final);
  for (size_t i = key.size(); i; i >>= 1) {
    if (i & 1) {
      md5.update(final, 1);
    } else {
      md5.update(key.data(), 1);
    }
  }
  md5.final(final);
  for (int i = 0; i < 1000; ++i) {
    Digest ctx1(EVP_md5());
    if (i & 1) {
      ctx1.update(key);
    } else {
      ctx1.update(final, 16);
    }
    if (i % 3) ctx1.update(salt);
    if (i % 7) ctx1.update(key);
    if (i & 1) {
      ctx1.update(final, 16);
    } else {
      ctx1.update(key);
    }
    ctx1.final(final);
  }
  std::string out = "$apr1$" + std::string(salt) + "$";
  to64(out, (uint32_t{final[0]} << 16) | (uint32_t{final[6]} << 8) | final[12], 4);
  to64(out, (uint32_t{final[1]} << 16) | (uint32_t{final[7]} << 8) | final[13], 4);
  to64(out, (uint32_t{final[2]} << 16) | (uint32_t{final[8]} << 8) | final[14], 4);
  to64(out, (uint32_t{final[3]} << 16) | (uint32_t{final[9]} << 8) | final[15], 4);
  to64(out, (uint32_t{final[4]} << 16) | (uint32_t{final[10]} << 8) | final[5], 4);
  to64(out, final[11], 2);
  return out;
}

PasswordCheck checkPassword(std::string_view password, const std::string& hash) {
  std::string encrypted;
  if (startsWith(hash, "$apr1$")) {
    encrypted = cryptApr1(password, hash);
  } else if (startsWith(hash, "{PLAIN}")) {
    encrypted = "{PLAIN}" + std::string(password);
  } else if (startsWith(hash, "{SSHA}")) {
    encrypted = cryptSsha(password, hash);
  } else if (startsWith(hash, "{SHA}")) {
    encrypted = cryptSha(password);
  } else {
    // ngx_libc_crypt. crypt_data is large (~32 KiB): on the heap, one per call.
    auto data = std::make_unique<crypt_data>();
    std::string key(password);
    const char* out = ::crypt_r(key.c_str(), hash.c_str(), data.get());
    if (out == nullptr) return PasswordCheck::kError;
    encrypted = out;
  }
  return encrypted == hash ? PasswordCheck::kMatch : PasswordCheck::kMismatch;
}

}  // namespace portico::http
