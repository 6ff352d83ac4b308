# Interop (SafeTensors, DLPack): adds its sources to the targets the main CMakeLists.txt defines.
# Include it AFTER vbt_core, _C and vbt_cpp_tests are declared:  include(cmake/interop.cmake)
# No third-party dependency: the JSON header parser is src/vbt/interop/strict_json.cpp.
target_sources(vbt_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/interop/strict_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/interop/contiguous_bytes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/interop/safetensors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/interop/dlpack_convert.cpp
)
if(TARGET _C)
  target_sources(_C PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/python/interop/interop_bindings.cpp)
  target_compile_definitions(_C PRIVATE VBT_HAS_INTEROP=1)
endif()
if(TARGET vbt_cpp_tests)
  target_sources(vbt_cpp_tests PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/../tests/cpp/interop/strict_json_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/../tests/cpp/interop/safetensors_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/../tests/cpp/interop/dlpack_test.cpp
  )
  target_include_directories(vbt_cpp_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../src/vbt/interop)
endif()
# The C plugin ABI builds on the DLPack metadata above.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/plugins.cmake)
  include(${CMAKE_CURRENT_LIST_DIR}/plugins.cmake)
endif()
