/*
 * message.c -- formatting and stderr output that never allocate.
 *
 * Callers: malloc.c (bad-pointer reports), mcentral.c (double free found by
 * sweep), options.c (GOMALLOC_CONF errors), scavenge.c (verbose), stats.c
 * (the text reports).  Nothing here takes a lock or touches the heap, so it
 * is safe from any state, including a signal handler or a forked child.
 * errno is preserved across gm_message (free() must not change errno).
 */
#include "message.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

typedef struct fmt_out {
	char *buf;
	size_t n;   /* capacity including the NUL */
	size_t len; /* characters written so far (<= n - 1) */
} fmt_out_t;

static void out_char(fmt_out_t *o, char c)
{
	if (o->len + 1 < o->n)
		o->buf[o->len++] = c;
}

static void out_str(fmt_out_t *o, const char *s)
{
	if (s == NULL)
		s = "(null)";
	while (*s)
		out_char(o, *s++);
}

static void out_uint(fmt_out_t *o, unsigned long long v, unsigned base, int width, char pad)
{
	char tmp[24];
	int i = 0;
	do {
		unsigned d = (unsigned)(v % base);
		tmp[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v != 0);
	while (i < width && i < (int)sizeof tmp)
		tmp[i++] = pad;
	while (i > 0)
		out_char(o, tmp[--i]);
}

size_t gm_vfmt(char *buf, size_t n, const char *fmt, va_list ap)
{
	fmt_out_t o = {buf, n, 0};
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			out_char(&o, *f);
			continue;
		}
		f++;
		char pad = ' ';
		int width = 0;
		if (*f == '0') {
			pad = '0';
			f++;
		}
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t */
		if (*f == 'z') {
			lng = 3;
			f++;
		} else if (*f == 'l') {
			lng = 1;
			f++;
			if (*f == 'l') {
				lng = 2;
				f++;
			}
		}
		switch (*f) {
		case 'd':
		case 'i': {
			long long v;
			if (lng == 0)
				v = va_arg(ap, int);
			else if (lng == 1)
				v = va_arg(ap, long);
			else if (lng == 2)
				v = va_arg(ap, long long);
			else
				v = (long long)va_arg(ap, ptrdiff_t);
			if (v < 0) {
				out_char(&o, '-');
				out_uint(&o, 0ull - (unsigned long long)v, 10, width, pad);
			} else {
				out_uint(&o, (unsigned long long)v, 10, width, pad);
			}
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v;
			if (lng == 0)
				v = va_arg(ap, unsigned);
			else if (lng == 1)
				v = va_arg(ap, unsigned long);
			else if (lng == 2)
				v = va_arg(ap, unsigned long long);
			else
				v = va_arg(ap, size_t);
			out_uint(&o, v, *f == 'x' ? 16 : 10, width, pad);
			break;
		}
		case 'p': {
			uintptr_t v = (uintptr_t)va_arg(ap, void *);
			if (v == 0) {
				out_str(&o, "(nil)");
			} else {
				out_str(&o, "0x");
				out_uint(&o, v, 16, 0, '0');
			}
			break;
		}
		case 's':
			out_str(&o, va_arg(ap, const char *));
			break;
		case 'c':
			out_char(&o, (char)va_arg(ap, int));
			break;
		case '%':
			out_char(&o, '%');
			break;
		case '\0':
			f--;
			break;
		default:
			out_char(&o, '%');
			out_char(&o, *f);
			break;
		}
	}
	if (n > 0)
		buf[o.len] = '\0';
	return o.len;
}

size_t gm_fmt(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t len = gm_vfmt(buf, n, fmt, ap);
	va_end(ap);
	return len;
}

void gm_write_all(int fd, const char *s, size_t len)
{
	int saved = errno;
	while (len > 0) {
		ssize_t w = write(fd, s, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		s += w;
		len -= (size_t)w;
	}
	errno = saved;
}

void gm_dprintf(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	size_t len = gm_vfmt(buf, sizeof buf, fmt, ap);
	va_end(ap);
	gm_write_all(fd, buf, len);
}

void gm_message(const char *fmt, ...)
{
	char buf[512];
	static const char prefix[] = "gomalloc: ";
	size_t len = sizeof prefix - 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = prefix[i];
	va_list ap;
	va_start(ap, fmt);
	len += gm_vfmt(buf + len, sizeof buf - len - 1, fmt, ap);
	va_end(ap);
	buf[len++] = '\n';
	gm_write_all(2, buf, len);
}
