# ctest helper: runs bench_kernels with one stage sabotaged and passes only when the program exits
# non-zero AND names that stage in its validation message AND its --json file (written after every
# stage) holds the stages that ran before, marked incomplete: what a run stopped midway leaves behind.
# Usage: cmake -DEXE=<bench_kernels> -DSTAGE=<stage> -DJSON=<scratch .json path> -P expect_validation_failure.cmake
file(REMOVE ${JSON})
execute_process(
  COMMAND ${EXE} --device cpu --small --threads 1 --repeats 1 --warmup 0 --sabotage ${STAGE} --json ${JSON}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "bench_kernels exited 0 although stage '${STAGE}' was given wrong results:\n${err}")
endif()
string(FIND "${err}" "validation failed in stage '${STAGE}'" found)
if(found EQUAL -1)
  message(FATAL_ERROR "bench_kernels exited ${rc} without naming stage '${STAGE}':\n${err}")
endif()
if(NOT EXISTS ${JSON})
  message(FATAL_ERROR "bench_kernels left no ${JSON} behind after failing in stage '${STAGE}'")
endif()
file(READ ${JSON} json)
string(JSON complete GET "${json}" complete)
string(JSON n_rows LENGTH "${json}" rows)
if(complete OR n_rows LESS 1)
  message(FATAL_ERROR "${JSON} after failing in stage '${STAGE}': complete = ${complete}, ${n_rows} rows "
                      "(expected false and the rows of the stages before it)")
endif()
message(STATUS "bench_kernels exited ${rc}, ${JSON} kept ${n_rows} rows: ${err}")
