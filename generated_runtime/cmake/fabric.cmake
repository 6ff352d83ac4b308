# The fabric subsystem (single-process multi-GPU: peer access, cross-device ops, ring all-reduce, NCCL
# checks through dlopen). Needs CUDA: included by the top-level CMakeLists.txt after cuda_subsystem.cmake
# (which decides VBT_CUDA_ENABLED), or by the standalone project src/vbt/fabric/CMakeLists.txt that
# tools/fabric_gpu_check.sh builds. Without CUDA it adds nothing. Never links NCCL; needs no GPU to build.
#
# Targets: vbt_fabric (static library). With VBT_BUILD_TESTS or VBT_FABRIC_BUILD_TESTS: the plain test
# executables of tests/cpp/fabric (CTest; exit code 77 = "needs a GPU" = skipped, never passed) and the
# benchmark fabric_allreduce_bench (not a test).
get_filename_component(VBT_FABRIC_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

set(_vbt_fabric_cuda OFF)
if(DEFINED VBT_CUDA_ENABLED)
  set(_vbt_fabric_cuda ${VBT_CUDA_ENABLED})
elseif(CMAKE_CUDA_COMPILER)
  set(_vbt_fabric_cuda ON)
endif()

if(NOT _vbt_fabric_cuda)
  message(STATUS "vibetensor fabric: skipped (CUDA is not enabled)")
else()
  if(NOT TARGET CUDA::cudart)
    find_package(CUDAToolkit REQUIRED)
  endif()
  add_library(vbt_fabric STATIC
    ${VBT_FABRIC_ROOT}/src/vbt/fabric/fabric.cpp
    ${VBT_FABRIC_ROOT}/src/vbt/fabric/kernels.cu
    ${VBT_FABRIC_ROOT}/src/vbt/fabric/ring_plan.cpp
    ${VBT_FABRIC_ROOT}/src/vbt/fabric/ring_allreduce.cpp
    ${VBT_FABRIC_ROOT}/src/vbt/fabric/nccl_loader.cpp
  )
  target_include_directories(vbt_fabric PUBLIC ${VBT_FABRIC_ROOT}/include)
  target_compile_features(vbt_fabric PUBLIC cxx_std_20)
  set_target_properties(vbt_fabric PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_STANDARD 17
                                              CUDA_STANDARD_REQUIRED ON)
  target_compile_options(vbt_fabric PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  target_link_libraries(vbt_fabric PUBLIC CUDA::cudart ${CMAKE_DL_LIBS})
  # No Python binding exists yet, so _C neither links vbt_fabric nor gets VBT_HAS_FABRIC (module.cpp
  # would call a vbt_bind_fabric that does not exist).
  message(STATUS "vibetensor fabric: ON")

  if(VBT_BUILD_TESTS OR VBT_FABRIC_BUILD_TESTS)
    enable_testing()
    set(_vbt_fabric_tests
      fabric_host_test fabric_topology_test fabric_single_device_test fabric_peer_ops_test
      fabric_allreduce_test fabric_errors_test)
    foreach(_t ${_vbt_fabric_tests})
      add_executable(${_t} ${VBT_FABRIC_ROOT}/tests/cpp/fabric/${_t}.cpp)
      target_link_libraries(${_t} PRIVATE vbt_fabric)
      add_test(NAME ${_t} COMMAND ${_t})
      set_tests_properties(${_t} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
        ENVIRONMENT "NCCL_NVLS_ENABLE=0;TORCH_SYMM_MEM_DISABLE_MULTICAST=1;NVSHMEM_DISABLE_NVLS=1")
    endforeach()
    add_executable(fabric_allreduce_bench ${VBT_FABRIC_ROOT}/tests/cpp/fabric/fabric_allreduce_bench.cpp)
    target_link_libraries(fabric_allreduce_bench PRIVATE vbt_fabric)
  endif()
endif()
