# ctest helper: tools/gpu_check.sh --check-out accepts a folder a GPU run can bring back (at most 8
# plain files of at most 16 MiB) and refuses a ninth file, a file over 16 MiB and a subfolder's file.
# Usage: cmake -DSCRIPT=<tools/gpu_check.sh> -DWORK_DIR=<scratch folder> -P gpu_check_out_limits.cmake
function(expect_check dir want_ok what)
  execute_process(COMMAND bash ${SCRIPT} --check-out ${dir} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(want_ok AND NOT rc EQUAL 0)
    message(FATAL_ERROR "--check-out refused ${what} (exit ${rc}):\n${out}${err}")
  elseif(NOT want_ok AND rc EQUAL 0)
    message(FATAL_ERROR "--check-out accepted ${what}:\n${out}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
foreach(name summary.md results.json gpu_tests.log sanitizer.log bench_kernels.json bench_kernels.log training.log logs.tar.gz)
  file(WRITE ${WORK_DIR}/ok/${name} "x\n")
endforeach()
expect_check(${WORK_DIR}/ok TRUE "8 small files")

file(COPY ${WORK_DIR}/ok/ DESTINATION ${WORK_DIR}/nine)
file(WRITE ${WORK_DIR}/nine/extra.log "x\n")
expect_check(${WORK_DIR}/nine FALSE "9 files")

file(WRITE ${WORK_DIR}/big/summary.md "x\n")
execute_process(COMMAND truncate -s 16777217 ${WORK_DIR}/big/gpu_tests.log RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "truncate failed")
endif()
expect_check(${WORK_DIR}/big FALSE "a file of 16 MiB + 1 byte")

file(WRITE ${WORK_DIR}/nested/summary.md "x\n")
file(WRITE ${WORK_DIR}/nested/train/summary.json "{}\n")
expect_check(${WORK_DIR}/nested FALSE "a file in a subfolder")
file(REMOVE_RECURSE ${WORK_DIR})
