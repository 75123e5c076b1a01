#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "core/unique_fd.h"

namespace portico {

// A byte range of an open file, sent with sendfile; shares ownership of the descriptor.
struct FileRange {
  std::shared_ptr<const UniqueFd> file;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// One piece of a response body: bytes in memory or a range of a file. The transport decides
// whether to copy (writev) or sendfile; producers never care which.
struct BodyChunk {
  std::variant<std::string, FileRange> data;

  BodyChunk() = default;
  BodyChunk(std::string bytes) : data(std::move(bytes)) {}  // NOLINT: implicit by design
  BodyChunk(FileRange range) : data(std::move(range)) {}    // NOLINT: implicit by design

  bool isFile() const { return std::holds_alternative<FileRange>(data); }
  uint64_t size() const {
    if (auto* s = std::get_if<std::string>(&data)) return s->size();
    return std::get<FileRange>(data).length;
  }
};

}  // namespace portico
