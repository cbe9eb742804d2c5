# cmake -DLIB=<libsoftmax.so> -DNM=<nm> -DREADELF=<readelf> -DSOVERSION=<major> -P visibility.cmake
# The shared library's SONAME is libsoftmax.so.<major>, and its dynamic symbol table exports
# exactly the C ABI (softmax_*) and the C++ API (namespace softmax, typeinfo of softmax::Error):
# no internal namespace (softmax::detail, softmax::cpu, softmax::cuda, softmax::N_<target>), no
# Highway, standard-library or other third-party symbol.
execute_process(COMMAND ${READELF} -d ${LIB} OUTPUT_VARIABLE dyn RESULT_VARIABLE rc)
if(rc OR NOT dyn MATCHES "Library soname: \\[libsoftmax\\.so\\.${SOVERSION}\\]")
  message(FATAL_ERROR "SONAME is not libsoftmax.so.${SOVERSION}:\n${dyn}")
endif()
execute_process(COMMAND ${NM} -D -C --defined-only ${LIB} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "nm failed: ${rc}")
endif()
string(REPLACE "\n" ";" lines "${syms}")
set(bad "")
set(count 0)
foreach(line IN LISTS lines)
  if(line STREQUAL "")
    continue()
  endif()
  # "<address> <type> <name>"
  string(REGEX REPLACE "^[0-9a-f]* *[A-Za-z] " "" name "${line}")
  math(EXPR count "${count} + 1")
  if(name MATCHES "^softmax_[a-z0-9_]+$")
    continue()
  endif()
  string(REGEX REPLACE "^(typeinfo name for|typeinfo for|vtable for) " "" bare "${name}")
  if(bare MATCHES "^softmax::" AND NOT bare MATCHES "^softmax::(detail|cpu|cuda|N_[A-Z0-9_]+)::")
    continue()
  endif()
  string(APPEND bad "  ${name}\n")
endforeach()
if(bad)
  message(FATAL_ERROR "libsoftmax.so exports symbols outside the C ABI and C++ API:\n${bad}")
endif()
# The ABI and the C++ API are there (spot checks of each kind of symbol).
foreach(want "T softmax_softmax" "T softmax_attention" "T softmax_last_error"
             "T softmax::softmax(softmax::ConstTensorView, softmax::TensorView"
             "T softmax::cross_entropy(" "T softmax::dtype_name(" "T softmax::current_target"
             "typeinfo for softmax::Error")
  string(FIND "${syms}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "libsoftmax.so does not export '${want}'")
  endif()
endforeach()
message(STATUS "libsoftmax.so.${SOVERSION}: ${count} exported symbols, all softmax_* or softmax::")
