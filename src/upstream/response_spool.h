#pragma once

// A buffered proxied response between an upstream and a slower client (nginx's event pipe with
// proxy_buffering on): the body is kept in order as memory (the proxy_buffers read-ahead), then
// an unlinked temporary file (proxy_temp_path, written in proxy_temp_file_write_size pieces up to
// proxy_max_temp_file_size), then memory again once the file is full. So the upstream is read
// to its end at its own speed and released, while the client is served from memory and file.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/site.h"
#include "core/body_chunk.h"
#include "core/unique_fd.h"
#include "http/request.h"

namespace portico::upstream {

// The bounds of one response's spool (from the location's ProxySettings).
struct SpoolLimits {
  uint64_t memory = 32 * 1024;          // proxy_buffers N × size: what memory holds
  uint64_t maxFile = 1024ull << 20;     // proxy_max_temp_file_size (0: never spill)
  uint64_t writeSize = 8 * 1024;        // proxy_temp_file_write_size: bytes per file write
  std::string directory;                // proxy_temp_path ("": $TMPDIR, else /tmp)
};

// One response's body in transit: pushed by the engine as the upstream sends it, taken as the
// client drains. Owned by its ProxyRequest; event-loop thread only. Memory is bounded by
// `memory` (+ one push) before the file and again after it, plus one write piece; the file by
// maxFile. The file is created unlinked (O_TMPFILE, else mkstemp + unlink), so nothing is left
// behind whatever happens; the ranges handed out share its descriptor.
class ResponseSpool {
 public:
  explicit ResponseSpool(SpoolLimits limits) : limits_(std::move(limits)) {}

  // Appends body bytes (in order). Never fails: bytes the file cannot take (full, or a write
  // failed) stay in memory, and canAccept() says when to stop reading the upstream.
  void push(std::string bytes);
  // Whether the upstream may be read further: memory has room, or the file does.
  bool canAccept() const;
  bool empty() const { return memBytes_ == 0 && fileSent_ == fileWritten_ && writeBuf_.empty() &&
                              tailBytes_ == 0; }

  enum class Next {
    kNothing,   // empty
    kMemory,    // bytes in memory come next
    kFile,      // a range of the file comes next
    kFileBusy,  // file bytes come next, but a range handed out before is still being sent
  };
  // What take() would give. A file range is handed out only once the previous one has been
  // sent (its holders released the descriptor), so the connection's queue holds one range,
  // however long the file grows meanwhile.
  Next peek() const;
  // The next piece: a memory chunk, or the file's unsent bytes as one range (at most `maxFile`
  // bytes of it). Only after peek() said kMemory or kFile.
  BodyChunk take(uint64_t maxFile = UINT64_MAX);

  // The temporary file's size (bytes written to it so far) and the bytes held in memory.
  uint64_t fileSize() const { return fileWritten_; }
  uint64_t memoryBytes() const { return memBytes_ + writeBuf_.size() + tailBytes_; }
  // A failure to create or write the file ("" when none since the last call): the caller logs
  // it with the request's context; the response goes on from memory.
  std::string takeError() { return std::exchange(error_, std::string()); }
  // Once, when the file is created: nginx's warning "an upstream response is buffered to a
  // temporary file NAME" (an O_TMPFILE file is named as /proc shows it: DIR/#INODE).
  std::string takeNotice() { return std::exchange(notice_, std::string()); }

 private:
  bool fileInPlay() const { return fileSent_ < fileWritten_ || !writeBuf_.empty() || tailBytes_ > 0; }
  uint64_t fileRoom() const;
  void writeOut();

  SpoolLimits limits_;
  std::deque<std::string> mem_;  // before the file
  uint64_t memBytes_ = 0;
  std::shared_ptr<const UniqueFd> file_;
  uint64_t fileSent_ = 0;     // [fileSent_, fileWritten_) is in the file, not yet handed out
  uint64_t fileWritten_ = 0;
  std::string writeBuf_;      // goes to the file next (after fileWritten_)
  std::deque<std::string> tail_;  // after the file, once it is full or failed
  uint64_t tailBytes_ = 0;
  bool spillFailed_ = false;
  std::string error_;
  std::string notice_;
};

// Opens an unlinked temporary file in `directory` (O_TMPFILE; mkstemp + unlink where the file
// system has no O_TMPFILE). Invalid on failure, with `error` set as nginx words it; `name` is
// the file's name as /proc shows it.
UniqueFd openUnlinkedTempFile(const std::string& directory, std::string& name,
                              std::string& error);

// The spool's bounds for a location: proxy_buffers, proxy_max_temp_file_size,
// proxy_temp_file_write_size, proxy_temp_path.
SpoolLimits spoolLimits(const config::ProxySettings& settings);

// Whether a response is buffered: proxy_buffering, switched per response by the upstream's
// "X-Accel-Buffering: yes|no" (nginx's change_buffering; any other value changes nothing).
bool responseBuffering(bool configured, const std::vector<http::Header>& headers);

}  // namespace portico::upstream
