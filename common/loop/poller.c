/* poller.c - pick a poller backend by its --poller name. */
#include "poller.h"

#include <stddef.h>
#include <string.h>

const struct loop_poller_ops *loop_poller_find(const char *name)
{
	static const struct loop_poller_ops *const all[] = {&loop_poller_select, &loop_poller_poll, &loop_poller_epoll};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}
