// libFuzzer target for the checkpoint file framing (src/checkpoint_format.h): magic, format
// version, payload size and CRC-32. Whatever the bytes, decode_checkpoint must not crash, read
// out of bounds (ASan) or hit undefined behaviour (UBSan), and its answer must be coherent:
//   - ok  => no error, the current version, and the bytes are exactly encode(payload)
//            (a payload has a single valid frame);
//   - !ok => an error message and no payload.
// Round-trip property with the input as a payload: decode(encode(p)) is ok with payload p;
// every proper prefix of that frame (a truncated file) and the frame with one byte changed
// (a corrupted file) are refused.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "src/checkpoint_format.h"

namespace {

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "checkpoint_format_fuzzer: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace feasible::detail;
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  // 1. Arbitrary bytes as a file.
  const DecodedCheckpoint d = decode_checkpoint(bytes);
  if (d.ok) {
    require(d.error.empty(), "ok with an error message");
    require(d.version == kCheckpointFormatVersion, "ok with another format version");
    require(bytes.size() == kCheckpointHeaderSize + d.payload.size(), "ok with a wrong size");
    require(encode_checkpoint(d.payload) == bytes, "ok but not the frame of its payload");
  } else {
    require(!d.error.empty(), "refused without an error message");
    require(d.payload.empty(), "refused with a payload");
  }

  // 2. The input as a payload: round trip.
  const std::string frame = encode_checkpoint(bytes);
  require(frame.size() == kCheckpointHeaderSize + bytes.size(), "frame size");
  const DecodedCheckpoint r = decode_checkpoint(frame);
  require(r.ok, "decode(encode(p)) refused");
  require(r.payload == bytes, "decode(encode(p)).payload != p");
  require(r.version == kCheckpointFormatVersion, "decode(encode(p)).version");

  // 3. A truncated frame (cut chosen by the input) is refused.
  if (size >= 2) {
    const size_t cut = (static_cast<size_t>(data[0]) << 8 | data[1]) % frame.size();
    require(!decode_checkpoint(frame.substr(0, cut)).ok, "truncated frame accepted");
  }

  // 4. One changed byte anywhere (header or payload) is refused: a wrong magic, version or size
  //    field, or a single-byte error in the payload or the stored CRC-32 (CRC-32 detects every
  //    burst of up to 32 bits).
  if (size >= 3) {
    std::string corrupted = frame;
    const size_t at = (static_cast<size_t>(data[1]) << 8 | data[2]) % frame.size();
    const unsigned char flip = data[0] == 0 ? 0x01 : data[0];
    corrupted[at] = static_cast<char>(static_cast<unsigned char>(corrupted[at]) ^ flip);
    require(!decode_checkpoint(corrupted).ok, "corrupted frame accepted");
  }
  return 0;
}
