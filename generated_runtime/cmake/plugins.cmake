# Plugins (the versioned C plugin ABI, include/vbt/plugins/vbt_plugin.h): the extension-op registry and
# loader in vbt_core, the Python binding in _C, and the example plugins under plugins/ built as MODULE
# libraries. They are installed next to the package (vibetensor/_plugins/) and also collected in
# ${CMAKE_BINARY_DIR}/vbt_plugins; tests find them through $VBT_PLUGIN_DIR or those folders.
# Included by cmake/interop.cmake (plugins use DLPack metadata), after vbt_core and _C exist.
enable_language(C)
set(_vbt_root ${CMAKE_CURRENT_LIST_DIR}/..)
target_sources(vbt_core PRIVATE ${_vbt_root}/src/vbt/plugins/plugin_registry.cpp)
target_link_libraries(vbt_core PUBLIC ${CMAKE_DL_LIBS})
if(TARGET _C)
  target_sources(_C PRIVATE ${_vbt_root}/src/vbt/python/interop/plugins_bindings.cpp)
  target_compile_definitions(_C PRIVATE VBT_HAS_PLUGINS=1)
endif()

set(VBT_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/vbt_plugins)
function(vbt_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;DEFINES" ${ARGN})
  add_library(${name} MODULE ${P_SOURCES})
  target_include_directories(${name} PRIVATE ${_vbt_root}/include)
  target_compile_definitions(${name} PRIVATE ${P_DEFINES})
  set_target_properties(${name} PROPERTIES PREFIX "lib" C_VISIBILITY_PRESET hidden
                        LIBRARY_OUTPUT_DIRECTORY ${VBT_PLUGIN_OUTPUT_DIR})
  if(SKBUILD)
    install(TARGETS ${name} LIBRARY DESTINATION vibetensor/_plugins)
  endif()
endfunction()

vbt_add_plugin(vbt_example_axpby SOURCES ${_vbt_root}/plugins/example_axpby/axpby_plugin.c)
vbt_add_plugin(vbt_example_hypot SOURCES ${_vbt_root}/plugins/example_hypot/hypot_plugin.c)
# The CUDA example (plugins/example_cuda_bias_gelu): only with the CUDA backend. cmake/cuda_subsystem.cmake
# decides that (VBT_CUDA_ENABLED) after this file, so the target is added at the end of the configure step.
# The ring all-reduce plugin (plugins/fabric_ring_allreduce, ABI 1.2): always built, with its CPU kernel; its
# CUDA kernel (multi-GPU, peer access) only with the CUDA backend (VBT_RING_HAS_CUDA).
function(_vbt_add_cuda_example_plugins)
  set(_ring ${_vbt_root}/plugins/fabric_ring_allreduce)
  if(NOT VBT_CUDA_ENABLED)
    vbt_add_plugin(vbt_fabric_ring_allreduce SOURCES ${_ring}/ring_plugin.cpp ${_vbt_root}/src/vbt/fabric/ring_plan.cpp)
    set_target_properties(vbt_fabric_ring_allreduce PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
                          CXX_VISIBILITY_PRESET hidden)
    return()
  endif()
  vbt_add_plugin(vbt_fabric_ring_allreduce
                 SOURCES ${_ring}/ring_plugin.cpp ${_ring}/ring_cuda.cu ${_vbt_root}/src/vbt/fabric/ring_plan.cpp
                 DEFINES VBT_RING_HAS_CUDA=1)
  set_target_properties(vbt_fabric_ring_allreduce PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
                        CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON CUDA_VISIBILITY_PRESET hidden
                        CXX_VISIBILITY_PRESET hidden)
  target_link_libraries(vbt_fabric_ring_allreduce PRIVATE CUDA::cudart_static)
  vbt_add_plugin(vbt_example_cuda_bias_gelu SOURCES ${_vbt_root}/plugins/example_cuda_bias_gelu/bias_gelu_plugin.cu)
  set_target_properties(vbt_example_cuda_bias_gelu PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                        CUDA_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden)
  # Static CUDA runtime, as _C: the plugin loads (and its CPU kernel runs) on machines without a driver.
  target_link_libraries(vbt_example_cuda_bias_gelu PRIVATE CUDA::cudart_static)
endfunction()
cmake_language(DEFER CALL _vbt_add_cuda_example_plugins)
if(VBT_BUILD_TESTS)
  # Plugins that break one rule each (plugins/broken/broken_plugin.c, selected by VBT_BROKEN_MODE).
  foreach(_mode missing_init wrong_major newer_minor init_fails duplicate_op duplicate_builtin)
    vbt_add_plugin(vbt_broken_${_mode} SOURCES ${_vbt_root}/plugins/broken/broken_plugin.c
                   DEFINES VBT_BROKEN_${_mode}=1)
  endforeach()
  # ABI 1.2 Tensor[] arguments, `-> ()`, `ns::name` (plugins/tensor_list_test/list_plugin.c, VBT_LIST_<mode>).
  foreach(_mode ok abi11 minor3 bad_int_list bad_optional_list multi_device_cpu)
    vbt_add_plugin(vbt_list_${_mode} SOURCES ${_vbt_root}/plugins/tensor_list_test/list_plugin.c
                   DEFINES VBT_LIST_${_mode}=1)
  endforeach()
  # ABI 1.1 built-in override (plugins/override_test/override_plugin.c, selected by VBT_OVERRIDE_<mode>).
  foreach(_mode ok init_fails no_flag abi10)
    vbt_add_plugin(vbt_override_${_mode} SOURCES ${_vbt_root}/plugins/override_test/override_plugin.c
                   DEFINES VBT_OVERRIDE_${_mode}=1)
  endforeach()
endif()
if(TARGET vbt_cpp_tests)
  target_sources(vbt_cpp_tests PRIVATE ${_vbt_root}/tests/cpp/plugins/plugin_loader_test.cpp)
  target_compile_definitions(vbt_cpp_tests PRIVATE VBT_PLUGIN_DIR="${VBT_PLUGIN_OUTPUT_DIR}")
  if(EXISTS ${_vbt_root}/cmake/autograd.cmake AND NOT autograd IN_LIST VBT_SKIP_SUBSYSTEMS)
    target_compile_definitions(vbt_cpp_tests PRIVATE VBT_PLUGINS_TEST_AUTOGRAD=1)  # plugin ops in the autograd layer
  endif()
endif()
