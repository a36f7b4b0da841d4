# weft_py_suites(DIR PREFIX LABEL TLS_SUITES TSAN): register every DIR/test_*.py
# as ctest tests run by tests/conformance/run.py against the real binary, once
# per model variant (WEFT_VARIANTS, read from servers/models.def by tests/CMakeLists.txt),
# per binary (plain, ASan+UBSan, and TSan for the threaded variants when TSAN
# is ON, or for the suites TSAN lists by name) and, for the suites named in TLS_SUITES, again with WEFT_TLS=1 (a name
# written SUITE:plain: over TLS with the plain binary only).
# Test names: PREFIX.<suite>.<variant>[.asan|.tsan][.tls]; labels: LABEL, the
# suite, the variant and the sanitizer. A new suite file joins automatically.
# An optional sixth argument ASAN_VARIANTS, entries "SUITE:v1,v2,...": that suite
# runs under ASan only on the variants listed (the caller lists at least one per
# model, checked here); "SUITE.tls:v1,..." the same for its ASan runs over TLS
# only. Plain, TSan and every other suite are unchanged.
set(WEFT_RUN ${CMAKE_CURRENT_LIST_DIR}/conformance/run.py)

function(weft_py_test prefix label suite_file suite variant args bin san tls)
  set(name ${prefix}.${suite}.${variant})
  set(timeout 300)
  if(NOT san STREQUAL "none")
    set(name ${name}.${san})
    set(timeout 600)
  endif()
  if(tls)
    set(name ${name}.tls)
  endif()
  add_test(NAME ${name} COMMAND ${WEFT_PYTHON} ${WEFT_RUN} ${suite_file})
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${timeout}
    SKIP_RETURN_CODE 77
    LABELS "${label};${suite};${variant};${san}"
    ENVIRONMENT "WEFT_BIN=$<TARGET_FILE:${bin}>;WEFT_MODEL_ARGS=${args};WEFT_SANITIZER=${san};WEFT_TLS=${tls};WEFT_SUITE_TIMEOUT=${timeout};PYTHONDONTWRITEBYTECODE=1;ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1")
endfunction()

function(weft_py_suites dir prefix label tls_suites tsan)
  # ASAN_VARIANTS: every variant named exists, and every model keeps one.
  foreach(entry ${ARGN})
    if(NOT entry MATCHES "^([a-z_]+)(\\.tls)?:(.+)$")
      message(FATAL_ERROR "ASAN_VARIANTS: '${entry}' is not SUITE[.tls]:variant,...")
    endif()
    string(REPLACE "," ";" listed "${CMAKE_MATCH_3}")
    if(NOT EXISTS ${dir}/test_${CMAKE_MATCH_1}.py)
      message(FATAL_ERROR "ASAN_VARIANTS '${entry}': no ${dir}/test_${CMAKE_MATCH_1}.py")
    endif()
    set(covered "")
    set(models "")
    foreach(v ${WEFT_VARIANTS})
      string(REPLACE "|" ";" parts "${v}")
      list(GET parts 0 variant)
      list(GET parts 1 args)
      string(REGEX REPLACE "^--model ([a-z0-9_]+).*$" "\\1" model "${args}")
      list(APPEND models ${model})
      if(variant IN_LIST listed)
        list(APPEND covered ${model})
        list(REMOVE_ITEM listed ${variant})
      endif()
    endforeach()
    list(REMOVE_DUPLICATES models)
    if(covered)
      list(REMOVE_ITEM models ${covered})
    endif()
    if(listed OR models)
      message(FATAL_ERROR "ASAN_VARIANTS '${entry}': unknown variants '${listed}', models left without ASan '${models}'")
    endif()
  endforeach()
  file(GLOB suites CONFIGURE_DEPENDS ${dir}/test_*.py)
  foreach(suite_file ${suites})
    get_filename_component(suite ${suite_file} NAME_WE)
    string(REGEX REPLACE "^test_" "" suite ${suite})
    list(FIND tls_suites ${suite} tls_idx)
    list(FIND tls_suites ${suite}:plain tls_plain_idx) # over TLS with the plain binary only
    set(asan_only "")  # empty: under ASan on every variant
    set(asan_tls_only "")  # the same, for the ASan runs over TLS
    foreach(entry ${ARGN})
      if(entry MATCHES "^${suite}:(.+)$")
        string(REPLACE "," ";" asan_only "${CMAKE_MATCH_1}")
      elseif(entry MATCHES "^${suite}\\.tls:(.+)$")
        string(REPLACE "," ";" asan_tls_only "${CMAKE_MATCH_1}")
      endif()
    endforeach()
    foreach(v ${WEFT_VARIANTS})
      string(REPLACE "|" ";" parts "${v}")
      list(GET parts 0 variant)
      list(GET parts 1 args)
      set(bins "weft|none")
      if(WEFT_SANITIZERS AND (NOT asan_only OR variant IN_LIST asan_only))
        list(APPEND bins "weft-asan|asan")
      endif()
      if(WEFT_SANITIZERS)
        list(FIND WEFT_TSAN_VARIANTS ${variant} tsan_idx)
        if((tsan STREQUAL "ON" OR suite IN_LIST tsan) AND tsan_idx GREATER -1)
          list(APPEND bins "weft-tsan|tsan")
        endif()
      endif()
      foreach(b ${bins})
        string(REPLACE "|" ";" bparts "${b}")
        list(GET bparts 0 bin)
        list(GET bparts 1 san)
        weft_py_test(${prefix} ${label} ${suite_file} ${suite} ${variant} "${args}" ${bin} ${san} 0)
        if(san STREQUAL "asan" AND asan_tls_only AND NOT variant IN_LIST asan_tls_only)
          continue()
        endif()
        if(tls_idx GREATER -1 OR (tls_plain_idx GREATER -1 AND san STREQUAL "none"))
          weft_py_test(${prefix} ${label} ${suite_file} ${suite} ${variant} "${args}" ${bin} ${san} 1)
        endif()
      endforeach()
    endforeach()
  endforeach()
endfunction()
