# txagent: the gRPC daemon around the participant core (included from
# participant/CMakeLists.txt).
# The agent's console (its in-doubt branches), built into the binary and
# served at /ui on --http_listen.
set(AGENT_CONSOLE_FILES
  ${CMAKE_CURRENT_SOURCE_DIR}/console/index.html
  ${CMAKE_CURRENT_SOURCE_DIR}/console/agent.js
  ${CMAKE_CURRENT_SOURCE_DIR}/console/agent.css)
txcoord_embed_assets(${CMAKE_CURRENT_BINARY_DIR}/agent_console_assets.cc
  txcoord::participant::ConsoleAssets /ui ${AGENT_CONSOLE_FILES})

add_library(txcoord_agent agent_admin_service.cc agent_admin_outbox.cc agent_metrics.cc agent_service.cc
  coordinator_link.cc http_api.cc jetstream_publisher.cc outbox_relay.cc
  ${CMAKE_CURRENT_BINARY_DIR}/agent_console_assets.cc)
target_include_directories(txcoord_agent PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(txcoord_agent PUBLIC txcoord_participant txcoord_grpc_util txcoord_metrics
  txcoord_http absl::flat_hash_set PkgConfig::NATS)

add_executable(txagent txagent_main.cc)
target_link_libraries(txagent PRIVATE txcoord_agent txcoord_daemon_flags absl::flags
  absl::flags_parse txcoord_flag_usage txcoord_config_file)

txcoord_test(coordinator_link_test coordinator_link_test.cc)
target_link_libraries(coordinator_link_test PRIVATE txcoord_agent)
