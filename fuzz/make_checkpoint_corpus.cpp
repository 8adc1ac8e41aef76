// Writes the seed corpus of checkpoint_format_fuzzer with encode_checkpoint itself: valid frames
// (empty, short and binary payloads), truncated ones (inside the magic, inside the header, one
// payload byte short), a wrong version, a flipped payload byte (bad CRC-32) and a trailing byte.
// Usage: make_checkpoint_corpus <directory>   (regenerates fuzz/corpus/checkpoint_format/)
#include <cstdio>
#include <fstream>
#include <string>

#include "src/checkpoint_format.h"

namespace {

void write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <directory>\n", argv[0]);
    return 2;
  }
  using feasible::detail::encode_checkpoint;
  const std::string dir = argv[1];
  std::string binary;
  for (int i = 0; i < 300; ++i) binary.push_back(static_cast<char>((i * 37 + 11) & 0xFF));
  // A payload that starts like the ZIP archive LibTorch writes (local file header signature).
  const std::string zip_like = std::string("PK\x03\x04", 4) + "archive/data.pkl" + binary;
  const std::string valid = encode_checkpoint(zip_like);

  write(dir, "valid_empty", encode_checkpoint(""));
  write(dir, "valid_text", encode_checkpoint("feasible checkpoint payload"));
  write(dir, "valid_zip_like", valid);
  write(dir, "truncated_in_magic", valid.substr(0, 5));
  write(dir, "truncated_in_header", valid.substr(0, 17));
  write(dir, "truncated_header_only", valid.substr(0, 24));
  write(dir, "truncated_payload", valid.substr(0, valid.size() - 1));
  std::string version = valid;
  version[8] = 2;  // format version 2
  write(dir, "wrong_version", version);
  std::string flipped = valid;
  flipped[100] = static_cast<char>(flipped[100] ^ 0x10);
  write(dir, "bad_checksum", flipped);
  write(dir, "trailing_byte", valid + "x");
  return 0;
}
