# ctest script: install this build into a scratch prefix, build examples/render_one_view and
# examples/query_density out of tree
# against the installed package (find_package(nerfcore)), and render one view from a checkpoint.
# Variables: BUILD_DIR, SOURCE_DIR, WORK_DIR, NERF_TRAIN (the nerf_train executable).
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR NERF_TRAIN)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "test_install_example: ${var} is not set")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
run_step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run_step("configure the example" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/render_one_view -B ${WORK_DIR}/example
         -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run_step("build the example" ${CMAKE_COMMAND} --build ${WORK_DIR}/example)
run_step("configure the query example" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/query_density -B ${WORK_DIR}/query
         -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run_step("build the query example" ${CMAKE_COMMAND} --build ${WORK_DIR}/query)
# A checkpoint to render: a few steps of a tiny network on a small built-in scene.
run_step("train a tiny model" ${NERF_TRAIN} --dataset_type builtin --datadir ${WORK_DIR}/scene --basedir ${WORK_DIR}/logs
         --expname tiny --white_bkgd --use_viewdirs --netdepth 2 --netwidth 16 --netdepth_fine 2 --netwidth_fine 16
         --N_samples 8 --N_importance 8 --N_rand 64 --N_iters 3 --i_weights 3 --n_val_eval 1 --quiet --chunk 512)
file(GLOB checkpoints ${WORK_DIR}/logs/tiny/*.safetensors)
list(LENGTH checkpoints n_checkpoints)
if(n_checkpoints EQUAL 0)
  message(FATAL_ERROR "nerf_train wrote no checkpoint into ${WORK_DIR}/logs/tiny")
endif()
list(GET checkpoints 0 checkpoint)
run_step("run the example" ${WORK_DIR}/example/render_one_view ${checkpoint} ${WORK_DIR}/view.png 24)
if(NOT EXISTS ${WORK_DIR}/view.png)
  message(FATAL_ERROR "render_one_view wrote no ${WORK_DIR}/view.png")
endif()
file(SIZE ${WORK_DIR}/view.png png_bytes)
if(png_bytes LESS 100)
  message(FATAL_ERROR "render_one_view wrote a ${png_bytes}-byte PNG")
endif()
execute_process(COMMAND ${WORK_DIR}/query/query_density ${checkpoint} 5 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
# The header line, five samples along the ray and the opacity line; densities are numbers >= 0.
if(NOT rc EQUAL 0 OR NOT out MATCHES "model nerf, step 3" OR NOT out MATCHES "density" OR NOT out MATCHES "opacity")
  message(FATAL_ERROR "query_density failed (${rc}):\n${out}\n${err}")
endif()
string(REGEX MATCHALL "\n +-?[0-9.]+ +[0-9]+\\.[0-9]+   " samples "${out}")
list(LENGTH samples n_samples)
if(NOT n_samples EQUAL 5)
  message(FATAL_ERROR "query_density printed ${n_samples} samples, not 5:\n${out}")
endif()
message(STATUS "run the query example: ok")
file(REMOVE_RECURSE ${WORK_DIR})
