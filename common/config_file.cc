#include "common/config_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

ABSL_FLAG(std::string, config, "",
          "Configuration file: one \"name = value\" a line with the names of this binary's "
          "flags, '#' comments (e.g. /etc/txcoord/txcoord.conf). Flags given on the command "
          "line override it.");

namespace txcoord {
namespace {

// Flags that act on the parsing itself and so make no sense in the file.
bool IsParsingFlag(absl::string_view name) {
  return name == "config" || name == "flagfile" || name == "fromenv" || name == "tryfromenv" ||
         name == "undefok";
}

// The line without a comment: '#' at its start or after white space.
absl::string_view StripComment(absl::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' &&
        (i == 0 || absl::ascii_isspace(static_cast<unsigned char>(line[i - 1])))) {
      return line.substr(0, i);
    }
  }
  return line;
}

}  // namespace

absl::StatusOr<std::string> ConfigPathFromArgs(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--config" || arg == "-config") {
      if (i + 1 >= argc) return absl::InvalidArgumentError("--config needs a file name");
      path = argv[++i];
    } else if (absl::StartsWith(arg, "--config=") || absl::StartsWith(arg, "-config=")) {
      path = std::string(arg.substr(arg.find('=') + 1));
      if (path.empty()) return absl::InvalidArgumentError("--config needs a file name");
    }
  }
  return path;
}

absl::Status ApplyConfig(absl::string_view path, absl::string_view contents) {
  absl::flat_hash_map<std::string, int> line_of_name;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    const absl::string_view text = absl::StripAsciiWhitespace(StripComment(line));
    if (text.empty()) continue;
    auto where = [&] { return absl::StrCat(path, ":", line_number, ": "); };
    const size_t equals = text.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected \"name = value\", got \"", text, "\""));
    }
    const std::string name =
        absl::StrReplaceAll(absl::StripAsciiWhitespace(text.substr(0, equals)), {{"-", "_"}});
    const absl::string_view value = absl::StripAsciiWhitespace(text.substr(equals + 1));
    if (name.empty())
      return absl::InvalidArgumentError(absl::StrCat(where(), "no name before '='"));
    if (IsParsingFlag(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "'", name, "' cannot be set in a configuration file"));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr || flag->IsRetired()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "unknown name '", name, "'"));
    }
    if (auto [it, inserted] = line_of_name.try_emplace(name, line_number); !inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "'", name, "' is already set on line ", it->second));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "bad value for '", name, "': ", error));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(const std::string& path) {
  auto unreadable = [&path](int error) {
    const std::string message =
        absl::StrCat("cannot read configuration file ", path, ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return unreadable(errno);
  std::string contents;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) contents.append(buffer, n);
  // A directory opens but fails to read (EISDIR).
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return unreadable(error);
  return ApplyConfig(path, contents);
}

absl::Status ApplyConfigFileFromArgs(int argc, char** argv) {
  absl::StatusOr<std::string> path = ConfigPathFromArgs(argc, argv);
  if (!path.ok()) return path.status();
  if (path->empty()) return absl::OkStatus();
  return ApplyConfigFile(*path);
}

}  // namespace txcoord
