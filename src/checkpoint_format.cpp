// Checkpoint framing (magic, version, size, CRC-32) and atomic writes. Torch-free.
#include "src/checkpoint_format.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace feasible {
namespace detail {

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
uint32_t get_u32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}
uint64_t get_u64(const std::string& in, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

std::string hex32(uint32_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

uint32_t checkpoint_crc32(const std::string& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  size_t left = data.size();
  while (left > 0) {  // zlib's length is a uInt: feed at most 1 GiB at a time
    const uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

std::string encode_checkpoint(const std::string& payload) {
  std::string out;
  out.reserve(kCheckpointHeaderSize + payload.size());
  out.append(kCheckpointMagic, sizeof(kCheckpointMagic));
  put_u32(out, kCheckpointFormatVersion);
  put_u64(out, static_cast<uint64_t>(payload.size()));
  put_u32(out, checkpoint_crc32(payload));
  out.append(payload);
  return out;
}

DecodedCheckpoint decode_checkpoint(const std::string& bytes) {
  DecodedCheckpoint d;
  try {
    if (bytes.empty()) {
      d.error = "the file is empty (0 bytes), not a checkpoint";
      return d;
    }
    const size_t magic_size = sizeof(kCheckpointMagic);
    if (bytes.size() < magic_size || std::memcmp(bytes.data(), kCheckpointMagic, magic_size) != 0) {
      // A short prefix of the magic is a truncated checkpoint, anything else a foreign file.
      const size_t n = std::min(bytes.size(), magic_size);
      if (bytes.size() < magic_size && std::memcmp(bytes.data(), kCheckpointMagic, n) == 0) {
        d.error = "truncated: " + std::to_string(bytes.size()) +
                  " bytes, shorter than the 24-byte header";
      } else {
        d.error = "not a feasible checkpoint: wrong magic bytes (expected \"FEASCKPT\")";
      }
      return d;
    }
    if (bytes.size() < magic_size + 4) {
      d.error =
          "truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the 24-byte header";
      return d;
    }
    d.version = get_u32(bytes, 8);
    if (d.version != kCheckpointFormatVersion) {
      d.error = "unsupported checkpoint format version " + std::to_string(d.version) +
                " (this build reads version " + std::to_string(kCheckpointFormatVersion) + ")";
      return d;
    }
    if (bytes.size() < kCheckpointHeaderSize) {
      d.error =
          "truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the 24-byte header";
      return d;
    }
    const uint64_t size = get_u64(bytes, 12);
    const uint32_t stored_crc = get_u32(bytes, 20);
    const uint64_t available = bytes.size() - kCheckpointHeaderSize;
    if (size > available) {
      d.error = "truncated: the header announces " + std::to_string(size) +
                " payload bytes but only " + std::to_string(available) + " follow";
      return d;
    }
    if (size < available) {
      d.error = "corrupted: " + std::to_string(available - size) +
                " unexpected bytes after the payload (header announces " + std::to_string(size) +
                " payload bytes)";
      return d;
    }
    std::string payload = bytes.substr(kCheckpointHeaderSize);
    const uint32_t crc = checkpoint_crc32(payload);
    if (crc != stored_crc) {
      d.error = "corrupted: checksum mismatch (stored CRC-32 " + hex32(stored_crc) + ", computed " +
                hex32(crc) + ")";
      return d;
    }
    d.payload = std::move(payload);
    d.ok = true;
  } catch (const std::exception& e) {  // std::bad_alloc, the only possible throw
    d = DecodedCheckpoint();
    d.error = std::string("cannot decode: ") + e.what();
  }
  return d;
}

namespace {
// The temporary files this process is writing now, by (device, inode): remove_stale_temporaries
// never removes them, whatever their name's pid says.
std::mutex& writing_mutex() {
  static std::mutex m;
  return m;
}
std::set<std::pair<dev_t, ino_t>>& writing_files() {
  static std::set<std::pair<dev_t, ino_t>> files;
  return files;
}

// Opens a new, unique temporary file next to `path` with mode 0666 (the kernel applies the
// umask, so no process-wide umask change is needed). Returns the descriptor and its name.
int create_temporary(const std::string& path, std::string& name) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint64_t n =
        counter.fetch_add(1) ^
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    name = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n % 1000000007ULL);
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

// Creates the temporary file of a save of `path` (see create_temporary) and registers it as
// being written, for the lifetime of the object. Creation and registration happen under one
// lock, so that no remove_stale_temporaries of another thread sees the file unregistered.
class RegisteredTemporary {
 public:
  RegisteredTemporary(const std::string& path, std::string& name) {
    std::lock_guard<std::mutex> lock(writing_mutex());
    fd_ = create_temporary(path, name);
    if (fd_ < 0) {
      error_ = errno;
      return;
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return;
    key_ = {st.st_dev, st.st_ino};
    registered_ = writing_files().insert(key_).second;
  }
  ~RegisteredTemporary() {
    if (!registered_) return;
    std::lock_guard<std::mutex> lock(writing_mutex());
    writing_files().erase(key_);
  }
  RegisteredTemporary(const RegisteredTemporary&) = delete;
  RegisteredTemporary& operator=(const RegisteredTemporary&) = delete;
  // The open descriptor, or -1 when the file could not be created.
  int fd() const { return fd_; }
  // The errno of the failed creation (0 when fd() >= 0).
  int error() const { return error_; }

 private:
  int fd_ = -1;
  int error_ = 0;
  std::pair<dev_t, ino_t> key_{};
  bool registered_ = false;
};
}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::function<void(size_t)>& after_chunk) {
  std::string tmp;
  const RegisteredTemporary temporary(path, tmp);
  const int fd = temporary.fd();
  if (fd < 0) {
    throw std::runtime_error(
        "cannot save checkpoint '" + path +
        "': cannot create a temporary file next to it: " + errno_text(temporary.error()));
  }
  bool closed = false;
  bool removed = false;
  // `err` is read by the caller right after the failing call, before any allocation.
  auto fail = [&](const std::string& what, int err) {
    if (!closed) ::close(fd);
    closed = true;
    ::unlink(tmp.c_str());
    removed = true;
    throw std::runtime_error("cannot save checkpoint '" + path + "': " + what +
                             (err != 0 ? ": " + errno_text(err) : std::string()));
  };
  size_t written = 0;
  try {
    while (written < bytes.size()) {
      const size_t chunk = std::min<size_t>(bytes.size() - written, 64 * 1024);
      size_t done = 0;
      while (done < chunk) {
        const ssize_t n = ::write(fd, bytes.data() + written + done, chunk - done);
        if (n < 0) {
          const int err = errno;
          if (err == EINTR) continue;
          fail("writing the temporary file '" + tmp + "' failed", err);
        }
        done += static_cast<size_t>(n);
      }
      written += chunk;
      if (after_chunk) after_chunk(written);
    }
  } catch (...) {  // a failed write, or a throwing `after_chunk`: leave no temporary file
    if (!closed) ::close(fd);
    if (!removed) ::unlink(tmp.c_str());
    throw;
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    fail("fsync of the temporary file '" + tmp + "' failed", err);
  }
  closed = true;
  if (::close(fd) != 0) {
    const int err = errno;
    fail("closing the temporary file '" + tmp + "' failed", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    fail("renaming '" + tmp + "' over it failed", err);
  }
  // Make the rename itself durable (best effort: some file systems refuse fsync on a directory).
  const int dir = ::open(parent_directory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

namespace {
// The pid in `suffix` = "<pid>.<n>" (both decimal, pid in 1..INT_MAX), or -1 when `suffix` has
// another form.
long temporary_writer_pid(const std::string& suffix) {
  const size_t dot = suffix.find('.');
  if (dot == 0 || dot == std::string::npos || dot + 1 == suffix.size() || dot > 10) return -1;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (i != dot && (suffix[i] < '0' || suffix[i] > '9')) return -1;
  }
  const long long pid = std::stoll(suffix.substr(0, dot));
  return pid >= 1 && pid <= INT_MAX ? static_cast<long>(pid) : -1;
}

// Whether a process other than this one has `pid` on this machine (EPERM: it exists, owned by
// another user).
bool other_process_alive(long pid) {
  if (pid == static_cast<long>(::getpid())) return false;
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno == EPERM;
}

bool being_written_here(const struct stat& st) {
  std::lock_guard<std::mutex> lock(writing_mutex());
  return writing_files().count({st.st_dev, st.st_ino}) != 0;
}
}  // namespace

std::vector<std::string> remove_stale_temporaries(const std::string& path) {
  std::vector<std::string> removed;
  const size_t slash = path.find_last_of('/');
  const std::string shown_dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  if (prefix.size() == 5) return removed;  // `path` names a directory
  const std::string dir = parent_directory(path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return removed;
  std::vector<std::string> candidates;
  while (const struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0) {
      candidates.push_back(name);
    }
  }
  ::closedir(d);
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  for (const auto& name : candidates) {
    const long pid = temporary_writer_pid(name.substr(prefix.size()));
    if (pid < 0) continue;
    const std::string full = (dir == "/" ? "" : dir) + "/" + name;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (being_written_here(st)) continue;
    const bool old = now - st.st_mtime > kStaleTemporaryAgeSeconds;
    if (other_process_alive(pid) && !old) continue;
    if (::unlink(full.c_str()) == 0) removed.push_back(shown_dir + name);
  }
  return removed;
}

std::string read_whole_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw std::runtime_error("cannot load checkpoint '" + path +
                             "': cannot open the file: " + errno_text(err));
  }
  std::string bytes;
  char buffer[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      ::close(fd);
      throw std::runtime_error("cannot load checkpoint '" + path +
                               "': reading the file failed: " + errno_text(err));
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

}  // namespace detail
}  // namespace feasible
