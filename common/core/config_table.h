/* config_table.h - the option table, shared by the parser (config.c) and
 * what is generated from it (config_doc.c: --help, the man page, bash
 * completion). Private to those two files. */
#ifndef WEFT_CONFIG_TABLE_H
#define WEFT_CONFIG_TABLE_H

#include <stddef.h>
#include <stdio.h>

enum opt_type { T_STR, T_INT, T_SIZE, T_BOOL, T_SECS, T_MODE, T_LEVEL };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *def; /* NULL = unset */
	const char *arg; /* metavar for --help */
	const char *help;
	/* The models that read this flag ("coro uring"), NULL = every model: the
	 * one place that knows it. --help prefixes the help with them, and a
	 * flag given to a model not listed gets a warning (config_warn_ignored). */
	const char *models;
	/* The values it takes ("a b c"), for bash completion and the check. */
	const char *choices;
};

extern const struct opt config_opts[];
extern const size_t config_nopts;

/* The longest duration, in whole seconds, for messages and --help. */
#define CONFIG_SECS_MAX_TEXT "604800"

/* The words of "a b c" as "a, b<last>c" (last: " or ", " and ", ", "). */
void config_print_list(FILE *f, const char *list, const char *last);

/* What a value of the type must look like, for messages and the docs. */
const char *config_rule(enum opt_type t);

#endif
