// libFuzzer driver for the PROXY protocol parser: every prefix of the input is parsed, and the
// verdict must not depend on how the bytes were split (a complete header stays complete with the
// same length; incomplete never follows an error), within the header bounds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fuzz_check.h"
#include "transport/proxy_protocol.h"


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using portico::transport::parseProxyProtocol;
  using Status = portico::transport::ProxyProtocolResult::Status;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  bool optional = size > 0 && (data[size - 1] & 1);
  auto whole = parseProxyProtocol(input, optional);
  if (whole.status == Status::kDone) {
    FUZZ_CHECK(whole.consumed > 0 && whole.consumed <= input.size());
    FUZZ_CHECK(whole.consumed <= portico::transport::kProxyProtocolMaxHeader);
  }
  if (whole.status == Status::kIncomplete) {
    FUZZ_CHECK(input.size() < portico::transport::kProxyProtocolMaxHeader);
  }
  for (size_t n = 0; n < input.size(); ++n) {
    auto part = parseProxyProtocol(input.substr(0, n), optional);
    if (part.status == Status::kDone) {
      FUZZ_CHECK(whole.status == Status::kDone && whole.consumed == part.consumed);
    } else if (part.status != Status::kIncomplete) {
      FUZZ_CHECK(part.status == whole.status);
    }
  }
  return 0;
}
