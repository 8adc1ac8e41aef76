# Reports which BLAS the system's libblas.so.3 resolves to (Debian alternatives):
# LibTorch from Debian links libblas.so.3, and the reference BLAS is ~35x slower
# than OpenBLAS on matrix products.
set(FEASIBLE_BLAS "unknown")
if(EXISTS /etc/alternatives/libblas.so.3-x86_64-linux-gnu)
  get_filename_component(_blas /etc/alternatives/libblas.so.3-x86_64-linux-gnu REALPATH)
  set(FEASIBLE_BLAS "${_blas}")
elseif(EXISTS /etc/alternatives/libblas.so.3-aarch64-linux-gnu)
  get_filename_component(_blas /etc/alternatives/libblas.so.3-aarch64-linux-gnu REALPATH)
  set(FEASIBLE_BLAS "${_blas}")
endif()
message(STATUS "feasible: BLAS behind libblas.so.3: ${FEASIBLE_BLAS}")
if(FEASIBLE_BLAS MATCHES "/blas/libblas")
  message(WARNING "feasible: the reference BLAS is selected; install libopenblas0-pthread "
                  "(scripts/setup.sh does) for ~35x faster matrix products")
endif()
