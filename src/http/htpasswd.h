#pragma once

// The auth_basic module's pure parts: the `Authorization: Basic` credentials (as
// ngx_http_auth_basic_user reads them), the htpasswd lookup (nginx's line scanner) and the
// password check of ngx_crypt: crypt(3) (glibc/libxcrypt: DES, $1$, $5$, $6$, $y$ ...), and
// nginx's own {PLAIN}, {SHA}, {SSHA} and $apr1$ (MD5 and SHA-1 from OpenSSL). Thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace portico::http {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// nginx's reading of an Authorization value: "Basic" (any case) and a space, spaces, base64 of
// "user:password" with a non-empty user; nullopt otherwise ("no user/password was provided").
std::optional<BasicCredentials> parseBasicAuthorization(std::string_view value);

// nginx's ngx_decode_base64 (standard alphabet; stops at '='; a length of 4n+1 is an error).
std::optional<std::string> decodeBase64Nginx(std::string_view encoded);
std::string encodeBase64(std::string_view data);

// The password field of `user` in htpasswd text: lines "user:hash[:comment]"; '#' or CR at a
// line start skips the line; the field ends at LF, CR or ':' (or the end of the file).
std::optional<std::string> findHtpasswdEntry(std::string_view file, std::string_view user);

enum class PasswordCheck { kMatch, kMismatch, kError };
// ngx_crypt(password, hash) compared with hash. kError: crypt(3) returned NULL (nginx: 500).
PasswordCheck checkPassword(std::string_view password, const std::string& hash);

// ngx_crypt_apr1 (exposed for tests): "$apr1$SALT$HASH" of `key` with the salt of `salt`.
std::string cryptApr1(std::string_view key, std::string_view salt);

}  // namespace portico::http
