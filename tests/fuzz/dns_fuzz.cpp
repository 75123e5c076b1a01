// libFuzzer driver for the DNS response reader (dns/dns_message.h), which reads what any host
// able to send a UDP datagram to a worker's resolver socket may forge: the head and answers are
// parsed over UDP and TCP rules, names are read at every offset, and what comes out stays
// within the message (offsets, counts, name lengths).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dns/dns_message.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace portico::dns;
  std::string_view message(reinterpret_cast<const char*>(data), size);
  std::string error;
  for (bool tcp : {false, true}) {
    std::optional<ResponseHead> head = parseHead(message, tcp, error);
    if (!head) {
      FUZZ_CHECK(!error.empty());
      continue;
    }
    FUZZ_CHECK(head->answersOffset <= message.size());
    FUZZ_CHECK(head->type == kTypeA || head->type == kTypeAaaa);
    FUZZ_CHECK(!head->name.empty());
    FUZZ_CHECK(!(tcp && head->truncated));
    std::optional<Answers> answers = parseAnswers(message, *head, error);
    if (answers) {
      FUZZ_CHECK(answers->addresses.size() <= head->answerCount);
      for (const Address& a : answers->addresses) FUZZ_CHECK(a.v6 == (head->type == kTypeAaaa));
      if (answers->cname) FUZZ_CHECK(answers->cname->size() <= 128 * 64);
    }
  }
  for (size_t at = 0; at < size && at < 512; ++at) {
    std::optional<std::string> name = readName(message, at, error);
    if (name) FUZZ_CHECK(name->size() <= 128 * 64);
  }
  return 0;
}
