/*
 * tlspool-authz-rules.so: the authorization plugin that ships with
 * tlspool (tlspool_authz(3)).  [authz] config names a file of rules
 *
 *     LOCAL REMOTE allow|deny     # comment
 *
 * read once when the plugin is initialised.  Each pattern is
 *     *               any identity, and none
 *     -               no identity (a client without myname, an anonymous peer)
 *     @example.test   any user@example.test
 *     .example.test   any domain below example.test (not example.test)
 *     NAME            exactly that domain or user@domain
 * compared case-insensitively.  The first rule whose two patterns match
 * decides; when none does the answer is "deny", so that the file lists
 * what is allowed.  A malformed line makes initialisation fail with the
 * file and line: a rules file that does not say what was meant must not
 * decide anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlspool/authz.h"

struct rule {
	char local[256], remote[256];
	int allow;
	unsigned line;
};

struct rules {
	char path[512];
	size_t n;
	struct rule *r;
};

static int pattern_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > 255)
		return 0;
	if (strcmp(p, "*") == 0 || strcmp(p, "-") == 0)
		return 1;
	if (p[0] == '@' || p[0] == '.')
		p++;
	if (*p == '\0' || *p == '.' || *p == '@' || strchr(p, '*') != NULL)
		return 0;
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

static int matches(const char *pat, const char *name)
{
	size_t np = strlen(pat), nn = strlen(name);
	const char *at;

	if (strcmp(pat, "*") == 0)
		return 1;
	if (strcmp(pat, "-") == 0)
		return name[0] == '\0';
	if (pat[0] == '@') {
		at = strrchr(name, '@');
		return at != NULL && at != name &&
		       strcasecmp(at + 1, pat + 1) == 0;
	}
	if (pat[0] == '.')
		return strchr(name, '@') == NULL && nn > np &&
		       strcasecmp(name + nn - np, pat) == 0;
	return name[0] != '\0' && strcasecmp(pat, name) == 0;
}

static int parse(struct rules *rs, FILE *fp, char *err, size_t errlen)
{
	char line[1024], *tok[4], *save, *p;
	struct rule *nr;
	unsigned lineno = 0;
	int n;

	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "%s:%u: line too long", rs->path,
			         lineno);
			return -1;
		}
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		n = 0;
		for (p = strtok_r(line, " \t\r\n", &save); p != NULL && n < 4;
		     p = strtok_r(NULL, " \t\r\n", &save))
			tok[n++] = p;
		if (n == 0)
			continue;
		if (n != 3) {
			snprintf(err, errlen,
			         "%s:%u: want \"LOCAL REMOTE "
			         "allow|deny\"",
			         rs->path, lineno);
			return -1;
		}
		if (!pattern_ok(tok[0]) || !pattern_ok(tok[1])) {
			snprintf(err, errlen, "%s:%u: bad pattern \"%s\"",
			         rs->path, lineno,
			         pattern_ok(tok[0]) ? tok[1] : tok[0]);
			return -1;
		}
		if (strcmp(tok[2], "allow") != 0 &&
		    strcmp(tok[2], "deny") != 0) {
			snprintf(err, errlen,
			         "%s:%u: \"%s\": want allow or deny", rs->path,
			         lineno, tok[2]);
			return -1;
		}
		nr = realloc(rs->r, (rs->n + 1) * sizeof(*rs->r));
		if (nr == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rs->r = nr;
		snprintf(rs->r[rs->n].local, sizeof(rs->r[0].local), "%s",
		         tok[0]);
		snprintf(rs->r[rs->n].remote, sizeof(rs->r[0].remote), "%s",
		         tok[1]);
		rs->r[rs->n].allow = tok[2][0] == 'a';
		rs->r[rs->n].line = lineno;
		rs->n++;
	}
	return 0;
}

int tlspool_authz_init(const char *config, void **state, char *err,
                       size_t errlen)
{
	struct rules *rs;
	FILE *fp;

	*state = NULL;
	if (config == NULL || config[0] == '\0') {
		snprintf(err, errlen,
		         "rules: [authz] config must name a rules file");
		return -1;
	}
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(rs->path, sizeof(rs->path), "%s", config);
	fp = fopen(config, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", config, strerror(errno));
		free(rs);
		return -1;
	}
	if (parse(rs, fp, err, errlen) != 0) {
		fclose(fp);
		tlspool_authz_fini(rs);
		return -1;
	}
	fclose(fp);
	*state = rs;
	return 0;
}

int tlspool_authz_decide(void *state, const tlspool_authz_request *req,
                         char *reason, size_t reasonlen)
{
	const struct rules *rs = state;
	const char *local = req->local ? req->local : "";
	const char *remote = req->remote ? req->remote : "";

	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->r[i];

		if (matches(r->local, local) && matches(r->remote, remote)) {
			snprintf(reason, reasonlen, "%s:%u: %s %s %s", rs->path,
			         r->line, r->local, r->remote,
			         r->allow ? "allow" : "deny");
			return r->allow ? TLSPOOL_AUTHZ_ALLOW
			                : TLSPOOL_AUTHZ_DENY;
		}
	}
	snprintf(reason, reasonlen, "%s: no rule for %s -> %s (deny)", rs->path,
	         local[0] ? local : "-", remote[0] ? remote : "-");
	return TLSPOOL_AUTHZ_DENY;
}

void tlspool_authz_fini(void *state)
{
	struct rules *rs = state;

	if (rs == NULL)
		return;
	free(rs->r);
	free(rs);
}
