/* pool.c - placeholder. */
#include "model.h"
#include "server.h"
static int run(struct server *srv) { (void)srv; return 1; }
const struct model model_pool = {.name = "pool", .recipe = "not built yet", .run = run};
