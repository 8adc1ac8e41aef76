// The byte framing of checkpoint files, and atomic file writes. Torch-free: links only zlib
// (the fuzz target calls decode_checkpoint directly).
//
// Layout (all integers little-endian), kHeaderSize = 24 bytes of header then the payload:
//   offset  0  8 bytes  magic "FEASCKPT"
//   offset  8  uint32   format version (kFormatVersion)
//   offset 12  uint64   payload size in bytes
//   offset 20  uint32   CRC-32 (zlib's crc32) of the payload
//   offset 24  payload  exactly `payload size` bytes; nothing may follow
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace feasible {
namespace detail {

/// The 8 magic bytes that open every checkpoint file.
inline constexpr char kCheckpointMagic[8] = {'F', 'E', 'A', 'S', 'C', 'K', 'P', 'T'};
/// The format version this build writes and the only one it reads.
inline constexpr uint32_t kCheckpointFormatVersion = 1;
/// Size of the header in bytes (magic, version, payload size, CRC-32).
inline constexpr size_t kCheckpointHeaderSize = 24;

/// Result of decoding a checkpoint file's bytes.
struct DecodedCheckpoint {
  /// Whether the bytes are a valid checkpoint frame (magic, version, size and checksum).
  bool ok = false;
  /// What is wrong when !ok (without the file name; the caller adds it).
  std::string error;
  /// The payload, when ok.
  std::string payload;
  /// The format version read from the header (0 when the header is too short to hold one).
  uint32_t version = 0;
};

/// Wraps `payload` in the file format: magic, format version, payload size, CRC-32 of the
/// payload (zlib).
std::string encode_checkpoint(const std::string& payload);

/// Checks magic, version, size and checksum; never throws, never reads out of bounds;
/// on failure ok=false and `error` says what is wrong (the caller adds the file name).
DecodedCheckpoint decode_checkpoint(const std::string& bytes);

/// CRC-32 of `data` as computed by zlib's crc32 (the IEEE 802.3 polynomial).
uint32_t checkpoint_crc32(const std::string& data);

/// Writes `bytes` to `path` atomically: to a new temporary file in the same directory
/// (named `<path>.tmp.<pid>.<n>`, unique), flushed with fsync, then renamed over `path`; the
/// directory is fsynced afterwards when possible. On any failure the temporary file is removed
/// and a std::runtime_error naming `path` is thrown; `path` itself is never left half-written.
/// `after_chunk`, when given, is called with the number of bytes written so far after each
/// chunk of at most 64 KiB (tests use it to fail or crash in the middle of a write).
void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::function<void(size_t)>& after_chunk = nullptr);

/// How long (seconds) a temporary file must have gone unmodified before
/// remove_stale_temporaries() removes it even though its writer's pid is alive (a reused pid, or
/// a writer on another machine): 1 hour. A save in progress modifies its temporary at least
/// every 64 KiB written.
inline constexpr long kStaleTemporaryAgeSeconds = 3600;

/// Removes the temporary files that interrupted saves of `path` left next to it, and returns
/// their paths (spelled with `path`'s directory part), in directory order. A file is a
/// temporary of `path` when it is a regular file named `<name of path>.tmp.<pid>.<n>` (decimal
/// pid and n) in `path`'s directory; it is stale, and removed, when no save of this process is
/// writing it, and either (a) no live process on this machine has that pid (or the pid is this
/// process's own), or (b) it has not been modified for kStaleTemporaryAgeSeconds. So the
/// temporary of a concurrent save by another live process on this machine is kept. Files that
/// cannot be removed (or that another process removes first) are skipped silently; an
/// unreadable directory gives an empty list. Never throws except std::bad_alloc.
std::vector<std::string> remove_stale_temporaries(const std::string& path);

/// Reads the whole file; throws std::runtime_error naming `path` when it cannot be read.
std::string read_whole_file(const std::string& path);

}  // namespace detail
}  // namespace feasible
