#include "feasible/data.h"

#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace feasible {
namespace data {

namespace {

// Reads a whole file; an error names the path and the OS reason.
std::string read_file(const std::string& path, const std::string& hint) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    TORCH_CHECK(false, "cannot open '", path, "': ", std::strerror(err), hint);
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  TORCH_CHECK(!in.bad(), "cannot read '", path, "'");
  return buffer.str();
}

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// Inflates every gzip member of `bytes`; an error says the stream is truncated or corrupt.
std::string gunzip(const std::string& bytes, const std::string& path) {
  z_stream stream{};
  TORCH_CHECK(inflateInit2(&stream, 16 + MAX_WBITS) == Z_OK, "'", path,
              "': cannot start zlib's inflate");
  std::string out;
  std::string chunk(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  int status = Z_OK;
  while (true) {
    stream.next_out = reinterpret_cast<Bytef*>(&chunk[0]);
    stream.avail_out = static_cast<uInt>(chunk.size());
    status = inflate(&stream, Z_NO_FLUSH);
    out.append(chunk.data(), chunk.size() - stream.avail_out);
    if (status == Z_STREAM_END) {
      // Another gzip member may follow (concatenated files are valid gzip).
      if (stream.avail_in == 0) break;
      inflateReset(&stream);
      continue;
    }
    if (status == Z_BUF_ERROR && stream.avail_in == 0) break;  // input ended mid-stream
    if (status != Z_OK) break;
  }
  const std::string message = stream.msg != nullptr ? stream.msg : "";
  inflateEnd(&stream);
  TORCH_CHECK(status == Z_STREAM_END, "'", path, "': the gzip stream is ",
              status == Z_BUF_ERROR ? "truncated" : "corrupt",
              message.empty() ? "" : " (zlib: " + message + ")");
  return out;
}

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

torch::Tensor read_idx(const std::string& path) {
  const std::string raw = read_file(path, "");
  const std::string bytes = is_gzip(raw) ? gunzip(raw, path) : raw;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  TORCH_CHECK(bytes.size() >= 4, "'", path, "' is not an IDX file: ", bytes.size(),
              " bytes, shorter than the 4-byte magic number");
  TORCH_CHECK(p[0] == 0 && p[1] == 0, "'", path,
              "' is not an IDX file: its magic number does not start with two zero bytes");
  torch::ScalarType type;
  int64_t width = 0;
  switch (p[2]) {
    case 0x08:
      type = torch::kByte, width = 1;
      break;
    case 0x09:
      type = torch::kChar, width = 1;
      break;
    case 0x0B:
      type = torch::kShort, width = 2;
      break;
    case 0x0C:
      type = torch::kInt, width = 4;
      break;
    case 0x0D:
      type = torch::kFloat, width = 4;
      break;
    case 0x0E:
      type = torch::kDouble, width = 8;
      break;
    default:
      TORCH_CHECK(false, "'", path, "' is not an IDX file: unknown type byte 0x", std::hex,
                  int(p[2]));
  }
  const int64_t dims = p[3];
  TORCH_CHECK(dims >= 1, "'", path, "': an IDX file needs at least one dimension, got 0");
  const int64_t header = 4 + 4 * dims;
  TORCH_CHECK(static_cast<int64_t>(bytes.size()) >= header, "'", path,
              "' is truncated: ", bytes.size(), " bytes, shorter than its ", header,
              "-byte header");
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (int64_t d = 0; d < dims; ++d) {
    const int64_t n = big_endian_u32(p + 4 + 4 * d);
    TORCH_CHECK(n <= (int64_t(1) << 40) / std::max<int64_t>(count, 1), "'", path,
                "': the header announces an implausible size");
    shape.push_back(n);
    count *= n;
  }
  const int64_t expected = header + count * width;
  const int64_t actual = static_cast<int64_t>(bytes.size());
  TORCH_CHECK(actual >= expected, "'", path, "' is truncated: the header announces ", count,
              " values (", expected - header, " bytes of data), the file holds ", actual - header);
  TORCH_CHECK(actual == expected, "'", path, "' has ", actual - expected, " bytes after the ",
              count, " values its header announces");
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  auto* dst = static_cast<unsigned char*>(tensor.data_ptr());
  const unsigned char* src = p + header;
  if (width == 1) {
    std::memcpy(dst, src, static_cast<size_t>(count));
  } else {
    // Big-endian on disk: reverse the bytes of every value (this is a little-endian build
    // target; LibTorch supports no big-endian CPU).
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t b = 0; b < width; ++b) dst[i * width + b] = src[i * width + (width - 1 - b)];
    }
  }
  return tensor;
}

namespace {

const char* kInstallHint =
    ". The Fashion-MNIST files come with the Debian package dataset-fashion-mnist "
    "(apt-get install dataset-fashion-mnist), or give the folder that holds them";

std::string find_file(const std::string& dir, const std::string& stem) {
  const std::string gz = dir + "/" + stem + ".gz";
  if (std::ifstream(gz, std::ios::binary)) return gz;
  const std::string plain = dir + "/" + stem;
  if (std::ifstream(plain, std::ios::binary)) return plain;
  // Neither exists: report the compressed name, which the Debian package installs.
  read_file(gz, kInstallHint);
  return gz;  // not reached
}

}  // namespace

Dataset load_fashion_mnist(Split split, const std::string& dir) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const auto images = read_idx(images_path);
  const auto labels = read_idx(labels_path);
  TORCH_CHECK(images.scalar_type() == torch::kByte && images.dim() == 3 && images.size(1) == 28 &&
                  images.size(2) == 28,
              "'", images_path, "' does not hold 28x28 uint8 images (shape ", images.sizes(),
              ", type ", images.scalar_type(), ")");
  TORCH_CHECK(labels.scalar_type() == torch::kByte && labels.dim() == 1, "'", labels_path,
              "' does not hold uint8 labels (shape ", labels.sizes(), ")");
  TORCH_CHECK(images.size(0) == labels.size(0), "'", images_path, "' holds ", images.size(0),
              " images but '", labels_path, "' holds ", labels.size(0), " labels");
  TORCH_CHECK(labels.numel() == 0 || labels.max().item<int64_t>() <= 9, "'", labels_path,
              "' holds a label above 9");
  Dataset dataset;
  dataset.inputs = images.reshape({images.size(0), 28 * 28}).to(torch::kFloat32).div_(255.0);
  dataset.targets = labels.to(torch::kInt64);
  return dataset;
}

Dataset take(const Dataset& dataset, int64_t count) {
  TORCH_CHECK(count >= 0, "take: count must be >= 0, got ", count);
  const int64_t n = std::min(count, dataset.size());
  Dataset first;
  first.inputs = dataset.inputs.narrow(0, 0, n);
  first.targets = dataset.targets.narrow(0, 0, n);
  if (dataset.groups.defined()) first.groups = dataset.groups.narrow(0, 0, n);
  return first;
}

BatchLoader::BatchLoader(Dataset dataset, int64_t batch_size, uint64_t seed, bool shuffle)
    : dataset_(std::move(dataset)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      generator_(at::detail::createCPUGenerator(seed)) {
  TORCH_CHECK(batch_size >= 1, "BatchLoader: batch_size must be >= 1, got ", batch_size);
  TORCH_CHECK(dataset_.inputs.defined() && dataset_.targets.defined(),
              "BatchLoader: the dataset has no inputs or targets");
  TORCH_CHECK(dataset_.inputs.size(0) == dataset_.targets.size(0),
              "BatchLoader: inputs and targets must have the same number of rows, got ",
              dataset_.inputs.size(0), " and ", dataset_.targets.size(0));
  TORCH_CHECK(dataset_.size() >= 1, "BatchLoader: the dataset is empty");
  const torch::Tensor& groups = dataset_.groups;
  if (groups.defined()) {
    TORCH_CHECK(groups.dim() == 1 && groups.size(0) == dataset_.size(),
                "BatchLoader: groups must have shape [", dataset_.size(),
                "] (one per example), got ", groups.sizes());
    TORCH_CHECK(groups.scalar_type() == torch::kLong, "BatchLoader: groups must be int64, got ",
                groups.scalar_type());
  }
}

void BatchLoader::start_epoch() {
  order_ = shuffle_ ? torch::randperm(dataset_.size(), generator_, torch::kInt64) : torch::Tensor();
  position_ = 0;
  started_ = true;
}

std::optional<Batch> BatchLoader::next() {
  if (!started_) start_epoch();
  const int64_t n = dataset_.size();
  if (position_ >= n) return std::nullopt;
  const int64_t len = std::min(batch_size_, n - position_);
  Batch batch;
  if (order_.defined()) {
    batch.indices = order_.narrow(0, position_, len);
    batch.inputs = dataset_.inputs.index_select(0, batch.indices);
    batch.targets = dataset_.targets.index_select(0, batch.indices);
    if (dataset_.groups.defined()) batch.groups = dataset_.groups.index_select(0, batch.indices);
  } else {
    batch.indices = torch::arange(position_, position_ + len, torch::kInt64);
    batch.inputs = dataset_.inputs.narrow(0, position_, len);
    batch.targets = dataset_.targets.narrow(0, position_, len);
    if (dataset_.groups.defined()) batch.groups = dataset_.groups.narrow(0, position_, len);
  }
  position_ += len;
  return batch;
}

int64_t BatchLoader::batches_per_epoch() const {
  return (dataset_.size() + batch_size_ - 1) / batch_size_;
}

}  // namespace data
}  // namespace feasible
