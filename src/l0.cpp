#include "feasible/l0.h"

#include <cmath>
#include <unordered_set>

#include "src/validate.h"

namespace feasible {

const char* to_string(L0GateKind kind) {
  switch (kind) {
    case L0GateKind::kInputUnits:
      return "input_units";
    case L0GateKind::kWeights:
      return "weights";
  }
  return "?";
}

void L0GateOptions::validate() const {
  const detail::Validator check("L0GateOptions");
  using Interval = detail::Validator::Interval;
  check.one_of("kind", kind() == L0GateKind::kInputUnits || kind() == L0GateKind::kWeights,
               "kInputUnits or kWeights", kind());
  check.positive("temperature", temperature());
  check.below("stretch_low", stretch_low(), 0.0);
  check.above("stretch_high", stretch_high(), 1.0);
  check.in_range("init_drop_rate", init_drop_rate(), 0.0, 1.0, Interval::kOpen);
  check.at_least("init_noise", init_noise(), 0.0);
  check.in_range("noise_eps", noise_eps(), 0.0, 0.5, Interval::kOpen);
}

L0LinearOptions::L0LinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

void L0LinearOptions::validate() const {
  const detail::Validator check("L0LinearOptions");
  check.at_least("in_features", in_features(), int64_t{1});
  check.at_least("out_features", out_features(), int64_t{1});
  gate().validate();
}

L0LinearImpl::L0LinearImpl(L0LinearOptions options_) : options(std::move(options_)) {
  options.validate();
  reset();
}

void L0LinearImpl::reset() {
  const int64_t in = options.in_features();
  const int64_t out = options.out_features();
  weight = register_parameter("weight", torch::empty({out, in}));
  bias = options.bias() ? register_parameter("bias", torch::empty({out}))
                        : register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  const auto& gate = options.gate();
  const std::vector<int64_t> gate_shape = gate.kind() == L0GateKind::kInputUnits
                                              ? std::vector<int64_t>{in}
                                              : std::vector<int64_t>{out, in};
  log_alpha = register_parameter("log_alpha", torch::empty(gate_shape));
  torch::NoGradGuard no_grad;
  // As torch::nn::Linear: W ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming uniform with a = sqrt(5)),
  // b ~ U(-1/sqrt(in), 1/sqrt(in)).
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
  const double d = gate.init_drop_rate();
  log_alpha.normal_(std::log(1 - d) - std::log(d), gate.init_noise());
}

void L0LinearImpl::pretty_print(std::ostream& stream) const {
  stream << "feasible::L0Linear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features() << ", bias=" << std::boolalpha
         << options.bias() << ", gates=" << to_string(options.gate().kind())
         << ", init_drop_rate=" << options.gate().init_drop_rate() << ")";
}

torch::Tensor L0LinearImpl::sample_gates() const {
  const auto& gate = options.gate();
  const double eps = gate.noise_eps();
  auto u = torch::empty_like(log_alpha).uniform_(eps, 1 - eps);
  auto s = torch::sigmoid((torch::log(u) - torch::log1p(-u) + log_alpha) / gate.temperature());
  return torch::clamp(s * (gate.stretch_high() - gate.stretch_low()) + gate.stretch_low(), 0, 1);
}

torch::Tensor L0LinearImpl::test_time_gates() const {
  const auto& gate = options.gate();
  return torch::clamp(
      torch::sigmoid(log_alpha) * (gate.stretch_high() - gate.stretch_low()) + gate.stretch_low(),
      0, 1);
}

torch::Tensor L0LinearImpl::gate_open_probabilities() const {
  const auto& gate = options.gate();
  return torch::sigmoid(log_alpha -
                        gate.temperature() * std::log(-gate.stretch_low() / gate.stretch_high()));
}

torch::Tensor L0LinearImpl::expected_l0() const {
  const auto p = gate_open_probabilities().sum();
  return options.gate().kind() == L0GateKind::kInputUnits
             ? p * static_cast<double>(options.out_features())
             : p;
}

int64_t L0LinearImpl::test_time_l0() const {
  torch::NoGradGuard no_grad;
  const int64_t open = (test_time_gates() > 0).sum().item<int64_t>();
  return options.gate().kind() == L0GateKind::kInputUnits ? open * options.out_features() : open;
}

int64_t L0LinearImpl::num_weights() const { return options.in_features() * options.out_features(); }

torch::Tensor L0LinearImpl::test_time_weight() const {
  const auto z = test_time_gates();
  return options.gate().kind() == L0GateKind::kInputUnits ? weight * z.unsqueeze(0) : weight * z;
}

torch::Tensor L0LinearImpl::forward(const torch::Tensor& input) {
  const auto z = is_training() ? sample_gates() : test_time_gates();
  if (options.gate().kind() == L0GateKind::kInputUnits) {
    // Gating the inputs is the same as gating the columns of W, and cheaper.
    return torch::nn::functional::linear(input * z, weight, bias);
  }
  return torch::nn::functional::linear(input, weight * z, bias);
}

std::vector<std::shared_ptr<L0LinearImpl>> l0_layers(const torch::nn::Module& module) {
  std::vector<std::shared_ptr<L0LinearImpl>> layers;
  if (const auto* self = dynamic_cast<const L0LinearImpl*>(&module)) {
    // A layer passed directly is its own list. It need not be owned by a shared_ptr.
    auto* layer = const_cast<L0LinearImpl*>(self);
    std::shared_ptr<L0LinearImpl> owner;
    try {
      owner = std::dynamic_pointer_cast<L0LinearImpl>(layer->shared_from_this());
    } catch (const std::bad_weak_ptr&) {
      owner = std::shared_ptr<L0LinearImpl>(layer, [](L0LinearImpl*) {});
    }
    layers.push_back(std::move(owner));
    return layers;
  }
  for (const auto& child : module.modules(/*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<L0LinearImpl>(child)) layers.push_back(layer);
  }
  return layers;
}

std::vector<torch::Tensor> l0_gate_parameters(const torch::nn::Module& module) {
  std::vector<torch::Tensor> gates;
  for (const auto& layer : l0_layers(module)) gates.push_back(layer->log_alpha);
  return gates;
}

std::vector<torch::Tensor> l0_weight_parameters(const torch::nn::Module& module) {
  std::unordered_set<const void*> gates;
  for (const auto& g : l0_gate_parameters(module)) gates.insert(g.unsafeGetTensorImpl());
  std::vector<torch::Tensor> rest;
  for (const auto& p : module.parameters()) {
    if (gates.count(p.unsafeGetTensorImpl()) == 0) rest.push_back(p);
  }
  return rest;
}

namespace {

std::vector<std::shared_ptr<L0LinearImpl>> require_layers(const torch::nn::Module& module,
                                                          const char* what) {
  auto layers = l0_layers(module);
  TORCH_CHECK(!layers.empty(), what, ": the module has no feasible::L0Linear layer");
  return layers;
}

}  // namespace

torch::Tensor expected_density(const torch::nn::Module& module) {
  const auto layers = require_layers(module, "expected_density");
  torch::Tensor sum;
  int64_t total = 0;
  for (const auto& layer : layers) {
    const auto l0 = layer->expected_l0();
    sum = sum.defined() ? sum + l0 : l0;
    total += layer->num_weights();
  }
  return sum / static_cast<double>(total);
}

double test_time_density(const torch::nn::Module& module) {
  const auto layers = require_layers(module, "test_time_density");
  int64_t open = 0;
  int64_t total = 0;
  for (const auto& layer : layers) {
    open += layer->test_time_l0();
    total += layer->num_weights();
  }
  return static_cast<double>(open) / static_cast<double>(total);
}

torch::nn::Sequential make_l0_mlp(const std::vector<int64_t>& sizes,
                                  const std::vector<L0GateOptions>& gates) {
  TORCH_CHECK(sizes.size() >= 2, "make_l0_mlp: sizes must hold at least 2 entries, got ",
              sizes.size());
  const size_t layers = sizes.size() - 1;
  TORCH_CHECK(gates.size() == 1 || gates.size() == layers, "make_l0_mlp: gates must hold 1 or ",
              layers, " entries (one per layer), got ", gates.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    TORCH_CHECK(sizes[i] >= 1, "make_l0_mlp: sizes[", i, "] must be >= 1, got ", sizes[i]);
  }
  torch::nn::Sequential mlp;
  for (size_t i = 0; i < layers; ++i) {
    mlp->push_back(L0Linear(
        L0LinearOptions(sizes[i], sizes[i + 1]).gate(gates.size() == 1 ? gates[0] : gates[i])));
    if (i + 1 < layers) mlp->push_back(torch::nn::ReLU());
  }
  return mlp;
}

}  // namespace feasible
