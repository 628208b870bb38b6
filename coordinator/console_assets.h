// The coordinator's web console (coordinator/console/), built into the
// binary by scripts/embed_assets.cmake and served at /ui on --http_listen.
#ifndef TXCOORD_COORDINATOR_CONSOLE_ASSETS_H_
#define TXCOORD_COORDINATOR_CONSOLE_ASSETS_H_

#include <map>
#include <string>

#include "rpc/http_server.h"

namespace txcoord::coordinator {

// "/ui", "/ui/" and "/ui/index.html" (the page), "/ui/console.js", ...
std::map<std::string, HttpAsset> ConsoleAssets();

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_CONSOLE_ASSETS_H_
