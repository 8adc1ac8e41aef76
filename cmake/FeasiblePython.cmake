# Finds what the Python module needs and decides whether it is built (FEASIBLE_PYTHON_FOUND).
#
# The module must load into the Python that has torch: Debian's /usr/bin/python3 with
# python3-torch, built from the same PyTorch as libtorch-dev. A `python3` earlier on PATH (e.g.
# a pyenv one without torch) is not it, so the interpreter defaults to /usr/bin/python3.
set(FEASIBLE_PYTHON_FOUND OFF)
if(NOT FEASIBLE_PYTHON)
  return()
endif()
if(FEASIBLE_SANITIZE)
  # An ASan-instrumented module cannot load into an uninstrumented Python.
  message(STATUS "feasible: Python module skipped in the sanitizer build (FEASIBLE_SANITIZE)")
  return()
endif()
set(FEASIBLE_PYTHON_EXECUTABLE "/usr/bin/python3" CACHE FILEPATH
    "The Python (with torch) the module is built for")
if(NOT EXISTS "${FEASIBLE_PYTHON_EXECUTABLE}")
  message(STATUS "feasible: Python module skipped: no ${FEASIBLE_PYTHON_EXECUTABLE}")
  return()
endif()
# torch's package directory and version, from the interpreter itself.
execute_process(
  COMMAND "${FEASIBLE_PYTHON_EXECUTABLE}" -c
          "import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__)"
  OUTPUT_VARIABLE _feasible_torch_out RESULT_VARIABLE _feasible_torch_rc ERROR_QUIET
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _feasible_torch_rc EQUAL 0)
  message(STATUS "feasible: Python module skipped: ${FEASIBLE_PYTHON_EXECUTABLE} has no torch "
                 "(Debian: python3-torch)")
  return()
endif()
string(REPLACE "\n" ";" _feasible_torch_out "${_feasible_torch_out}")
list(GET _feasible_torch_out 0 FEASIBLE_PYTORCH_DIR)
list(GET _feasible_torch_out 1 FEASIBLE_PYTORCH_VERSION)
find_library(FEASIBLE_TORCH_PYTHON_LIBRARY torch_python PATHS "${FEASIBLE_PYTORCH_DIR}/lib"
             NO_DEFAULT_PATH)
if(NOT FEASIBLE_TORCH_PYTHON_LIBRARY)
  message(STATUS "feasible: Python module skipped: no libtorch_python in ${FEASIBLE_PYTORCH_DIR}/lib")
  return()
endif()
set(PYTHON_EXECUTABLE "${FEASIBLE_PYTHON_EXECUTABLE}" CACHE FILEPATH "" FORCE)
set(Python_EXECUTABLE "${FEASIBLE_PYTHON_EXECUTABLE}" CACHE FILEPATH "" FORCE)
find_package(Python COMPONENTS Interpreter Development.Module QUIET)
if(NOT Python_Development.Module_FOUND)
  message(STATUS "feasible: Python module skipped: no Python headers (Debian: python3-dev)")
  return()
endif()
set(PYBIND11_FINDPYTHON ON)
find_package(pybind11 2.6 CONFIG QUIET)
if(NOT pybind11_FOUND)
  message(STATUS "feasible: Python module skipped: no pybind11 (Debian: pybind11-dev)")
  return()
endif()
set(FEASIBLE_PYTHON_FOUND ON)
message(STATUS "feasible: Python module for ${FEASIBLE_PYTHON_EXECUTABLE} (Python "
               "${Python_VERSION}, torch ${FEASIBLE_PYTORCH_VERSION}, pybind11 ${pybind11_VERSION})")
# -fno-semantic-interposition: the library's functions cannot be interposed (a static
# library), so -fPIC keeps the inlining of the default build.
add_compile_options(-fPIC -fno-semantic-interposition)
