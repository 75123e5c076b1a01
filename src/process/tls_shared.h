#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/site.h"
#include "core/shared_memory.h"
#include "transport/tls_context.h"
#include "transport/tls_session_store.h"

namespace portico::process {

// What the workers' TLS contexts share, made by the master before it forks them: the shared
// session caches (ssl_session_cache shared:NAME:SIZE, one MAP_SHARED mapping per zone, reused
// by a reload that keeps its name and size, as nginx reuses its zones) and the session ticket
// keys used where no ssl_session_ticket_key is given (random; every worker encrypts and
// decrypts with the same ones, so a ticket resumes on any worker; each reload makes a new
// encrypting key and keeps the previous one for decrypting). Master's thread; workers read.
class TlsShared {
 public:
  ~TlsShared();
  // Null with nginx's message (zones that conflict, a failed mmap, no random bytes).
  static std::shared_ptr<TlsShared> create(const config::HttpSite& site, const TlsShared* previous,
                                           std::string& error);
  // The master's (a worker forked from it inherits them); null in a process no master made.
  static std::shared_ptr<TlsShared>& installed();

  // The cache of zone `name` when it has `size` (null otherwise).
  transport::TlsSessionStore* cache(const std::string& name, uint64_t size) const;
  // Whether every zone `site` names is here with its size, and every password file read.
  bool covers(const config::HttpSite& site) const;
  const std::vector<transport::TicketKey>& ticketKeys() const { return ticketKeys_; }
  // The passphrases of an ssl_password_file, read once here (the file may be a FIFO, read
  // only once, as nginx reads it at configuration time); null for a file not read.
  const std::vector<std::string>* passwords(const std::string& path) const;

 private:
  struct Zone {
    std::shared_ptr<SharedMemory> mapping;
    std::unique_ptr<transport::TlsSessionStore> view;
  };
  std::map<std::string, Zone> zones_;
  std::vector<transport::TicketKey> ticketKeys_;
  std::map<std::string, std::vector<std::string>> passwords_;
};

}  // namespace portico::process
