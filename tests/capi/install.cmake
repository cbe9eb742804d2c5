# cmake -DBIN=<build dir> -DPREFIX=<scratch prefix> -P install.cmake: a fresh install of the
# build tree (static and shared library, headers, softmax.pc, CMake package) for the consumers.
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${PREFIX}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install failed: ${rc}")
endif()
