// feasible::distributed::DataParallel: making the c10d group (torchrun's environment with a
// TCPStore, or a FileStore), the collectives and their errors, broadcasts and checksums.
#include "feasible/distributed.h"

// LibTorch's c10d headers declare the Gloo group only under this macro (its own build defines
// it); Debian's libtorch_cpu holds the Gloo group, libgloo-dev the headers it includes.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "feasible/optimizer.h"
#include "src/distributed_impl.h"
#include "src/validate.h"

namespace feasible {
namespace distributed {

void Options::validate() const {
  const ::feasible::detail::Validator v("distributed::Options");
  v.require(timeout_ms() >= 1, "timeout_ms", "be >= 1", timeout_ms());
  v.require(check_every() >= 0, "check_every", "be >= 0", check_every());
  v.require(bucket_bytes() >= 1, "bucket_bytes", "be >= 1", bucket_bytes());
}

[[noreturn]] void collective_failed(int rank, int world, const char* what, int64_t timeout_ms,
                                    const std::string& cause) {
  TORCH_CHECK(
      false, "DataParallel (rank ", rank, " of ", world, "): ", what,
      " failed: another rank died, or did not join within the timeout of ", timeout_ms,
      " ms (distributed::Options::timeout_ms); resume from the last checkpoint. Cause: ", cause);
}

namespace detail {
namespace {

template <class G>
class GroupCollectives : public Collectives {
 public:
  explicit GroupCollectives(c10::intrusive_ptr<G> g) : g_(std::move(g)) {}
  int rank() const override { return g_->getRank(); }
  int size() const override { return g_->getSize(); }
  void allreduce(at::Tensor& t) override {
    std::vector<at::Tensor> ts{t};
    g_->allreduce(ts)->wait();
  }
  std::vector<at::Tensor> allgather(const at::Tensor& t) override { return allgather_start(t)(); }
  std::function<std::vector<at::Tensor>()> allgather_start(const at::Tensor& t) override {
    std::vector<at::Tensor> in{t};
    auto out = std::make_shared<std::vector<std::vector<at::Tensor>>>(1);
    for (int r = 0; r < size(); ++r) (*out)[0].push_back(torch::empty_like(t));
    // The work holds its own references to the buffers; `in` and `out` are kept too.
    auto work = g_->allgather(*out, in);
    return [work, out, in]() {
      work->wait();
      return (*out)[0];
    };
  }
  void broadcast(at::Tensor& t, int root) override {
    std::vector<at::Tensor> ts{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    g_->broadcast(ts, o)->wait();
  }
  void barrier() override { g_->barrier()->wait(); }

 private:
  c10::intrusive_ptr<G> g_;
};

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

std::unique_ptr<Collectives> collectives_of(c10::intrusive_ptr<c10d::ProcessGroup> group) {
  return std::make_unique<GroupCollectives<c10d::ProcessGroup>>(std::move(group));
}

std::unique_ptr<Collectives> gloo_collectives(const c10::intrusive_ptr<c10d::Store>& store,
                                              int rank, int world_size, int64_t timeout_ms,
                                              const std::string& host, bool loopback) {
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr && *ifname != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (loopback || is_loopback(host)) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
  return std::make_unique<GroupCollectives<c10d::ProcessGroupGloo>>(std::move(gloo));
}

}  // namespace detail

std::vector<at::Tensor> DataParallel::Impl::gather(const at::Tensor& t, const char* what) {
  traffic.constraint_bytes += t.numel() * static_cast<int64_t>(t.element_size());
  ++traffic.constraint_collectives;
  return guarded(what, [&] { return group->allgather(t); });
}

std::function<std::vector<at::Tensor>()> DataParallel::Impl::gather_start(const at::Tensor& t,
                                                                          const char* what) {
  traffic.constraint_bytes += t.numel() * static_cast<int64_t>(t.element_size());
  ++traffic.constraint_collectives;
  return guarded(what, [&] { return group->allgather_start(t); });
}

// ------------------------------------------------------------------ construction

namespace {

std::string env_string(const char* name) {
  const char* v = std::getenv(name);
  TORCH_CHECK(v != nullptr && *v != '\0',
              "DataParallel::from_environment: the environment variable ", name,
              " is not set (launch with torchrun, which sets RANK, WORLD_SIZE, MASTER_ADDR "
              "and MASTER_PORT)");
  return v;
}

int64_t env_int(const char* name, int64_t lo, int64_t hi) {
  const std::string s = env_string(name);
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  TORCH_CHECK(end != s.c_str() && *end == '\0' && v >= lo && v <= hi,
              "DataParallel::from_environment: ", name, " must be an integer in [", lo, ", ", hi,
              "], got '", s, "'");
  return v;
}

}  // namespace

DataParallel::DataParallel(c10::intrusive_ptr<c10d::ProcessGroup> group, Options options)
    : impl_(std::make_unique<Impl>()) {
  options.validate();
  TORCH_CHECK(group, "DataParallel: the process group is null");
  impl_->group = detail::collectives_of(std::move(group));
  impl_->options = options;
}

DataParallel::~DataParallel() = default;

bool DataParallel::in_environment() {
  const char* r = std::getenv("RANK");
  const char* w = std::getenv("WORLD_SIZE");
  return r != nullptr && *r != '\0' && w != nullptr && *w != '\0';
}

std::shared_ptr<DataParallel> DataParallel::from_environment(Options options) {
  options.validate();
  const int world = static_cast<int>(env_int("WORLD_SIZE", 1, 1 << 20));
  const int rank = static_cast<int>(env_int("RANK", 0, world - 1));
  const std::string host = env_string("MASTER_ADDR");
  const auto port = static_cast<uint16_t>(env_int("MASTER_PORT", 1, 65535));
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  const bool use_agent = agent != nullptr && std::string(agent) == "True";
  c10d::TCPStoreOptions so;
  so.port = port;
  so.isServer = !use_agent && rank == 0;
  if (!use_agent) so.numWorkers = static_cast<size_t>(world);
  so.timeout = std::chrono::milliseconds(options.timeout_ms());
  so.multiTenant = true;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(host, so);
    if (use_agent) {
      const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
      store = c10::make_intrusive<c10d::PrefixStore>(
          std::string("/worker/attempt_") + (attempt ? attempt : "0"), store);
    }
  } catch (const std::exception& e) {
    collective_failed(rank, world, "the rendezvous (TCPStore at MASTER_ADDR:MASTER_PORT)",
                      options.timeout_ms(), e.what());
  }
  return make(detail::gloo_collectives(store, rank, world, options.timeout_ms(), host, false),
              options);
}

std::shared_ptr<DataParallel> DataParallel::from_file(const std::string& path, int rank,
                                                      int world_size, Options options) {
  options.validate();
  TORCH_CHECK(world_size >= 1, "DataParallel::from_file: world_size must be >= 1, got ",
              world_size);
  TORCH_CHECK(rank >= 0 && rank < world_size, "DataParallel::from_file: rank must be in [0, ",
              world_size, "), got ", rank);
  TORCH_CHECK(!path.empty(), "DataParallel::from_file: the path is empty");
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::FileStore>(path, world_size);
  store->setTimeout(std::chrono::milliseconds(options.timeout_ms()));
  std::unique_ptr<detail::Collectives> g;
  try {
    g = detail::gloo_collectives(store, rank, world_size, options.timeout_ms(), "127.0.0.1", true);
  } catch (const std::exception& e) {
    collective_failed(rank, world_size, "the rendezvous (FileStore)", options.timeout_ms(),
                      e.what());
  }
  return make(std::move(g), options);
}

std::shared_ptr<DataParallel> DataParallel::make(std::unique_ptr<detail::Collectives> group,
                                                 const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->group = std::move(group);
  impl->options = options;
  return std::shared_ptr<DataParallel>(new DataParallel(std::move(impl)));
}

DataParallel::DataParallel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

int DataParallel::rank() const { return impl_->group->rank(); }
int DataParallel::world_size() const { return impl_->group->size(); }
const Options& DataParallel::options() const { return impl_->options; }
const Traffic& DataParallel::traffic() const { return impl_->traffic; }

void DataParallel::set_samples(int64_t n) {
  TORCH_CHECK(n >= 0, "DataParallel::set_samples: n must be >= 0, got ", n);
  impl_->samples = n;
}

void DataParallel::barrier() {
  impl_->guarded("barrier", [&] { impl_->group->barrier(); });
}

}  // namespace distributed
}  // namespace feasible
