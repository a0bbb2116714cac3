/*
 * Reading tlspool.conf: INI syntax through libinih, with what inih leaves
 * out.  The packaged inih passes no line numbers to its handler, so lines
 * are counted here; it also takes an indented line as the continuation of
 * the previous value and cuts lines longer than its buffer, both of which
 * would silently change a setting, so both are errors here.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* inih's INI_MAX_LINE as packaged: a longer line is read in pieces. */
#define TP_INI_MAX_LINE 200

struct conf_state {
	FILE *fp;
	int line;    /* the line being parsed */
	int errline; /* where msg was found */
	char msg[300];
	int (*entry)(void *, const char *, const char *, const char *, char *,
	             size_t);
	void *user;
};

static void first_error(struct conf_state *st, const char *msg)
{
	if (st->msg[0] != '\0')
		return;
	snprintf(st->msg, sizeof(st->msg), "%s", msg);
	st->errline = st->line;
}

static char *read_line(char *str, int num, void *stream)
{
	struct conf_state *st = stream;
	char *s = fgets(str, num, st->fp);
	size_t len;

	if (s == NULL)
		return NULL;
	st->line++;
	len = strlen(s);
	if (len + 1 >= (size_t)num && s[len - 1] != '\n' && !feof(st->fp)) {
		int c;

		first_error(st, "line too long");
		/* skip the rest, so that it is not read as lines of its own */
		while ((c = fgetc(st->fp)) != EOF && c != '\n')
			;
	} else if ((s[0] == ' ' || s[0] == '\t') &&
	           s[strspn(s, " \t\r\n")] != '\0' &&
	           strchr(";#", s[strspn(s, " \t")]) == NULL) {
		first_error(st, "indented line (keys and sections start in "
		                "the first column)");
	}
	return s;
}

static int on_entry(void *user, const char *section, const char *key,
                    const char *value)
{
	struct conf_state *st = user;
	char msg[300] = "";

	if (st->entry(st->user, section, key, value, msg, sizeof(msg)) == 0)
		return 1;
	first_error(st, msg[0] ? msg : "bad entry");
	return 0;
}

int tlspool_conf_parse(const char *path,
                       int (*entry)(void *user, const char *section,
                                    const char *key, const char *value,
                                    char *msg, size_t msglen),
                       void *user, char *err, size_t errlen)
{
	struct conf_state st;
	int line;

	memset(&st, 0, sizeof(st));
	st.entry = entry;
	st.user = user;
	st.fp = fopen(path, "r");
	if (st.fp == NULL) {
		int e = errno;

		tp_err(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	line = ini_parse_stream(read_line, &st, on_entry, &st);
	fclose(st.fp);
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
