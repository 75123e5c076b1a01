#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace portico {

// One anonymous MAP_SHARED region (a limit zone, a TLS session cache): the master makes it before
// it forks, the workers inherit it, and it is unmapped when the last shared_ptr to it goes (a
// reload that keeps a zone keeps its region). Made and dropped by the master's thread.
class SharedMemory {
 public:
  // Null, with nginx's message in `error`, when the kernel refuses the mapping.
  static std::shared_ptr<SharedMemory> create(size_t size, std::string& error);

  SharedMemory(void* base, size_t size) : base_(base), size_(size) {}
  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  void* base() const { return base_; }
  size_t size() const { return size_; }

 private:
  void* base_;
  size_t size_;
};

}  // namespace portico
