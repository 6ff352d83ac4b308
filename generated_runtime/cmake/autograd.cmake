# Autograd (C++ engine, backward formulas, Python binding). Included by the top-level
# CMakeLists.txt after vbt_core, _C and vbt_cpp_tests are declared; defines VBT_HAS_AUTOGRAD on _C.
target_sources(vbt_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/autograd/autograd_meta.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/autograd/engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/autograd/formulas.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/autograd/layer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/autograd/streams.cpp
)
# Read by cmake/cuda_subsystem.cmake (included later): the CUDA stream hooks of the engine need autograd.
set(VBT_AUTOGRAD_INCLUDED ON)
if(TARGET _C)
  target_sources(_C PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/python/autograd/autograd_bindings.cpp)
  target_compile_definitions(_C PRIVATE VBT_HAS_AUTOGRAD=1)
endif()
if(TARGET vbt_cpp_tests)
  file(GLOB VBT_AUTOGRAD_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../tests/cpp/autograd/*.cpp)
  target_sources(vbt_cpp_tests PRIVATE ${VBT_AUTOGRAD_TEST_SOURCES})
endif()
