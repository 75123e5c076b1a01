#include "http/uwsgi_codec.h"

namespace portico::http::uwsgi {

namespace {

uint16_t readU16(std::string_view data, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(data[at]) |
                               (static_cast<unsigned char>(data[at + 1]) << 8));
}

void writeU16(std::string& out, size_t value) {
  out.push_back(static_cast<char>(value & 0xff));
  out.push_back(static_cast<char>((value >> 8) & 0xff));
}

}  // namespace

PacketStatus findPacket(std::string_view data, Packet& out) {
  if (data.size() < kHeadSize) return PacketStatus::kNeedMore;
  const size_t size = readU16(data, 1);
  if (data.size() < kHeadSize + size) return PacketStatus::kNeedMore;
  out.modifier1 = static_cast<uint8_t>(data[0]);
  out.modifier2 = static_cast<uint8_t>(data[3]);
  out.vars = data.substr(kHeadSize, size);
  out.size = kHeadSize + size;
  return PacketStatus::kComplete;
}

bool parseVars(std::string_view vars, std::vector<Var>& out, std::string& error) {
  out.clear();
  // One allocation for a front server's usual packet (Debian's uwsgi_params are 16 vars, then
  // the request's headers), not a doubling per few vars.
  out.reserve(32);
  size_t pos = 0;
  while (pos < vars.size()) {
    if (vars.size() - pos < 2) {
      error = "truncated key size";
      return false;
    }
    const size_t keySize = readU16(vars, pos);
    pos += 2;
    if (keySize == 0) {
      error = "empty key";
      return false;
    }
    if (vars.size() - pos < keySize) {
      error = "key past the end of the vars";
      return false;
    }
    std::string_view key = vars.substr(pos, keySize);
    pos += keySize;
    if (vars.size() - pos < 2) {
      error = "truncated value size";
      return false;
    }
    const size_t valueSize = readU16(vars, pos);
    pos += 2;
    if (vars.size() - pos < valueSize) {
      error = "value past the end of the vars";
      return false;
    }
    out.push_back(Var{key, vars.substr(pos, valueSize)});
    pos += valueSize;
  }
  return true;
}

bool appendVar(std::string& out, std::string_view key, std::string_view value) {
  if (key.empty() || key.size() > 0xffff || value.size() > 0xffff) return false;
  writeU16(out, key.size());
  out.append(key);
  writeU16(out, value.size());
  out.append(value);
  return true;
}

bool serializePacket(const std::vector<std::pair<std::string, std::string>>& vars,
                     std::string& out, uint8_t modifier1, uint8_t modifier2) {
  std::string packet(kHeadSize, '\0');
  for (const auto& [key, value] : vars) {
    if (!appendVar(packet, key, value)) return false;
    if (packet.size() - kHeadSize > kMaxVarsSize) return false;
  }
  const size_t size = packet.size() - kHeadSize;
  packet[0] = static_cast<char>(modifier1);
  packet[1] = static_cast<char>(size & 0xff);
  packet[2] = static_cast<char>((size >> 8) & 0xff);
  packet[3] = static_cast<char>(modifier2);
  out.append(packet);
  return true;
}

}  // namespace portico::http::uwsgi
