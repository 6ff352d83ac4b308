# The CUDA subsystem: included by the top-level CMakeLists.txt (after vbt_core and the tests section).
# Policy: CUDA is optional. VBT_ENABLE_CUDA = AUTO (default: ON when check_language finds nvcc), ON
# (fail without nvcc) or OFF. Always built: `vbt_cuda` with the caching allocator policy, the host
# backend, the vbt::Allocator adapter and the pinned host allocator's policy (no CUDA headers). With CUDA: also the CUDA backend, the
# stream/event/device-guard wrappers and the .cu kernels, for CMAKE_CUDA_ARCHITECTURES (default 90);
# VBT_WITH_CUDA=1 is then a PUBLIC definition. With VBT_BUILD_TESTS: the GoogleTest executable
# vbt_cuda_tests (CTest) and the scenario driver vbt_allocator_scenarios (run by the allocator gate);
# VBT_BUILD_ALLOCATOR_DRIVER=ON builds only the driver (no GoogleTest needed).
# With the Python extension _C: the binding src/vbt/python/cuda/cuda_bindings.cpp and VBT_HAS_CUDA=1.
# The CUDA runtime is linked statically (CUDA::cudart_static), so _C loads on machines without a driver
# (device_count() is then 0) and needs no libcudart on the library path.
# Works without a vbt_core target too (the gate tests build only this subsystem).
get_filename_component(VBT_CUDA_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

set(VBT_ENABLE_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE VBT_ENABLE_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${VBT_ENABLE_CUDA}" _vbt_cuda_mode)
if(NOT _vbt_cuda_mode MATCHES "^(AUTO|ON|OFF|TRUE|FALSE|1|0|YES|NO)$")
  message(FATAL_ERROR "VBT_ENABLE_CUDA must be AUTO, ON or OFF (got '${VBT_ENABLE_CUDA}')")
endif()

set(VBT_CUDA_ENABLED OFF)
if(NOT _vbt_cuda_mode MATCHES "^(OFF|FALSE|0|NO)$")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    if(CCACHE_PROGRAM AND NOT CMAKE_CUDA_COMPILER_LAUNCHER)
      set(CMAKE_CUDA_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(VBT_CUDA_ENABLED ON)
  elseif(NOT _vbt_cuda_mode STREQUAL "AUTO")
    message(FATAL_ERROR "VBT_ENABLE_CUDA=${VBT_ENABLE_CUDA} but no CUDA compiler (nvcc) was found")
  endif()
endif()
message(STATUS "vibetensor CUDA backend: ${VBT_CUDA_ENABLED} (VBT_ENABLE_CUDA=${VBT_ENABLE_CUDA})")

add_library(vbt_cuda STATIC
  ${VBT_CUDA_ROOT}/src/vbt/cuda/caching_allocator.cpp
  ${VBT_CUDA_ROOT}/src/vbt/cuda/host_backend.cpp
  ${VBT_CUDA_ROOT}/src/vbt/cuda/device_allocator.cpp
  ${VBT_CUDA_ROOT}/src/vbt/cuda/pinned_allocator.cpp
)
target_include_directories(vbt_cuda PUBLIC ${VBT_CUDA_ROOT}/include)
target_compile_features(vbt_cuda PUBLIC cxx_std_20)
set_target_properties(vbt_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_compile_options(vbt_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
if(VBT_CUDA_ENABLED)
  target_sources(vbt_cuda PRIVATE
    ${VBT_CUDA_ROOT}/src/vbt/cuda/cuda_backend.cpp
    ${VBT_CUDA_ROOT}/src/vbt/cuda/device_guard.cpp
    ${VBT_CUDA_ROOT}/src/vbt/cuda/stream.cpp
    ${VBT_CUDA_ROOT}/src/vbt/cuda/event.cpp
    ${VBT_CUDA_ROOT}/src/vbt/cuda/fill_kernels.cu
  )
  target_compile_definitions(vbt_cuda PUBLIC VBT_WITH_CUDA=1)
  target_link_libraries(vbt_cuda PUBLIC CUDA::cudart_static)
  set_target_properties(vbt_cuda PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
endif()

# The CUDA op kernels (need vbt_core: the dispatcher, the op table, the CPU helpers): the generic
# elementwise kernel, reductions, softmax, the tiled GEMM, cuBLAS loaded at run time for float matmuls, sorting
# and multinomial on CUB (header-only, from the CUDA toolkit), and their registration (include/vbt/cuda/ops.h).
if(VBT_CUDA_ENABLED AND TARGET vbt_core)
  add_library(vbt_cuda_ops STATIC
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/cuda_ops.cpp
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/elementwise.cu
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/reduce_gemm.cu
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/scan_index.cu
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/sort.cu
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/optim.cu
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/sort_ops.cpp
    ${VBT_CUDA_ROOT}/src/vbt/cuda/ops/cublas_gemm.cpp
  )
  # cuBLAS is never linked: cublas_gemm.cpp dlopens it at run time (Note [cuBLAS at run time]), hence libdl.
  target_link_libraries(vbt_cuda_ops PUBLIC vbt_core vbt_cuda ${CMAKE_DL_LIBS})
  set_target_properties(vbt_cuda_ops PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  target_compile_options(vbt_cuda_ops PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  # elementwise.cu instantiates a kernel per op and dtype and dominates the build: let nvcc optimise its device
  # code on every core (--split-compile, nvcc >= 11.8; 0 = as many threads as cores).
  if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 11.8)
    target_compile_options(vbt_cuda_ops PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--split-compile=0>)
  endif()
  target_compile_definitions(vbt_cuda_ops PUBLIC VBT_WITH_CUDA_OPS=1)
  # The autograd engine's CUDA stream hooks (Note [Autograd streams] in src/vbt/autograd/engine.cpp), when the
  # autograd subsystem is built (cmake/autograd.cmake, included before this file, sets VBT_AUTOGRAD_INCLUDED).
  if(VBT_AUTOGRAD_INCLUDED)
    target_sources(vbt_cuda_ops PRIVATE ${VBT_CUDA_ROOT}/src/vbt/cuda/autograd_streams.cpp)
    target_compile_definitions(vbt_cuda_ops PUBLIC VBT_WITH_CUDA_AUTOGRAD=1)
  endif()
  if(TARGET _C)
    target_link_libraries(_C PRIVATE vbt_cuda_ops)
  endif()
endif()

# Consumers of vbt_core get the CUDA subsystem too.
foreach(_vbt_consumer _C vbt_cpp_tests)
  if(TARGET ${_vbt_consumer})
    target_link_libraries(${_vbt_consumer} PRIVATE vbt_cuda)
  endif()
endforeach()
if(TARGET _C)
  target_sources(_C PRIVATE ${VBT_CUDA_ROOT}/src/vbt/python/cuda/cuda_bindings.cpp)
  target_compile_definitions(_C PRIVATE VBT_HAS_CUDA=1)
endif()

option(VBT_BUILD_ALLOCATOR_DRIVER "Build the allocator gate's scenario driver (also built with VBT_BUILD_TESTS)" OFF)
if(VBT_BUILD_TESTS OR VBT_BUILD_ALLOCATOR_DRIVER)
  add_executable(vbt_allocator_scenarios ${VBT_CUDA_ROOT}/tests/cpp/cuda/allocator_scenarios.cpp)
  target_link_libraries(vbt_allocator_scenarios PRIVATE vbt_cuda)
endif()

if(VBT_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  add_executable(vbt_cuda_tests
    ${VBT_CUDA_ROOT}/tests/cpp/cuda/caching_allocator_test.cpp
    ${VBT_CUDA_ROOT}/tests/cpp/cuda/device_allocator_test.cpp
    ${VBT_CUDA_ROOT}/tests/cpp/cuda/pinned_allocator_test.cpp
  )
  target_link_libraries(vbt_cuda_tests PRIVATE vbt_cuda GTest::gtest GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(vbt_cuda_tests DISCOVERY_MODE PRE_TEST)
endif()
