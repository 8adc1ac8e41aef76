#pragma once
/// \file data.h
/// Datasets on disk: a reader of IDX files (the format of MNIST and Fashion-MNIST; plain or
/// gzip-compressed, read with zlib), Fashion-MNIST from the Debian package
/// `dataset-fashion-mnist`, and a shuffling mini-batch loader over in-memory tensors.
///
/// IDX format (Y. LeCun, C. Cortes, "The MNIST database"): two zero bytes, a type byte (0x08
/// uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
/// dimensions, one big-endian int32 per dimension, then the values, big-endian, row-major.

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>

namespace feasible {
namespace data {

/// Reads an IDX file, plain or gzip-compressed (detected from its first two bytes), into a CPU
/// tensor of the file's type (uint8 -> kByte, int8 -> kChar, int16 -> kShort, int32 -> kInt,
/// float32 -> kFloat, float64 -> kDouble) and shape. Throws c10::Error naming the file and the
/// reason when it cannot be opened, the gzip stream is truncated or corrupt, the magic number
/// or type is wrong, or the data is shorter or longer than the header announces.
torch::Tensor read_idx(const std::string& path);

/// Where Debian's `dataset-fashion-mnist` installs the Fashion-MNIST files:
/// "/usr/share/datasets/fashion-mnist".
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// One split of Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, arXiv:1708.07747, 2017).
enum class Split {
  kTrain,  ///< 60,000 examples (train-*-ubyte.gz)
  kTest,   ///< 10,000 examples (t10k-*-ubyte.gz)
};

/// A labelled dataset held in memory.
struct Dataset {
  /// Inputs, float32 [N, 784], pixel values scaled to [0, 1].
  torch::Tensor inputs;
  /// Class labels, int64 [N], in 0..9.
  torch::Tensor targets;
  /// Optional group of every example, int64 [N] (e.g. a protected attribute, for rates per group:
  /// rates::positive_rate(scores, batch.groups == 0)); undefined (the default) when the dataset
  /// has none. Kept by take() and handed out per batch by BatchLoader (Batch::groups).
  torch::Tensor groups;
  /// Number of examples N.
  int64_t size() const { return targets.defined() ? targets.size(0) : 0; }
};

/// Reads one split of Fashion-MNIST from `dir` (default kFashionMnistDir): the files
/// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or the same names without .gz). Checks that
/// the images are [N, 28, 28] uint8 and the labels [N] uint8 in 0..9. When a file is missing,
/// the c10::Error names the path and the Debian package to install.
Dataset load_fashion_mnist(Split split, const std::string& dir = kFashionMnistDir);

/// The first `count` examples of `dataset` (all of them if count >= size()), groups included
/// when defined; count >= 0.
Dataset take(const Dataset& dataset, int64_t count);

/// A mini-batch.
struct Batch {
  torch::Tensor inputs;   ///< rows of Dataset::inputs
  torch::Tensor targets;  ///< the matching rows of Dataset::targets
  /// The rows of the dataset in this batch, int64 [B], in the batch's order (inputs equals
  /// dataset.inputs.index_select(0, indices)); e.g. the `indices` of an indexed constraint with
  /// one entry per training example.
  torch::Tensor indices;
  /// The matching rows of Dataset::groups, int64 [B]; undefined when the dataset has no groups.
  torch::Tensor groups;
};

/// Iterates over a dataset in mini-batches, reshuffled at the start of every epoch by its own
/// generator (seeded once, so a run is repeatable and independent of the global generator).
/// The last batch of an epoch is smaller when the batch size does not divide the size.
///
///   BatchLoader loader(train, 256, /*seed=*/0);
///   for (int epoch = 0; epoch < epochs; ++epoch) {
///     loader.start_epoch();
///     while (auto batch = loader.next()) { ... batch->inputs ... }
///   }
class BatchLoader {
 public:
  /// \param dataset     inputs and targets with the same number of rows (>= 1); groups, when
  ///                    defined, int64 [N] with the same number of rows.
  /// \param batch_size  examples per batch, >= 1.
  /// \param seed        seed of the shuffling generator.
  /// \param shuffle     reshuffle every epoch (default true); false keeps the stored order.
  BatchLoader(Dataset dataset, int64_t batch_size, uint64_t seed, bool shuffle = true);
  /// Starts a new epoch (draws a new order when shuffling).
  void start_epoch();
  /// The next batch of the current epoch, or nullopt at its end. Calls start_epoch() first if
  /// no epoch was started.
  std::optional<Batch> next();
  /// Number of batches per epoch: ceil(size / batch_size).
  int64_t batches_per_epoch() const;
  /// The dataset.
  const Dataset& dataset() const { return dataset_; }

 private:
  Dataset dataset_;
  int64_t batch_size_;
  bool shuffle_;
  torch::Generator generator_;
  torch::Tensor order_;
  int64_t position_ = 0;
  bool started_ = false;
};

}  // namespace data
}  // namespace feasible
