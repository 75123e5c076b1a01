#include "core/shared_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace portico {

std::shared_ptr<SharedMemory> SharedMemory::create(size_t size, std::string& error) {
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    error = "mmap(MAP_ANON|MAP_SHARED, " + std::to_string(size) + ") failed (" +
            std::to_string(errno) + ": " + std::strerror(errno) + ")";
    return nullptr;
  }
  return std::make_shared<SharedMemory>(base, size);
}

SharedMemory::~SharedMemory() { ::munmap(base_, size_); }

}  // namespace portico
