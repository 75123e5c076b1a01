#include "upstream/response_parser.h"

#include <algorithm>

#include "http/char_tables.h"

namespace portico::upstream {
namespace {

// RFC 9110 tchar.
bool isTokenChar(unsigned char c) { return http::kCharTables.tchar[c]; }

// A control byte other than HTAB (NUL, CR, LF, DEL...): never in a value or a reason phrase.
bool isForbiddenInValue(unsigned char c) { return !http::kCharTables.fieldValue[c]; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A Content-Length value: digits only, no overflow (nginx's ngx_atoof).
std::optional<uint64_t> parseLength(std::string_view v) {
  if (v.empty() || v.size() > 18) return std::nullopt;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// Checks one "name: value" field line; the parsed header, or nullopt.
std::optional<http::Header> parseField(std::string_view line) {
  if (line.empty() || line[0] == ' ' || line[0] == '\t') return std::nullopt;  // obs-fold
  // A token, then ':' (not a token character): one pass over the name.
  size_t colon = 0;
  while (colon < line.size() && isTokenChar(static_cast<unsigned char>(line[colon]))) ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return std::nullopt;
  std::string_view value = trim(line.substr(colon + 1));
  for (char c : value) {
    if (isForbiddenInValue(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return http::Header{std::string(line.substr(0, colon)), std::string(value)};
}

constexpr size_t kMaxChunkLine = 4096;  // a chunk-size line with its extensions

}  // namespace

ResponseParser::Status ResponseParser::fail(std::string text) {
  state_ = State::kError;
  error_ = std::move(text);
  return Status::kError;
}

// The next line from `pos` (without its LF or CRLF); nullopt when no LF has arrived. With
// `strayCr`, whether the line holds a CR that does not end it.
std::optional<std::string_view> ResponseParser::takeLine(std::string_view data, size_t& pos,
                                                         bool* strayCr) {
  size_t lf = data.find('\n', pos);
  if (lf == std::string_view::npos) return std::nullopt;
  std::string_view line = data.substr(pos, lf - pos);
  pos = lf + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (strayCr) *strayCr = line.find('\r') != std::string_view::npos;
  return line;
}

ResponseParser::Status ResponseParser::parseOneHead(std::string_view data, size_t& consumed,
                                                    bool& complete) {
  complete = false;
  // What arrived must start like a status line, so garbage is refused at once.
  constexpr std::string_view kPrefix = "HTTP/1.";
  size_t n = std::min(data.size(), kPrefix.size());
  if (data.substr(0, n) != kPrefix.substr(0, n)) {
    return fail("upstream sent no valid HTTP/1.0 header");
  }
  // The end of the head: an empty line.
  size_t end = std::string_view::npos;
  for (size_t lf = data.find('\n'); lf != std::string_view::npos; lf = data.find('\n', lf + 1)) {
    if (lf + 1 < data.size() && data[lf + 1] == '\n') {
      end = lf + 2;
      break;
    }
    if (lf + 2 < data.size() && data[lf + 1] == '\r' && data[lf + 2] == '\n') {
      end = lf + 3;
      break;
    }
    if (lf + 1 > maxHead_) break;
  }
  if (end == std::string_view::npos || end > maxHead_) {
    if (data.size() >= maxHead_ || end != std::string_view::npos) {
      tooBig_ = true;
      return fail("upstream sent too big header");
    }
    return Status::kNeedMore;
  }
  std::string_view head = data.substr(0, end);
  size_t pos = 0;
  // A head's lines are not searched for a stray CR: the status line's checks and parseField
  // refuse one wherever it is (it is neither a token character nor allowed in a value).
  std::optional<std::string_view> statusLine = takeLine(head, pos);
  std::string_view s = *statusLine;
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (s.size() < 12 || s[7] < '0' || s[7] > '1' || s[8] != ' ' || s[9] < '1' ||
      s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
      (s.size() > 12 && s[12] != ' ')) {
    return fail("upstream sent no valid HTTP/1.0 header");
  }
  head_ = UpstreamHead{};
  head_.versionMinor = s[7] - '0';
  head_.status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  std::string_view reason = s.size() > 13 ? s.substr(13) : std::string_view();
  for (char c : reason) {
    if (isForbiddenInValue(static_cast<unsigned char>(c))) {
      return fail("upstream sent no valid HTTP/1.0 header");
    }
  }
  head_.reason = std::string(reason);
  head_.headers.reserve(12);  // most heads: one allocation (768 bytes: malloc's fast cache)
  while (true) {
    std::optional<std::string_view> line = takeLine(head, pos);
    if (!line) return fail("upstream sent invalid header");
    if (line->empty()) break;
    std::optional<http::Header> field = parseField(*line);
    if (!field) return fail("upstream sent invalid header");
    head_.headers.push_back(std::move(*field));
  }
  consumed = end;
  complete = true;
  return Status::kHead;
}

ResponseParser::Status ResponseParser::parseHead(std::string_view data, size_t& consumed) {
  consumed = 0;
  if (state_ == State::kError) return Status::kError;
  while (true) {
    size_t used = 0;
    bool complete = false;
    Status st = parseOneHead(data.substr(consumed), used, complete);
    if (st == Status::kError) return st;
    if (!complete) return Status::kNeedMore;
    consumed += used;
    // Interim answers (100 Continue, 103 Early Hints) are skipped, as nginx does.
    if (head_.status >= 100 && head_.status < 200 && head_.status != 101) continue;
    return finishHead();
  }
}

ResponseParser::Status ResponseParser::finishHead() {
  const http::Header* length = nullptr;
  const http::Header* coding = nullptr;
  bool close = false, keepAliveToken = false;
  for (const http::Header& h : head_.headers) {
    if (http::iequals(h.name, "Content-Length")) {
      if (!parseLength(h.value)) {
        return fail("upstream sent invalid \"Content-Length\" header: \"" + h.name + ": " +
                    h.value + "\"");
      }
      if (length && length->value != h.value) {
        return fail("upstream sent duplicate header line: \"" + h.name + ": " + h.value +
                    "\", previous value: \"" + length->name + ": " + length->value + "\"");
      }
      length = &h;
    } else if (http::iequals(h.name, "Transfer-Encoding")) {
      if (coding) {
        return fail("upstream sent duplicate header line: \"" + h.name + ": " + h.value +
                    "\", previous value: \"" + coding->name + ": " + coding->value + "\"");
      }
      coding = &h;
    } else if (http::iequals(h.name, "Connection")) {
      std::string_view v = h.value;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view token = trim(v.substr(0, comma));
        if (http::iequals(token, "close")) close = true;
        if (http::iequals(token, "keep-alive")) keepAliveToken = true;
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      }
    }
  }
  if (coding && length) {
    return fail("upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the "
                "same time");
  }
  if (coding && (!http::iequals(coding->value, "chunked") || head_.versionMinor == 0)) {
    return fail("upstream sent unknown \"Transfer-Encoding\": \"" + coding->value + "\"");
  }
  head_.keepAlive = !close && (head_.versionMinor >= 1 || keepAliveToken);
  bool bodiless = headRequest_ || head_.status == 204 || head_.status == 304 ||
                  (head_.status >= 100 && head_.status < 200);
  if (length) head_.contentLength = *parseLength(length->value);
  if (bodiless) {
    head_.framing = BodyFraming::kNone;
    state_ = State::kDone;
  } else if (coding) {
    head_.framing = BodyFraming::kChunked;
    state_ = State::kChunkSize;
  } else if (length) {
    head_.framing = BodyFraming::kLength;
    remaining_ = head_.contentLength;
    state_ = remaining_ == 0 ? State::kDone : State::kBody;
  } else {
    head_.framing = BodyFraming::kClose;
    head_.keepAlive = false;
    state_ = State::kBody;
  }
  return Status::kHead;
}

ResponseParser::Status ResponseParser::parseBody(std::string_view data, size_t& consumed,
                                                 std::string& out) {
  consumed = 0;
  while (true) {
    switch (state_) {
      case State::kDone:
        return Status::kDone;
      case State::kError:
        return Status::kError;
      case State::kHead:
        return fail("upstream response parsed out of order");
      case State::kBody: {
        std::string_view rest = data.substr(consumed);
        if (head_.framing == BodyFraming::kClose) {
          out.append(rest);
          consumed = data.size();
          return Status::kNeedMore;
        }
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out.append(rest.substr(0, take));
        consumed += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          state_ = State::kDone;
          return Status::kDone;
        }
        return Status::kNeedMore;
      }
      case State::kChunkSize: {
        size_t pos = consumed;
        bool bad = false;
        std::optional<std::string_view> line = takeLine(data, pos, &bad);
        if (!line) {
          if (data.size() - consumed > kMaxChunkLine) {
            return fail("upstream sent invalid chunked response");
          }
          return Status::kNeedMore;
        }
        if (bad || line->size() > kMaxChunkLine) {
          return fail("upstream sent invalid chunked response");
        }
        std::string_view l = *line;
        uint64_t size = 0;
        size_t i = 0;
        for (; i < l.size(); ++i) {
          unsigned char c = static_cast<unsigned char>(l[i]);
          int digit;
          if (c >= '0' && c <= '9') digit = c - '0';
          else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') digit = (c | 0x20) - 'a' + 10;
          else break;
          if (size > (uint64_t{1} << 59)) return fail("upstream sent invalid chunked response");
          size = size * 16 + static_cast<uint64_t>(digit);
        }
        if (i == 0) return fail("upstream sent invalid chunked response");
        std::string_view rest = l.substr(i);
        while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
        if (!rest.empty()) {
          if (rest.front() != ';') return fail("upstream sent invalid chunked response");
          for (char c : rest) {
            if (isForbiddenInValue(static_cast<unsigned char>(c))) {
              return fail("upstream sent invalid chunked response");
            }
          }
        }
        consumed = pos;
        if (size == 0) {
          state_ = State::kTrailers;
        } else {
          remaining_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        std::string_view rest = data.substr(consumed);
        if (rest.empty()) return Status::kNeedMore;
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out.append(rest.substr(0, take));
        consumed += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd: {
        std::string_view rest = data.substr(consumed);
        if (rest.empty()) return Status::kNeedMore;
        if (rest[0] == '\n') {
          consumed += 1;
        } else if (rest[0] == '\r') {
          if (rest.size() < 2) return Status::kNeedMore;
          if (rest[1] != '\n') return fail("upstream sent invalid chunked response");
          consumed += 2;
        } else {
          return fail("upstream sent invalid chunked response");
        }
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        size_t pos = consumed;
        bool bad = false;
        std::optional<std::string_view> line = takeLine(data, pos, &bad);
        if (!line) {
          // The same verdict as for the whole line (below), so that it does not depend on
          // how the bytes were split.
          if (trailerBytes_ + (data.size() - consumed) > maxHead_) {
            return fail("upstream sent invalid chunked response");
          }
          return Status::kNeedMore;
        }
        trailerBytes_ += pos - consumed;
        if (bad || trailerBytes_ > maxHead_) return fail("upstream sent invalid chunked response");
        consumed = pos;
        if (line->empty()) {
          state_ = State::kDone;
          return Status::kDone;
        }
        // Trailer fields are checked as header fields, then dropped (portico keeps none).
        if (!parseField(*line)) return fail("upstream sent invalid chunked response");
        break;
      }
    }
  }
}

ResponseParser::Status ResponseParser::onClose() {
  if (state_ == State::kDone) return Status::kDone;
  if (state_ == State::kBody && head_.framing == BodyFraming::kClose) {
    state_ = State::kDone;
    return Status::kDone;
  }
  if (state_ == State::kError) return Status::kError;
  return fail("upstream prematurely closed connection");
}

}  // namespace portico::upstream
