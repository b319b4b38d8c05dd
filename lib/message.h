/*
 * message.h -- gomalloc's own output: a small printf-like formatter that
 * never allocates, and one-line messages on stderr written with write(2).
 *
 * Used wherever stdio may not be (during initialisation, inside malloc,
 * after a detected heap error).  Formats: %s %c %d %i %u %x %p %% with the
 * length modifiers l, ll, z; no widths except a zero-padded %0Nx/%0Nu.
 */
#ifndef GM_MESSAGE_H
#define GM_MESSAGE_H

#include <stdarg.h>
#include <stddef.h>

#include "compiler.h"

/* Format into buf (always NUL-terminated when n > 0); returns the length
 * that was written (truncated output is cut, never overflows). */
size_t gm_vfmt(char *buf, size_t n, const char *fmt, va_list ap);
size_t gm_fmt(char *buf, size_t n, const char *fmt, ...) GM_FORMAT(3, 4);

/* Write all of s[0..len) to fd, retrying on EINTR and short writes. */
void gm_write_all(int fd, const char *s, size_t len);

/* Formatted output to fd (at most 1 KiB per call). */
void gm_dprintf(int fd, const char *fmt, ...) GM_FORMAT(2, 3);

/* One line "gomalloc: <message>\n" on stderr, written with one write(2). */
void gm_message(const char *fmt, ...) GM_FORMAT(1, 2);

#endif /* GM_MESSAGE_H */
