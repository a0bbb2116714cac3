/*
 * Reading tlspool.conf: INI syntax through libinih, with what inih leaves
 * out.
 *
 *   - The file is read through the file-trust module (filetrust.c): a
 *     regular file owned by root or us, not writable by group or other,
 *     at most 1 MiB; a directory or a FIFO is an error, never an empty
 *     file.  It is then parsed from memory.
 *   - inih stops at a NUL byte as if the file ended there: a NUL byte is
 *     an error naming its line.
 *   - The packaged inih passes no line numbers to its handler, so lines
 *     are counted here; it also takes an indented line as the
 *     continuation of the previous value and cuts lines longer than its
 *     buffer, both of which would silently change a setting, so both are
 *     errors here.
 *   - inih calls the handler for keys only, so a section header is
 *     checked here when its line is read: an unknown (or empty) section,
 *     a malformed identity, and two sections naming one identity (names
 *     compare without case and without a final dot) are errors.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filetrust.h"
#include "internal.h"

/* inih's INI_MAX_LINE as packaged: a longer line is read in pieces. */
#define TP_INI_MAX_LINE 200
/* libtlspool's limit of identities (config.c) */
#define TP_INI_MAX_IDS 256

struct conf_state {
	const char *buf; /* the file, in memory */
	size_t len, pos;
	int line;    /* the line being parsed */
	int errline; /* where msg was found */
	char msg[300];
	struct {
		char name[TP_INI_MAX_LINE];
		int line;
	} * ids; /* the named sections so far ("identity NAME") */
	size_t nids;
	const char *const *sections; /* the caller's, or NULL: any */
	int (*entry)(void *, const char *, const char *, const char *, char *,
	             size_t);
	void *user;
};

static void first_error(struct conf_state *st, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void first_error(struct conf_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->msg[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
	va_end(ap);
	st->errline = st->line;
}

/* A domain, or user@domain with a local part without controls or space
 * (the rule of libtlspool's identities). */
static int identity_ok(const char *name)
{
	const char *at = strrchr(name, '@');

	if (name[0] == '\0')
		return 0;
	if (at == NULL)
		return tlspool_check_domain(name, 0) == 0;
	if (at == name || strlen(name) > 255)
		return 0;
	for (const char *p = name; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	return tlspool_check_domain(at + 1, 0) == 0;
}

/* Two identity names that are one: the same without case and without a
 * final dot. */
static int same_identity(const char *a, const char *b)
{
	const char *aa = strrchr(a, '@'), *ba = strrchr(b, '@');

	if ((aa == NULL) != (ba == NULL))
		return 0;
	if (aa == NULL)
		return tp_name_equal(a, b);
	return aa - a == ba - b && strncasecmp(a, b, (size_t)(aa - a)) == 0 &&
	       tp_name_equal(aa + 1, ba + 1);
}

/* A "PREFIX *" entry of the caller's list that name matches: the length
 * of "PREFIX ", else 0. */
static size_t named_section(const char *const *sections, const char *name)
{
	size_t i, n;

	for (i = 0; sections[i] != NULL; i++) {
		n = strlen(sections[i]);
		if (n >= 2 && strcmp(sections[i] + n - 2, " *") == 0 &&
		    strncmp(name, sections[i], n - 1) == 0 &&
		    name[n - 1] != '\0')
			return n - 1;
	}
	return 0;
}

/* The caller names the sections its file may have (this library owns
 * only [dns]); "PREFIX *" admits sections named by an identity, each
 * identity once. */
static void check_section(struct conf_state *st, const char *name)
{
	const char *id;
	size_t i, n;
	void *grown;

	if (st->sections == NULL)
		return;
	for (i = 0; st->sections[i] != NULL; i++)
		if (strcmp(name, st->sections[i]) == 0)
			return;
	n = named_section(st->sections, name);
	if (n == 0) {
		first_error(st, "[%s]: unknown section", name);
		return;
	}
	id = name + n;
	if (!identity_ok(id)) {
		first_error(st, "[%s]: not a domain or user@domain identity",
		            name);
		return;
	}
	for (i = 0; i < st->nids; i++)
		if (same_identity(st->ids[i].name, id)) {
			first_error(st,
			            "[%s]: the same identity as [identity %s] "
			            "on line %d",
			            name, st->ids[i].name, st->ids[i].line);
			return;
		}
	if (st->nids == TP_INI_MAX_IDS) {
		first_error(st, "[%s]: more than %d identities", name,
		            TP_INI_MAX_IDS);
		return;
	}
	grown = realloc(st->ids, (st->nids + 1) * sizeof(st->ids[0]));
	if (grown == NULL) {
		first_error(st, "out of memory");
		return;
	}
	st->ids = grown;
	snprintf(st->ids[st->nids].name, sizeof(st->ids[0].name), "%s", id);
	st->ids[st->nids++].line = st->line;
}

/* A section header as inih reads it: "[" name "]" in the first column
 * (after a byte order mark on the first line); the name as written. */
static void section_line(struct conf_state *st, const char *s)
{
	char name[TP_INI_MAX_LINE];
	const char *end;

	if (st->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	if (s[0] != '[')
		return;
	end = strchr(s + 1, ']');
	if (end == NULL)
		return; /* inih's syntax error */
	snprintf(name, sizeof(name), "%.*s", (int)(end - s - 1), s + 1);
	check_section(st, name);
}

/* inih's reader: fgets() over the file in memory. */
static char *read_line(char *str, int num, void *stream)
{
	struct conf_state *st = stream;
	size_t room = (size_t)num - 1, n = 0;

	if (st->pos >= st->len || num < 2)
		return NULL;
	while (n < room && st->pos < st->len) {
		char c = st->buf[st->pos++];

		str[n++] = c;
		if (c == '\n')
			break;
	}
	str[n] = '\0';
	st->line++;
	if (n == room && str[n - 1] != '\n' && st->pos < st->len) {
		first_error(st, "line too long");
		/* skip the rest, so that it is not read as lines of its own */
		while (st->pos < st->len && st->buf[st->pos++] != '\n')
			;
	} else if ((str[0] == ' ' || str[0] == '\t') &&
	           str[strspn(str, " \t\r\n")] != '\0' &&
	           strchr(";#", str[strspn(str, " \t")]) == NULL) {
		first_error(st, "indented line (keys and sections start in "
		                "the first column)");
	} else {
		section_line(st, str);
	}
	return str;
}

static int on_entry(void *user, const char *section, const char *key,
                    const char *value)
{
	struct conf_state *st = user;
	char msg[300] = "";

	if (st->entry(st->user, section, key, value, msg, sizeof(msg)) == 0)
		return 1;
	first_error(st, "%s", msg[0] ? msg : "bad entry");
	return 0;
}

int tlspool_conf_parse(const char *path, const char *const *sections,
                       int (*entry)(void *user, const char *section,
                                    const char *key, const char *value,
                                    char *msg, size_t msglen),
                       void *user, char *err, size_t errlen)
{
	struct conf_state st;
	unsigned char *data;
	const unsigned char *nul;
	size_t len;
	int line;

	memset(&st, 0, sizeof(st));
	st.sections = sections;
	st.entry = entry;
	st.user = user;
	if (tlspool_file_read(path, TLSPOOL_FILE_CONFIG, &data, &len, err,
	                      errlen) != 0)
		return -1; /* errno set, the file named in err */
	nul = memchr(data, '\0', len);
	if (nul != NULL) {
		line = 1;
		for (const unsigned char *p = data; p < nul; p++)
			line += *p == '\n';
		tp_err(err, errlen, "%s:%d: a NUL byte in the line", path,
		       line);
		tlspool_file_free(data, len);
		errno = EINVAL;
		return -1;
	}
	st.buf = (const char *)data;
	st.len = len;
	line = ini_parse_stream(read_line, &st, on_entry, &st);
	tlspool_file_free(data, len);
	free(st.ids);
	if (line == 0 && st.msg[0] == '\0')
		return 0;
	/* inih's own first error (a syntax error) or ours: the earlier */
	if (line > 0 && (st.msg[0] == '\0' || line < st.errline))
		tp_err(err, errlen, "%s:%d: syntax error", path, line);
	else
		tp_err(err, errlen, "%s:%d: %s", path, st.errline, st.msg);
	errno = EINVAL;
	return -1;
}
