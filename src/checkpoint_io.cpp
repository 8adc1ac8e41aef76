// Checkpoint pieces (src/checkpoint_io.h): text helpers, archive entries and module tensors.
#include "src/checkpoint_io.h"

#include <iomanip>
#include <sstream>

namespace feasible {
namespace detail {
namespace ckpt {

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes() << " " << t.scalar_type();
  return os.str();
}

std::string join(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

// ------------------------------------------------------------ archive helpers

void put_int(OutputArchive& a, const std::string& key, int64_t v) { a.write(key, c10::IValue(v)); }
void put_str(OutputArchive& a, const std::string& key, const std::string& v) {
  a.write(key, c10::IValue(v));
}
int64_t get_int(InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  TORCH_CHECK(v.isInt(), "entry '", key, "' is not an integer");
  return v.toInt();
}
std::string get_str(InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  TORCH_CHECK(v.isString(), "entry '", key, "' is not a string");
  return v.toStringRef();
}
torch::Tensor get_tensor(InputArchive& a, const std::string& key) {
  torch::Tensor t;
  a.read(key, t, /*is_buffer=*/true);
  return t;
}
// ------------------------------------------------------------ module tensors

// The parameters then the buffers of a module (recursively), by name; undefined buffers skipped.
NamedTensors module_tensors(const torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    if (p.value().defined()) out.emplace_back("parameter " + p.key(), p.value());
  }
  for (const auto& b : m.named_buffers(/*recurse=*/true)) {
    if (b.value().defined()) out.emplace_back("buffer " + b.key(), b.value());
  }
  return out;
}

void write_tensors(OutputArchive& a, const NamedTensors& ts) {
  put_int(a, "tensors/size", static_cast<int64_t>(ts.size()));
  for (size_t k = 0; k < ts.size(); ++k) {
    put_str(a, "tensor/" + std::to_string(k) + "/name", ts[k].first);
    a.write("tensor/" + std::to_string(k), ts[k].second.detach(), /*is_buffer=*/true);
  }
}

void read_tensors(InputArchive& a, const NamedTensors& current, const std::string& what,
                  std::vector<std::string>& diffs, std::vector<Copy>& copies) {
  const int64_t n = get_int(a, "tensors/size");
  TORCH_CHECK(n >= 0, "negative tensor count for ", what);
  std::vector<std::string> names;
  for (int64_t k = 0; k < n; ++k)
    names.push_back(get_str(a, "tensor/" + std::to_string(k) + "/name"));
  std::vector<std::string> here;
  for (const auto& c : current) here.push_back(c.first);
  if (names != here) {
    diffs.push_back(what + ": the checkpoint holds " + join(names) + ", this one has " +
                    join(here));
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    torch::Tensor t = get_tensor(a, "tensor/" + std::to_string(k));
    const torch::Tensor& dst = current[k].second;
    if (t.sizes() != dst.sizes() || t.scalar_type() != dst.scalar_type()) {
      diffs.push_back(what + ", " + names[k] + ": " + shape_of(t) + " in the checkpoint, " +
                      shape_of(dst) + " here");
      continue;
    }
    copies.push_back({dst, t});
  }
}

}  // namespace ckpt
}  // namespace detail
}  // namespace feasible
