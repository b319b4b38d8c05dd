/*
 * options.c -- GOMALLOC_CONF parsing (Go's GODEBUG, jemalloc's MALLOC_CONF).
 *
 * The table is lib/options.def; this file only interprets it.  Called once
 * from gm_init_slow with environ, before any other layer is set up, so it
 * must not allocate: it scans envp by hand and reports errors with
 * gm_message (write(2)).  A bad key or value prints one line naming it and
 * what is valid; that option keeps its default and parsing goes on.
 */
#include "options.h"

#include <string.h>

#include "message.h"

gm_options_t gm_opt;

enum { KIND_BOOL, KIND_UINT, KIND_SIZE, KIND_ENUM };

typedef struct opt_desc {
	const char *name;
	int kind;
	uint64_t def, min, max;
	const char *choices;
	const char *doc;
	size_t offset;
} opt_desc_t;

static const opt_desc_t opt_table[] = {
#define GM_OPT(name, kind, def, min, max, choices, doc) \
	{#name, KIND_##kind, (uint64_t)(def), (uint64_t)(min), (uint64_t)(max), choices, doc, \
	 offsetof(gm_options_t, name)},
#include "options.def"
#undef GM_OPT
};

#define OPT_COUNT (sizeof opt_table / sizeof opt_table[0])

static uint64_t *opt_slot(const opt_desc_t *d)
{
	return (uint64_t *)((char *)&gm_opt + d->offset);
}

void options_defaults(void)
{
	for (size_t i = 0; i < OPT_COUNT; i++)
		*opt_slot(&opt_table[i]) = opt_table[i].def;
}

static bool parse_uint(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool options_parse_size(const char *s, size_t len, uint64_t *out)
{
	unsigned shift = 0;
	if (len > 0) {
		char c = s[len - 1];
		if (c == 'b' || c == 'B') { /* "64MB", "64MiB" style tails */
			len--;
			if (len > 0 && (s[len - 1] == 'i' || s[len - 1] == 'I'))
				len--;
			c = len ? s[len - 1] : '\0';
		}
		switch (c) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: break;
		}
		if (shift)
			len--;
	}
	uint64_t v;
	if (!parse_uint(s, len, &v))
		return false;
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

/* Index of the '|'-separated word equal to s[0..len), or -1. */
static int choice_index(const char *choices, const char *s, size_t len)
{
	int idx = 0;
	const char *w = choices;
	while (*w) {
		const char *e = strchr(w, '|');
		size_t wl = e ? (size_t)(e - w) : strlen(w);
		if (wl == len && memcmp(w, s, len) == 0)
			return idx;
		idx++;
		if (!e)
			break;
		w = e + 1;
	}
	return -1;
}

static bool word_is(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && memcmp(s, w, len) == 0;
}

static void report_bad_key(const char *k, size_t klen)
{
	char keys[512];
	size_t n = 0;
	for (size_t i = 0; i < OPT_COUNT; i++)
		n += gm_fmt(keys + n, sizeof keys - n, "%s%s", i ? ", " : "", opt_table[i].name);
	char key[64];
	size_t kl = klen < sizeof key - 1 ? klen : sizeof key - 1;
	memcpy(key, k, kl);
	key[kl] = '\0';
	gm_message("GOMALLOC_CONF: unknown option '%s' (valid: %s); defaults kept", key, keys);
}

static void report_bad_value(const opt_desc_t *d, const char *v, size_t vlen)
{
	char val[64];
	size_t l = vlen < sizeof val - 1 ? vlen : sizeof val - 1;
	memcpy(val, v, l);
	val[l] = '\0';
	char valid[128];
	switch (d->kind) {
	case KIND_BOOL:
		gm_fmt(valid, sizeof valid, "true or false");
		break;
	case KIND_ENUM:
		gm_fmt(valid, sizeof valid, "one of %s", d->choices);
		break;
	case KIND_UINT:
		if (d->choices[0])
			gm_fmt(valid, sizeof valid, "one of %s", d->choices);
		else
			gm_fmt(valid, sizeof valid, "an integer from %llu to %llu",
			       (unsigned long long)d->min, (unsigned long long)d->max);
		break;
	default:
		gm_fmt(valid, sizeof valid, "a size in bytes with optional K/M/G/T suffix");
		break;
	}
	gm_message("GOMALLOC_CONF: bad value '%s' for %s (expected %s); default kept",
	           val, d->name, valid);
}

/* Apply key=value; returns 0 or 1 error. */
static int apply(const char *k, size_t klen, const char *v, size_t vlen)
{
	const opt_desc_t *d = NULL;
	for (size_t i = 0; i < OPT_COUNT; i++) {
		if (word_is(k, klen, opt_table[i].name)) {
			d = &opt_table[i];
			break;
		}
	}
	if (d == NULL) {
		report_bad_key(k, klen);
		return 1;
	}
	uint64_t val = 0;
	bool ok = false;
	switch (d->kind) {
	case KIND_BOOL:
		if (word_is(v, vlen, "true") || word_is(v, vlen, "1") || word_is(v, vlen, "yes")) {
			val = 1;
			ok = true;
		} else if (word_is(v, vlen, "false") || word_is(v, vlen, "0") ||
		           word_is(v, vlen, "no")) {
			val = 0;
			ok = true;
		}
		break;
	case KIND_ENUM: {
		int idx = choice_index(d->choices, v, vlen);
		ok = idx >= 0;
		val = (uint64_t)idx;
		break;
	}
	case KIND_UINT:
		ok = parse_uint(v, vlen, &val) && val >= d->min && val <= d->max &&
		     (d->choices[0] == '\0' || choice_index(d->choices, v, vlen) >= 0);
		break;
	default:
		ok = options_parse_size(v, vlen, &val) && val >= d->min && val <= d->max;
		break;
	}
	if (!ok) {
		report_bad_value(d, v, vlen);
		return 1;
	}
	*opt_slot(d) = val;
	return 0;
}

int options_parse(const char *conf)
{
	int errors = 0;
	const char *p = conf;
	while (*p) {
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *colon = p;
		while (colon < end && *colon != ':' && *colon != '=')
			colon++;
		if (end > p) {
			if (colon == end) {
				/* "key" alone: accepted for booleans as key:true. */
				const opt_desc_t *d = NULL;
				for (size_t i = 0; i < OPT_COUNT; i++)
					if (word_is(p, (size_t)(end - p), opt_table[i].name))
						d = &opt_table[i];
				if (d && d->kind == KIND_BOOL)
					*opt_slot(d) = 1;
				else if (d)
					report_bad_value(d, "", 0), errors++;
				else
					report_bad_key(p, (size_t)(end - p)), errors++;
			} else {
				errors += apply(p, (size_t)(colon - p), colon + 1,
				                (size_t)(end - colon - 1));
			}
		}
		p = *end ? end + 1 : end;
	}
	return errors;
}

int options_init(char **envp)
{
	static const char var[] = "GOMALLOC_CONF=";
	options_defaults();
	if (envp == NULL)
		return 0;
	for (char **e = envp; *e; e++) {
		if (strncmp(*e, var, sizeof var - 1) == 0)
			return options_parse(*e + sizeof var - 1);
	}
	return 0;
}
