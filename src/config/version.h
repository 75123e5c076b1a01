#pragma once

namespace portico {

// The release reported by `portico --version`; keep in step with project(VERSION) in
// CMakeLists.txt.
inline constexpr char kPorticoVersion[] = "0.1.0";

}  // namespace portico
