// Tests of the dataset code (include/feasible/data.h): read_idx on small IDX files written by the
// tests byte by byte (plain and gzip, every value type), its error messages (truncated, corrupt,
// wrong magic or type, trailing bytes, missing file), load_fashion_mnist on a fake dataset folder
// and (when installed) on Debian's dataset-fashion-mnist, take(), and BatchLoader (every example
// once per epoch, batch sizes, reshuffling, seeding, errors, the rows (indices) and groups of
// every batch).

#include "feasible/data.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using feasible::data::BatchLoader;
using feasible::data::Dataset;
using feasible::data::Split;
using feasible_test::error_of;

using Bytes = std::vector<unsigned char>;

// A fresh directory under /tmp, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/feasible_data_test_XXXXXX";
    const char* made = mkdtemp(pattern);
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Writes `bytes` as one gzip member ("wb") or appends another member ("ab").
void write_gzip(const std::string& path, const Bytes& bytes, const char* mode = "wb") {
  gzFile f = gzopen(path.c_str(), mode);
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Appends the low `width` bytes of `v`, most significant first (big-endian).
void put_be(Bytes& out, uint64_t v, int width) {
  for (int b = width - 1; b >= 0; --b) out.push_back(static_cast<unsigned char>(v >> (8 * b)));
}

// The IDX header: 0, 0, type, number of dimensions, then each dimension as a big-endian int32.
Bytes idx_header(unsigned char type, const std::vector<uint32_t>& shape) {
  Bytes out = {0, 0, type, static_cast<unsigned char>(shape.size())};
  for (uint32_t d : shape) put_be(out, d, 4);
  return out;
}

Bytes idx_int32(const std::vector<int32_t>& values) {
  Bytes out = idx_header(0x0C, {static_cast<uint32_t>(values.size())});
  for (int32_t v : values) put_be(out, static_cast<uint32_t>(v), 4);
  return out;
}

Bytes idx_int16(const std::vector<int16_t>& values) {
  Bytes out = idx_header(0x0B, {static_cast<uint32_t>(values.size())});
  for (int16_t v : values) put_be(out, static_cast<uint16_t>(v), 2);
  return out;
}

Bytes idx_int8(const std::vector<int8_t>& values) {
  Bytes out = idx_header(0x09, {static_cast<uint32_t>(values.size())});
  for (int8_t v : values) out.push_back(static_cast<unsigned char>(v));
  return out;
}

Bytes idx_float32(const std::vector<float>& values) {
  Bytes out = idx_header(0x0D, {static_cast<uint32_t>(values.size())});
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    put_be(out, bits, 4);
  }
  return out;
}

Bytes idx_float64(const std::vector<double>& values) {
  Bytes out = idx_header(0x0E, {static_cast<uint32_t>(values.size())});
  for (double v : values) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put_be(out, bits, 8);
  }
  return out;
}

// A uint8 IDX file of the given shape whose value i (row-major) is value(i).
template <class F>
Bytes idx_uint8(const std::vector<uint32_t>& shape, F value) {
  Bytes out = idx_header(0x08, shape);
  size_t count = 1;
  for (uint32_t d : shape) count *= d;
  for (size_t i = 0; i < count; ++i) out.push_back(static_cast<unsigned char>(value(i)));
  return out;
}

unsigned char pattern(size_t i) { return static_cast<unsigned char>((i * 37 + 11) % 256); }

// Writes `bytes` as `name` (plain) and `name`.gz in `dir`; returns both paths.
std::vector<std::string> write_both(const TempDir& dir, const std::string& name,
                                    const Bytes& bytes) {
  write_plain(dir.file(name), bytes);
  write_gzip(dir.file(name + ".gz"), bytes);
  return {dir.file(name), dir.file(name + ".gz")};
}

TEST(ReadIdx, Uint8ThreeDimensional) {
  TempDir dir;
  for (const auto& path : write_both(dir, "u8", idx_uint8({3, 4, 5}, pattern))) {
    SCOPED_TRACE(path);
    const auto t = feasible::data::read_idx(path);
    EXPECT_EQ(t.scalar_type(), torch::kByte);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 4, 5}));
    ASSERT_TRUE(t.is_contiguous());
    const auto* p = t.data_ptr<uint8_t>();
    for (size_t i = 0; i < 60; ++i) ASSERT_EQ(p[i], pattern(i)) << i;
    // Row-major: element [a][b][c] is value a * 20 + b * 5 + c.
    EXPECT_EQ(t[2][1][3].item<int>(), pattern(2 * 20 + 1 * 5 + 3));
  }
}

TEST(ReadIdx, Int32) {
  TempDir dir;
  const std::vector<int32_t> values = {0,
                                       1,
                                       -1,
                                       123456789,
                                       -987654321,
                                       std::numeric_limits<int32_t>::min(),
                                       std::numeric_limits<int32_t>::max(),
                                       256};
  for (const auto& path : write_both(dir, "i32", idx_int32(values))) {
    SCOPED_TRACE(path);
    const auto t = feasible::data::read_idx(path);
    EXPECT_EQ(t.scalar_type(), torch::kInt);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{static_cast<int64_t>(values.size())}));
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(t.data_ptr<int32_t>()[i], values[i]) << i;
  }
}

TEST(ReadIdx, Int16AndInt8) {
  TempDir dir;
  const std::vector<int16_t> s = {0, 1, -1, 300, -32768, 32767};
  for (const auto& path : write_both(dir, "i16", idx_int16(s))) {
    SCOPED_TRACE(path);
    const auto t = feasible::data::read_idx(path);
    EXPECT_EQ(t.scalar_type(), torch::kShort);
    ASSERT_EQ(t.numel(), 6);
    for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(t.data_ptr<int16_t>()[i], s[i]) << i;
  }
  const std::vector<int8_t> c = {0, 1, -1, 127, -128};
  for (const auto& path : write_both(dir, "i8", idx_int8(c))) {
    SCOPED_TRACE(path);
    const auto t = feasible::data::read_idx(path);
    EXPECT_EQ(t.scalar_type(), torch::kChar);
    ASSERT_EQ(t.numel(), 5);
    for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(t.data_ptr<int8_t>()[i], c[i]) << i;
  }
}

TEST(ReadIdx, Float32AndFloat64) {
  TempDir dir;
  const std::vector<float> f = {0.0f,   -1.5f,    3.14159274f,
                                1e-30f, -6.5e20f, std::numeric_limits<float>::infinity()};
  for (const auto& path : write_both(dir, "f32", idx_float32(f))) {
    SCOPED_TRACE(path);
    const auto t = feasible::data::read_idx(path);
    EXPECT_EQ(t.scalar_type(), torch::kFloat);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{6}));
    // Exact: the bytes are copied, not converted.
    for (size_t i = 0; i < f.size(); ++i) EXPECT_EQ(t.data_ptr<float>()[i], f[i]) << i;
  }
  const std::vector<double> d = {M_PI, -2.5e300, 0.1, -0.0, 5e-324};
  for (const auto& path : write_both(dir, "f64", idx_float64(d))) {
    SCOPED_TRACE(path);
    const auto t = feasible::data::read_idx(path);
    EXPECT_EQ(t.scalar_type(), torch::kDouble);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{5}));
    for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(t.data_ptr<double>()[i], d[i]) << i;
    EXPECT_TRUE(std::signbit(t.data_ptr<double>()[3]));
  }
}

TEST(ReadIdx, MultiDimensionalFloat64) {
  // A [2, 3] float64 file: row-major order.
  TempDir dir;
  Bytes bytes = idx_header(0x0E, {2, 3});
  for (int i = 0; i < 6; ++i) {
    const double v = 0.5 * i - 1;
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    put_be(bytes, bits, 8);
  }
  write_plain(dir.file("m"), bytes);
  const auto t = feasible::data::read_idx(dir.file("m"));
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t[1][0].item<double>(), 0.5);
  EXPECT_EQ(t[0][2].item<double>(), 0.0);
}

TEST(ReadIdx, ConcatenatedGzipMembers) {
  // A gzip file of two members (header in the first, values in the second) is one stream.
  TempDir dir;
  const Bytes whole = idx_uint8({2, 50}, pattern);
  const Bytes head(whole.begin(), whole.begin() + 12);
  const Bytes tail(whole.begin() + 12, whole.end());
  const std::string path = dir.file("two.gz");
  write_gzip(path, head, "wb");
  write_gzip(path, tail, "ab");
  const auto t = feasible::data::read_idx(path);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 50}));
  for (size_t i = 0; i < 100; ++i) ASSERT_EQ(t.data_ptr<uint8_t>()[i], pattern(i)) << i;
}

TEST(ReadIdx, LargeGzipSpansManyInflateChunks) {
  // 3 MiB of pseudo-random bytes: the inflated data is several times the reader's 1 MiB output
  // chunk, so the result must be stitched from several inflate() calls.
  TempDir dir;
  const uint32_t n = 3u << 20;
  const auto value = [](size_t i) { return (i * 2654435761u) >> 13; };
  const std::string path = dir.file("big.gz");
  write_gzip(path, idx_uint8({n}, value));
  const auto t = feasible::data::read_idx(path);
  ASSERT_EQ(t.numel(), n);
  const auto* p = t.data_ptr<uint8_t>();
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) mismatches += p[i] != static_cast<unsigned char>(value(i));
  EXPECT_EQ(mismatches, 0u);
}

TEST(ReadIdxErrors, TruncatedPlainFile) {
  TempDir dir;
  Bytes bytes = idx_header(0x08, {10});
  for (int i = 0; i < 5; ++i) bytes.push_back(1);
  write_plain(dir.file("short"), bytes);
  const auto msg = error_of([&] { feasible::data::read_idx(dir.file("short")); });
  EXPECT_HAS(msg, "'" + dir.file("short") + "'");
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "10 values");
  EXPECT_HAS(msg, "holds 5");
  // The same for an int32 file: 3 values announced (12 bytes), 10 bytes present.
  Bytes ints = idx_header(0x0C, {3});
  for (int i = 0; i < 10; ++i) ints.push_back(0);
  write_plain(dir.file("short32"), ints);
  const auto msg32 = error_of([&] { feasible::data::read_idx(dir.file("short32")); });
  EXPECT_HAS(msg32, "truncated");
  EXPECT_HAS(msg32, "12 bytes of data");
}

TEST(ReadIdxErrors, TruncatedHeader) {
  TempDir dir;
  write_plain(dir.file("h"), {0, 0, 8, 3, 0, 0, 0, 1});  // 3 dimensions, 1 given
  auto msg = error_of([&] { feasible::data::read_idx(dir.file("h")); });
  EXPECT_HAS(msg, dir.file("h"));
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "16-byte header");
  write_plain(dir.file("tiny"), {0, 0});
  msg = error_of([&] { feasible::data::read_idx(dir.file("tiny")); });
  EXPECT_HAS(msg, dir.file("tiny"));
  EXPECT_HAS(msg, "not an IDX file");
  write_plain(dir.file("empty"), {});
  msg = error_of([&] { feasible::data::read_idx(dir.file("empty")); });
  EXPECT_HAS(msg, "not an IDX file");
  write_plain(dir.file("nodims"), {0, 0, 8, 0});
  msg = error_of([&] { feasible::data::read_idx(dir.file("nodims")); });
  EXPECT_HAS(msg, dir.file("nodims"));
  EXPECT_HAS(msg, "at least one dimension");
}

TEST(ReadIdxErrors, HugeHeaderIsRejectedBeforeAllocating) {
  // A header announcing 2^31 bytes with 3 bytes of data is truncated (no 2 GiB allocation), and
  // 2^60 values is implausible.
  TempDir dir;
  Bytes bytes = idx_header(0x08, {0x80000000u});
  bytes.insert(bytes.end(), {1, 2, 3});
  write_plain(dir.file("big"), bytes);
  auto msg = error_of([&] { feasible::data::read_idx(dir.file("big")); });
  EXPECT_HAS(msg, "truncated");
  EXPECT_HAS(msg, "2147483648 values");
  Bytes huge = idx_header(0x0E, {1u << 20, 1u << 20, 1u << 20});
  huge.push_back(0);
  write_plain(dir.file("huge"), huge);
  msg = error_of([&] { feasible::data::read_idx(dir.file("huge")); });
  EXPECT_HAS(msg, dir.file("huge"));
  EXPECT_HAS(msg, "implausible size");
}

TEST(ReadIdxErrors, TruncatedGzip) {
  TempDir dir;
  const std::string full = dir.file("full.gz");
  write_gzip(full, idx_uint8({64, 64}, [](size_t i) { return (i * i + 7 * i) >> 3; }));
  ASSERT_EQ(feasible::data::read_idx(full).numel(), 64 * 64);  // the whole file reads
  const Bytes gz = read_bytes(full);
  ASSERT_GT(gz.size(), 40u);
  const std::string cut = dir.file("cut.gz");
  write_plain(cut, Bytes(gz.begin(), gz.begin() + gz.size() / 2));
  const auto msg = error_of([&] { feasible::data::read_idx(cut); });
  EXPECT_HAS(msg, "'" + cut + "'");
  EXPECT_HAS(msg, "gzip stream is truncated");
  // Only the 8-byte trailer (CRC-32 and size) missing: still truncated.
  const std::string no_trailer = dir.file("no_trailer.gz");
  write_plain(no_trailer, Bytes(gz.begin(), gz.end() - 8));
  const auto msg2 = error_of([&] { feasible::data::read_idx(no_trailer); });
  EXPECT_HAS(msg2, "gzip stream is truncated");
}

TEST(ReadIdxErrors, CorruptGzip) {
  // A wrong CRC-32 in the trailer (the 8th-last byte flipped) is corruption, not truncation.
  TempDir dir;
  const std::string full = dir.file("full.gz");
  write_gzip(full, idx_uint8({100}, pattern));
  Bytes gz = read_bytes(full);
  gz[gz.size() - 8] ^= 0xFF;
  const std::string bad = dir.file("bad.gz");
  write_plain(bad, gz);
  const auto msg = error_of([&] { feasible::data::read_idx(bad); });
  EXPECT_HAS(msg, "'" + bad + "'");
  EXPECT_HAS(msg, "gzip stream is corrupt");
  EXPECT_HAS(msg, "zlib:");
}

TEST(ReadIdxErrors, WrongMagic) {
  TempDir dir;
  for (const Bytes& start : {Bytes{1, 0}, Bytes{0, 7}, Bytes{0x1f, 0x00}}) {
    Bytes bytes = start;
    bytes.insert(bytes.end(), {8, 1, 0, 0, 0, 1, 42});
    const std::string path = dir.file("magic");
    write_plain(path, bytes);
    const auto msg = error_of([&] { feasible::data::read_idx(path); });
    EXPECT_HAS(msg, "'" + path + "'");
    EXPECT_HAS(msg, "magic number");
  }
}

TEST(ReadIdxErrors, UnknownTypeByte) {
  TempDir dir;
  for (const unsigned char type : {0x00, 0x0A, 0x0F, 0x07}) {
    const std::string path = dir.file("type");
    write_plain(path, {0, 0, type, 1, 0, 0, 0, 1, 42});
    const auto msg = error_of([&] { feasible::data::read_idx(path); });
    EXPECT_HAS(msg, "'" + path + "'");
    EXPECT_HAS(msg, "unknown type byte");
  }
  write_plain(dir.file("a"), {0, 0, 0x0A, 1, 0, 0, 0, 1, 42});
  const auto msg = error_of([&] { feasible::data::read_idx(dir.file("a")); });
  EXPECT_HAS(msg, "0xa");
}

TEST(ReadIdxErrors, TrailingBytes) {
  TempDir dir;
  Bytes bytes = idx_uint8({3}, pattern);
  bytes.push_back(9);
  bytes.push_back(9);
  for (const auto& path : write_both(dir, "trail", bytes)) {
    const auto msg = error_of([&] { feasible::data::read_idx(path); });
    EXPECT_HAS(msg, "'" + path + "'");
    EXPECT_HAS(msg, "2 bytes after the 3 values");
  }
}

TEST(ReadIdxErrors, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("nope.gz");
  const auto msg = error_of([&] { feasible::data::read_idx(path); });
  EXPECT_HAS(msg, "cannot open '" + path + "'");
  EXPECT_HAS(msg, "No such file");
  // A directory is not a readable file either.
  const auto dir_msg = error_of([&] { feasible::data::read_idx(dir.path()); });
  EXPECT_HAS(dir_msg, dir.path());
}

// Writes a fake Fashion-MNIST split: n images [n, rows, 28] of bytes pattern(i) and the labels.
void write_split(const TempDir& dir, const std::string& prefix, uint32_t n,
                 const std::vector<unsigned char>& labels, bool gzip, uint32_t rows = 28) {
  const Bytes images = idx_uint8({n, rows, 28}, pattern);
  Bytes lab = idx_header(0x08, {static_cast<uint32_t>(labels.size())});
  lab.insert(lab.end(), labels.begin(), labels.end());
  const std::string img_name = prefix + "-images-idx3-ubyte";
  const std::string lab_name = prefix + "-labels-idx1-ubyte";
  if (gzip) {
    write_gzip(dir.file(img_name + ".gz"), images);
    write_gzip(dir.file(lab_name + ".gz"), lab);
  } else {
    write_plain(dir.file(img_name), images);
    write_plain(dir.file(lab_name), lab);
  }
}

void expect_fake_split(const Dataset& ds, const std::vector<unsigned char>& labels) {
  const int64_t n = static_cast<int64_t>(labels.size());
  EXPECT_EQ(ds.size(), n);
  ASSERT_EQ(ds.inputs.sizes(), (std::vector<int64_t>{n, 784}));
  ASSERT_EQ(ds.inputs.scalar_type(), torch::kFloat);
  ASSERT_EQ(ds.targets.scalar_type(), torch::kLong);
  ASSERT_EQ(ds.targets.sizes(), (std::vector<int64_t>{n}));
  const auto x = ds.inputs.contiguous();
  const float* p = x.data_ptr<float>();
  // Each pixel is its byte divided by 255, computed here in float (within 4 ulps).
  for (int64_t i = 0; i < n * 784; ++i) {
    ASSERT_FLOAT_EQ(p[i], static_cast<float>(pattern(i)) / 255.0f) << i;
  }
  EXPECT_GE(x.min().item<float>(), 0.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(ds.targets[i].item<int64_t>(), labels[i]) << i;
}

TEST(FashionMnist, FakeFolderGzipAndPlain) {
  TempDir dir;
  const std::vector<unsigned char> train_labels = {0, 9, 3, 3, 7};
  const std::vector<unsigned char> test_labels = {5, 1, 8};
  write_split(dir, "train", 5, train_labels, /*gzip=*/true);
  write_split(dir, "t10k", 3, test_labels, /*gzip=*/false);  // the names without .gz also work
  {
    SCOPED_TRACE("train");
    expect_fake_split(feasible::data::load_fashion_mnist(Split::kTrain, dir.path()), train_labels);
  }
  {
    SCOPED_TRACE("test");
    expect_fake_split(feasible::data::load_fashion_mnist(Split::kTest, dir.path()), test_labels);
  }
}

TEST(FashionMnist, PrefersGzipWhenBothExist) {
  // The .gz file is read first: give it 2 examples and the plain file 3.
  TempDir dir;
  write_split(dir, "train", 2, {4, 6}, /*gzip=*/true);
  write_split(dir, "train", 3, {1, 2, 3}, /*gzip=*/false);
  EXPECT_EQ(feasible::data::load_fashion_mnist(Split::kTrain, dir.path()).size(), 2);
}

TEST(FashionMnistErrors, MissingFolderNamesPathAndPackage) {
  TempDir dir;
  const auto msg = error_of([&] { feasible::data::load_fashion_mnist(Split::kTrain, dir.path()); });
  EXPECT_HAS(msg, dir.file("train-images-idx3-ubyte.gz"));
  EXPECT_HAS(msg, "dataset-fashion-mnist");
  const auto test_msg =
      error_of([&] { feasible::data::load_fashion_mnist(Split::kTest, dir.path()); });
  EXPECT_HAS(test_msg, dir.file("t10k-images-idx3-ubyte.gz"));
  EXPECT_HAS(test_msg, "dataset-fashion-mnist");
  // Images present, labels missing: the labels' path is named.
  write_split(dir, "train", 2, {1, 2}, /*gzip=*/true);
  fs::remove(dir.file("train-labels-idx1-ubyte.gz"));
  const auto lab_msg =
      error_of([&] { feasible::data::load_fashion_mnist(Split::kTrain, dir.path()); });
  EXPECT_HAS(lab_msg, dir.file("train-labels-idx1-ubyte.gz"));
  EXPECT_HAS(lab_msg, "dataset-fashion-mnist");
}

TEST(FashionMnistErrors, MismatchedCounts) {
  TempDir dir;
  write_split(dir, "train", 5, {1, 2, 3, 4}, /*gzip=*/true);
  const auto msg = error_of([&] { feasible::data::load_fashion_mnist(Split::kTrain, dir.path()); });
  EXPECT_HAS(msg, "holds 5 images");
  EXPECT_HAS(msg, "holds 4 labels");
  EXPECT_HAS(msg, dir.file("train-images-idx3-ubyte.gz"));
}

TEST(FashionMnistErrors, LabelAboveNine) {
  TempDir dir;
  write_split(dir, "t10k", 3, {1, 10, 2}, /*gzip=*/true);
  const auto msg = error_of([&] { feasible::data::load_fashion_mnist(Split::kTest, dir.path()); });
  EXPECT_HAS(msg, dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_HAS(msg, "label above 9");
}

TEST(FashionMnistErrors, WrongImageShapeOrLabelType) {
  TempDir dir;
  write_split(dir, "train", 2, {1, 2}, /*gzip=*/true, /*rows=*/27);
  auto msg = error_of([&] { feasible::data::load_fashion_mnist(Split::kTrain, dir.path()); });
  EXPECT_HAS(msg, "28x28 uint8 images");
  EXPECT_HAS(msg, dir.file("train-images-idx3-ubyte.gz"));
  // Labels stored as int32: rejected.
  write_split(dir, "t10k", 2, {1, 2}, /*gzip=*/true);
  write_gzip(dir.file("t10k-labels-idx1-ubyte.gz"), idx_int32({1, 2}));
  msg = error_of([&] { feasible::data::load_fashion_mnist(Split::kTest, dir.path()); });
  EXPECT_HAS(msg, "uint8 labels");
  EXPECT_HAS(msg, dir.file("t10k-labels-idx1-ubyte.gz"));
}

TEST(FashionMnist, RealDatasetIfInstalled) {
  if (!fs::exists(std::string(feasible::data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << feasible::data::kFashionMnistDir
                 << " is missing (apt-get install dataset-fashion-mnist)";
  }
  // Xiao et al. (2017): 60,000 training and 10,000 test images of 10 balanced classes
  // (6,000 and 1,000 per class).
  for (const auto& [split, n] : {std::pair<Split, int64_t>{Split::kTrain, 60000},
                                 std::pair<Split, int64_t>{Split::kTest, 10000}}) {
    SCOPED_TRACE(n);
    const auto ds = feasible::data::load_fashion_mnist(split);
    ASSERT_EQ(ds.size(), n);
    EXPECT_EQ(ds.inputs.sizes(), (std::vector<int64_t>{n, 784}));
    EXPECT_EQ(ds.inputs.scalar_type(), torch::kFloat);
    EXPECT_EQ(ds.targets.scalar_type(), torch::kLong);
    EXPECT_EQ(ds.targets.min().item<int64_t>(), 0);
    EXPECT_EQ(ds.targets.max().item<int64_t>(), 9);
    const auto counts = torch::bincount(ds.targets);
    for (int c = 0; c < 10; ++c) EXPECT_EQ(counts[c].item<int64_t>(), n / 10) << "class " << c;
    EXPECT_EQ(ds.inputs.min().item<float>(), 0.0f);
    EXPECT_EQ(ds.inputs.max().item<float>(), 1.0f);  // some pixel is 255
  }
}

// n examples: inputs[i] = {i, -i} (float), targets[i] = i.
Dataset ranged(int64_t n) {
  Dataset ds;
  const auto r = torch::arange(n, torch::kFloat);
  ds.inputs = torch::stack({r, -r}, 1);
  ds.targets = torch::arange(n, torch::kLong);
  return ds;
}

// The targets of one epoch of `loader`, batch by batch; checks each batch's rows match.
std::vector<int64_t> epoch_order(BatchLoader& loader, std::vector<int64_t>* sizes = nullptr) {
  std::vector<int64_t> order;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->inputs.size(0), batch->targets.size(0));
    EXPECT_TRUE(torch::equal(batch->inputs.select(1, 0), batch->targets.to(torch::kFloat)));
    EXPECT_TRUE(torch::equal(batch->inputs.select(1, 1), -batch->targets.to(torch::kFloat)));
    if (sizes != nullptr) sizes->push_back(batch->targets.size(0));
    for (int64_t i = 0; i < batch->targets.size(0); ++i) {
      order.push_back(batch->targets[i].item<int64_t>());
    }
  }
  return order;
}

void expect_permutation(const std::vector<int64_t>& order, int64_t n) {
  ASSERT_EQ(static_cast<int64_t>(order.size()), n);
  std::vector<int> seen(n, 0);
  for (int64_t v : order) {
    ASSERT_GE(v, 0);
    ASSERT_LT(v, n);
    ++seen[v];
  }
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "example " << i;
}

TEST(BatchLoaderTest, EveryExampleOncePerEpochWithSmallerLastBatch) {
  BatchLoader loader(ranged(10), 4, /*seed=*/3);
  EXPECT_EQ(loader.batches_per_epoch(), 3);  // ceil(10 / 4)
  EXPECT_EQ(loader.dataset().size(), 10);
  std::vector<int64_t> sizes;
  loader.start_epoch();
  const auto first = epoch_order(loader, &sizes);
  expect_permutation(first, 10);
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  // The end of the epoch stays the end.
  EXPECT_FALSE(loader.next().has_value());
  EXPECT_FALSE(loader.next().has_value());
  // A second epoch: again a permutation, in another order (the chance that a fresh uniform
  // permutation of 10 repeats the first is 1/10! ~ 3e-7; the seed is fixed anyway).
  loader.start_epoch();
  const auto second = epoch_order(loader);
  expect_permutation(second, 10);
  EXPECT_NE(first, second);
  // The first epoch is shuffled too (not the identity).
  std::vector<int64_t> identity(10);
  for (int i = 0; i < 10; ++i) identity[i] = i;
  EXPECT_NE(first, identity);
}

TEST(BatchLoaderTest, BatchesPerEpoch) {
  EXPECT_EQ(BatchLoader(ranged(12), 4, 0).batches_per_epoch(), 3);
  EXPECT_EQ(BatchLoader(ranged(13), 4, 0).batches_per_epoch(), 4);
  EXPECT_EQ(BatchLoader(ranged(1), 4, 0).batches_per_epoch(), 1);
  EXPECT_EQ(BatchLoader(ranged(7), 1, 0).batches_per_epoch(), 7);
  EXPECT_EQ(BatchLoader(ranged(7), 100, 0).batches_per_epoch(), 1);
  for (int64_t n : {1, 5, 12, 13}) {
    for (int64_t b : {1, 4, 5, 20}) {
      BatchLoader loader(ranged(n), b, 1);
      std::vector<int64_t> sizes;
      expect_permutation(epoch_order(loader, &sizes), n);
      EXPECT_EQ(static_cast<int64_t>(sizes.size()), loader.batches_per_epoch()) << n << "/" << b;
      for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], b);
      EXPECT_EQ(sizes.back(), n - b * (loader.batches_per_epoch() - 1));
    }
  }
}

TEST(BatchLoaderTest, SameSeedSameOrderIndependentOfGlobalGenerator) {
  torch::manual_seed(1);
  BatchLoader a(ranged(20), 6, /*seed=*/42);
  std::vector<std::vector<int64_t>> orders_a;
  for (int e = 0; e < 3; ++e) {
    a.start_epoch();
    orders_a.push_back(epoch_order(a));
  }
  torch::manual_seed(2);
  torch::randn({100});  // move the global generator on
  BatchLoader b(ranged(20), 6, /*seed=*/42);
  for (int e = 0; e < 3; ++e) {
    b.start_epoch();
    torch::rand({7});  // global draws between epochs do not change the loader's order
    EXPECT_EQ(epoch_order(b), orders_a[e]) << "epoch " << e;
  }
  // Another seed gives another order (a repeat has probability 1/20!).
  BatchLoader c(ranged(20), 6, /*seed=*/43);
  c.start_epoch();
  EXPECT_NE(epoch_order(c), orders_a[0]);
}

TEST(BatchLoaderTest, NoShuffleKeepsOrder) {
  BatchLoader loader(ranged(7), 3, /*seed=*/5, /*shuffle=*/false);
  const std::vector<int64_t> want = {0, 1, 2, 3, 4, 5, 6};
  for (int e = 0; e < 2; ++e) {
    loader.start_epoch();
    EXPECT_EQ(epoch_order(loader), want) << "epoch " << e;
  }
}

TEST(BatchLoaderTest, NextWithoutStartEpoch) {
  BatchLoader loader(ranged(5), 2, /*seed=*/9);
  std::vector<int64_t> sizes;
  expect_permutation(epoch_order(loader, &sizes), 5);  // next() starts the first epoch
  EXPECT_EQ(sizes, (std::vector<int64_t>{2, 2, 1}));
  EXPECT_FALSE(loader.next().has_value());  // and does not start the next one itself
  loader.start_epoch();
  expect_permutation(epoch_order(loader), 5);
  // The first epoch started by next() equals the first epoch started explicitly.
  BatchLoader implicit(ranged(5), 2, 9);
  BatchLoader explicit_(ranged(5), 2, 9);
  explicit_.start_epoch();
  EXPECT_EQ(epoch_order(implicit), epoch_order(explicit_));
}

TEST(BatchLoaderTest, FirstPositionIsUniform) {
  // Over E = 4000 epochs of a 4-example dataset, each example comes first with probability 1/4:
  // the count has standard deviation sqrt(E (1/4)(3/4)) ~ 27.4; we allow 5 of them (137).
  BatchLoader loader(ranged(4), 4, /*seed=*/17);
  const int epochs = 4000;
  std::vector<int> first(4, 0);
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch();
    ++first[loader.next()->targets[0].item<int64_t>()];
  }
  const double sd = std::sqrt(epochs * 0.25 * 0.75);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(first[i], epochs / 4.0, 5 * sd) << "example " << i;
}

TEST(BatchLoaderErrors, Arguments) {
  auto msg = error_of([] { BatchLoader(ranged(5), 0, 1); });
  EXPECT_HAS(msg, "BatchLoader: batch_size must be >= 1, got 0");
  msg = error_of([] { BatchLoader(ranged(5), -3, 1); });
  EXPECT_HAS(msg, "batch_size must be >= 1, got -3");
  Dataset mismatched = ranged(10);
  mismatched.targets = mismatched.targets.narrow(0, 0, 9);
  msg = error_of([&] { BatchLoader(mismatched, 2, 1); });
  EXPECT_HAS(msg, "same number of rows, got 10 and 9");
  msg = error_of([] { BatchLoader(Dataset{}, 2, 1); });
  EXPECT_HAS(msg, "no inputs or targets");
  msg = error_of([] { BatchLoader(ranged(0), 2, 1); });
  EXPECT_HAS(msg, "the dataset is empty");
}

TEST(Take, FirstExamples) {
  const Dataset ds = ranged(10);
  const auto three = feasible::data::take(ds, 3);
  EXPECT_EQ(three.size(), 3);
  EXPECT_TRUE(torch::equal(three.targets, torch::arange(3, torch::kLong)));
  EXPECT_TRUE(torch::equal(three.inputs, ds.inputs.narrow(0, 0, 3)));
  EXPECT_EQ(feasible::data::take(ds, 10).size(), 10);
  EXPECT_EQ(feasible::data::take(ds, 1000).size(), 10);
  const auto none = feasible::data::take(ds, 0);
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.inputs.sizes(), (std::vector<int64_t>{0, 2}));
  const auto msg = error_of([&] { feasible::data::take(ds, -1); });
  EXPECT_HAS(msg, "take: count must be >= 0, got -1");
  EXPECT_EQ(feasible::data::Dataset{}.size(), 0);
}

}  // namespace

namespace {

// ranged(n) with groups[i] = i % 3.
Dataset grouped(int64_t n) {
  Dataset ds = ranged(n);
  ds.groups = torch::arange(n, torch::kLong).remainder(3);
  return ds;
}

TEST(BatchLoaderIndices, PermutationOverAnEpochWithMatchingRowsAndGroups) {
  const Dataset ds = grouped(11);
  for (const bool shuffle : {true, false}) {
    SCOPED_TRACE(shuffle ? "shuffled" : "in order");
    BatchLoader loader(ds, 4, /*seed=*/6, shuffle);
    for (int epoch = 0; epoch < 2; ++epoch) {
      loader.start_epoch();
      std::vector<int64_t> order;
      while (auto batch = loader.next()) {
        ASSERT_TRUE(batch->indices.defined());
        EXPECT_EQ(batch->indices.scalar_type(), torch::kLong);
        EXPECT_EQ(batch->indices.size(0), batch->targets.size(0));
        EXPECT_TRUE(torch::equal(batch->inputs, ds.inputs.index_select(0, batch->indices)));
        EXPECT_TRUE(torch::equal(batch->targets, ds.targets.index_select(0, batch->indices)));
        ASSERT_TRUE(batch->groups.defined());
        EXPECT_TRUE(torch::equal(batch->groups, ds.groups.index_select(0, batch->indices)));
        // groups[i] = i % 3 by construction: an independent check of the rows.
        EXPECT_TRUE(torch::equal(batch->groups, batch->indices.remainder(3)));
        for (int64_t i = 0; i < batch->indices.size(0); ++i) {
          order.push_back(batch->indices[i].item<int64_t>());
        }
      }
      expect_permutation(order, 11);
      if (!shuffle) {
        std::vector<int64_t> identity(11);
        for (int64_t i = 0; i < 11; ++i) identity[i] = i;
        EXPECT_EQ(order, identity);
      }
    }
  }
}

TEST(BatchLoaderIndices, NoGroupsLeavesBatchGroupsUndefined) {
  BatchLoader loader(ranged(5), 2, /*seed=*/1);
  while (auto batch = loader.next()) {
    EXPECT_FALSE(batch->groups.defined());
    // targets[i] = i, so the indices are the targets.
    EXPECT_TRUE(torch::equal(batch->indices, batch->targets));
  }
}

TEST(BatchLoaderIndices, GroupsAreChecked) {
  Dataset ds = ranged(6);
  ds.groups = torch::zeros({5}, torch::kLong);
  auto msg = error_of([&] { BatchLoader(ds, 2, 1); });
  EXPECT_HAS(msg, "BatchLoader: groups must have shape [6] (one per example), got [5]");
  ds.groups = torch::zeros({6, 1}, torch::kLong);
  msg = error_of([&] { BatchLoader(ds, 2, 1); });
  EXPECT_HAS(msg, "got [6, 1]");
  ds.groups = torch::zeros({6}, torch::kInt);
  msg = error_of([&] { BatchLoader(ds, 2, 1); });
  EXPECT_HAS(msg, "BatchLoader: groups must be int64, got Int");
}

TEST(Take, KeepsGroups) {
  const auto three = feasible::data::take(grouped(10), 3);
  ASSERT_TRUE(three.groups.defined());
  EXPECT_TRUE(torch::equal(three.groups, torch::tensor({0, 1, 2}, torch::kLong)));
  EXPECT_FALSE(feasible::data::take(ranged(10), 3).groups.defined());
}

}  // namespace
