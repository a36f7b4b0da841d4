# weft-load: the load generator (C17, epoll per thread, OpenSSL client).
# It links no weft code: it must judge the servers from the outside.
add_executable(weft-load
  ${CMAKE_CURRENT_LIST_DIR}/load/main.c
  ${CMAKE_CURRENT_LIST_DIR}/load/common.c
  ${CMAKE_CURRENT_LIST_DIR}/load/echo.c
  ${CMAKE_CURRENT_LIST_DIR}/load/chat.c
  ${CMAKE_CURRENT_LIST_DIR}/load/handshake.c
  ${CMAKE_CURRENT_LIST_DIR}/load/ws.c)
target_compile_definitions(weft-load PRIVATE _GNU_SOURCE)
target_compile_options(weft-load PRIVATE ${WEFT_WARN})
target_link_libraries(weft-load PRIVATE OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
# Put it beside weft in the build dir, where bench/compare and the tests look.
set_target_properties(weft-load PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
