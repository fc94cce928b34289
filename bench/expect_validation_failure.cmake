# ctest helper: runs bench_kernels with one stage sabotaged and passes only when the program exits
# non-zero AND names that stage in its validation message.
# Usage: cmake -DEXE=<bench_kernels> -DSTAGE=<stage> -P expect_validation_failure.cmake
execute_process(
  COMMAND ${EXE} --device cpu --small --threads 1 --repeats 1 --warmup 0 --sabotage ${STAGE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "bench_kernels exited 0 although stage '${STAGE}' was given wrong results:\n${err}")
endif()
string(FIND "${err}" "validation failed in stage '${STAGE}'" found)
if(found EQUAL -1)
  message(FATAL_ERROR "bench_kernels exited ${rc} without naming stage '${STAGE}':\n${err}")
endif()
message(STATUS "bench_kernels exited ${rc}: ${err}")
