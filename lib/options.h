/*
 * options.h -- the GOMALLOC_CONF options as a struct (generated from
 * options.def) and the parser entry point.
 *
 * gm_opt is written once by options_init (during gm_init_slow, under the
 * init lock) and read without synchronisation afterwards.
 */
#ifndef GM_OPTIONS_H
#define GM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Indexes of the ENUM options, in the order of their `choices`. */
enum { GM_SCAVENGER_BACKGROUND, GM_SCAVENGER_INLINE, GM_SCAVENGER_OFF };
enum { GM_MADVISE_DONTNEED, GM_MADVISE_FREE };

typedef struct gm_options {
#define GM_OPT(name, kind, def, min, max, choices, doc) uint64_t name;
#include "options.def"
#undef GM_OPT
} gm_options_t;

extern gm_options_t gm_opt;

/* Reset gm_opt to the defaults, then apply GOMALLOC_CONF found by scanning
 * envp (no getenv: it must not allocate).  Bad keys or values print one line
 * each on stderr and leave that option at its default.  Returns the number
 * of errors. */
int options_init(char **envp);

/* Parse one GOMALLOC_CONF string into gm_opt (after the defaults are set);
 * returns the number of errors. */
int options_parse(const char *conf);

/* Reset every option to its default. */
void options_defaults(void);

/* Parse a size with an optional K/M/G/T suffix; false if malformed. */
bool options_parse_size(const char *s, size_t len, uint64_t *out);

#endif /* GM_OPTIONS_H */
