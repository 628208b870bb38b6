// The agent's web console (participant/console/): its in-doubt branches and
// heuristic decisions, built into the binary by scripts/embed_assets.cmake
// and served at /ui on --http_listen.
#ifndef TXCOORD_AGENT_CONSOLE_ASSETS_H_
#define TXCOORD_AGENT_CONSOLE_ASSETS_H_

#include <map>
#include <string>

#include "rpc/http_server.h"

namespace txcoord::participant {

// "/ui", "/ui/" and "/ui/index.html" (the page), "/ui/agent.js", ...
std::map<std::string, HttpAsset> ConsoleAssets();

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_CONSOLE_ASSETS_H_
