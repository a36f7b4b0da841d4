# Each fuzz/fuzz_NAME.c is compiled with clang together with common/*.c,
# instrumented for libFuzzer + ASan + UBSan, and run by ctest for a bounded
# time on a scratch copy of its checked-in corpus (fuzz/corpus/NAME).
list(TRANSFORM WEFT_COMMON_DIRS PREPEND -I OUTPUT_VARIABLE WEFT_FUZZ_INCLUDES)
set(WEFT_FUZZ_SECONDS 10 CACHE STRING "seconds each fuzzer runs in the test suite")
foreach(src ${WEFT_FUZZERS})
  get_filename_component(name ${src} NAME_WE)
  set(bin ${CMAKE_CURRENT_BINARY_DIR}/${name})
  add_custom_command(OUTPUT ${bin}
    COMMAND ${WEFT_FUZZ_CC} -g -O1 -std=c17 -D_GNU_SOURCE -DWEFT_VERSION="fuzz"
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
            ${WEFT_FUZZ_INCLUDES} ${src} ${WEFT_COMMON_SRC} ${HIREDIS_LDFLAGS} -lwslay -lssl -lcrypto -lpthread -o ${bin}
    DEPENDS ${src} ${WEFT_COMMON_SRC}
    COMMENT "libFuzzer target ${name}"
    VERBATIM)
  add_custom_target(${name}_bin ALL DEPENDS ${bin})
  string(REGEX REPLACE "^fuzz_" "" corpus ${name})
  add_test(NAME fuzz.${name}
    COMMAND sh -c "rm -rf '${CMAKE_CURRENT_BINARY_DIR}/${name}.work' && cp -r '${CMAKE_CURRENT_SOURCE_DIR}/corpus/${corpus}' '${CMAKE_CURRENT_BINARY_DIR}/${name}.work' && '${bin}' -max_total_time=${WEFT_FUZZ_SECONDS} -timeout=5 -rss_limit_mb=2048 -artifact_prefix='${CMAKE_CURRENT_BINARY_DIR}/${name}-' '${CMAKE_CURRENT_BINARY_DIR}/${name}.work'")
  # Started early (ctest runs costlier tests first), not left for a -j3 run's tail.
  set_tests_properties(fuzz.${name} PROPERTIES COST ${WEFT_FUZZ_SECONDS})
endforeach()
