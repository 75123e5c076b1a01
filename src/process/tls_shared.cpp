#include "process/tls_shared.h"

#include <openssl/crypto.h>

#include "config/ssl_module.h"

namespace portico::process {

TlsShared::~TlsShared() {
  for (transport::TicketKey& key : ticketKeys_) OPENSSL_cleanse(&key, sizeof key);
  for (auto& [path, passwords] : passwords_) {
    for (std::string& password : passwords) OPENSSL_cleanse(password.data(), password.size());
  }
}

const std::vector<std::string>* TlsShared::passwords(const std::string& path) const {
  auto it = passwords_.find(path);
  return it == passwords_.end() ? nullptr : &it->second;
}

std::shared_ptr<TlsShared>& TlsShared::installed() {
  static std::shared_ptr<TlsShared> shared;
  return shared;
}

std::shared_ptr<TlsShared> TlsShared::create(const config::HttpSite& site,
                                             const TlsShared* previous, std::string& error) {
  error = config::checkSslCacheZones(site);
  if (!error.empty()) return nullptr;
  auto shared = std::make_shared<TlsShared>();
  for (const config::VirtualServer& server : site.servers) {
    const config::TlsServerSettings& tls = server.tls;
    if (tls.sessionCacheZone.empty() || shared->zones_.count(tls.sessionCacheZone)) continue;
    Zone zone;
    if (previous) {
      auto it = previous->zones_.find(tls.sessionCacheZone);
      if (it != previous->zones_.end() && it->second.mapping->size() == tls.sessionCacheSize) {
        zone.mapping = it->second.mapping;  // its sessions survive the reload
      }
    }
    if (!zone.mapping) {
      zone.mapping = SharedMemory::create(tls.sessionCacheSize, error);
      if (!zone.mapping) return nullptr;
      transport::TlsSessionStore::format(zone.mapping->base(), tls.sessionCacheSize);
    }
    zone.view = std::make_unique<transport::TlsSessionStore>(zone.mapping->base());
    shared->zones_[tls.sessionCacheZone] = std::move(zone);
  }
  for (const config::VirtualServer& server : site.servers) {
    const std::string& path = server.tls.passwordFile;
    if (path.empty() || shared->passwords_.count(path)) continue;
    std::vector<std::string> passwords;
    if (!transport::readPasswordFile(path, passwords, error)) return nullptr;
    shared->passwords_[path] = std::move(passwords);
  }
  transport::TicketKey key;
  if (!transport::randomTicketKey(key)) {
    error = "RAND_bytes() failed";
    return nullptr;
  }
  shared->ticketKeys_.push_back(key);
  OPENSSL_cleanse(&key, sizeof key);
  if (previous && !previous->ticketKeys_.empty()) {
    shared->ticketKeys_.push_back(previous->ticketKeys_.front());
  }
  return shared;
}

transport::TlsSessionStore* TlsShared::cache(const std::string& name, uint64_t size) const {
  auto it = zones_.find(name);
  if (it == zones_.end() || it->second.mapping->size() != size) return nullptr;
  return it->second.view.get();
}

bool TlsShared::covers(const config::HttpSite& site) const {
  for (const config::VirtualServer& server : site.servers) {
    const config::TlsServerSettings& tls = server.tls;
    if (!tls.sessionCacheZone.empty() && !cache(tls.sessionCacheZone, tls.sessionCacheSize)) {
      return false;
    }
    if (!tls.passwordFile.empty() && !passwords(tls.passwordFile)) return false;
  }
  return true;
}

}  // namespace portico::process
