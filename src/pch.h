// Precompiled header for the library, the tests and the benchmarks.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>
