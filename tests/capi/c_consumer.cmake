# cmake -DPREFIX=<install prefix> -DPKG_CONFIG=<pkg-config> -DCC=<C compiler> -DWORK=<dir>
#       (-DSRC=<program.c> | -DDOC=<docs/c_api.md>) -P c_consumer.cmake
# Builds a C program as C99 (-Wall -Wextra -pedantic -Werror) with the flags of
# `pkg-config --cflags --libs softmax` from the installed tree, and runs it. With DOC, the program
# is the first ```c block of that Markdown file and its output must equal the block that follows
# "It prints".
file(MAKE_DIRECTORY ${WORK})
if(DOC)
  file(READ ${DOC} md)
  string(REGEX MATCH "```c\n(.*)" rest "${md}")
  string(FIND "${CMAKE_MATCH_1}" "\n```" end)
  string(SUBSTRING "${CMAKE_MATCH_1}" 0 ${end} code)
  set(SRC ${WORK}/example.c)
  file(WRITE ${SRC} "${code}\n")
  string(REGEX MATCH "It prints\n\n```\n([^`]*)```" found "${md}")
  set(expected "${CMAKE_MATCH_1}")
endif()
file(GLOB_RECURSE pc ${PREFIX}/*/pkgconfig/softmax.pc)
if(NOT pc)
  message(FATAL_ERROR "no softmax.pc under ${PREFIX}")
endif()
get_filename_component(pcdir ${pc} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pcdir})
foreach(what cflags libs)
  execute_process(COMMAND ${PKG_CONFIG} --${what} softmax OUTPUT_VARIABLE flags_${what}
                  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "pkg-config --${what} softmax failed")
  endif()
  separate_arguments(flags_${what} UNIX_COMMAND "${flags_${what}}")
endforeach()
execute_process(COMMAND ${PKG_CONFIG} --variable=libdir softmax OUTPUT_VARIABLE libdir
                OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND ${CC} -std=c99 -Wall -Wextra -pedantic -Werror ${flags_cflags} ${SRC}
                        -o ${WORK}/consumer ${flags_libs} -lm -Wl,-rpath,${libdir}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "compiling ${SRC} failed")
endif()
execute_process(COMMAND ${WORK}/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc)
  message(FATAL_ERROR "consumer failed: ${rc}")
endif()
if(DOC AND NOT out STREQUAL expected)
  message(FATAL_ERROR "the example printed\n${out}\nbut ${DOC} says\n${expected}")
endif()
