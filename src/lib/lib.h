/*
 * Internal declarations of libtlspool.  Cross-file symbols carry the tp_
 * prefix and are not exported (see libtlspool.map).
 */
#ifndef TLSPOOL_LIB_H
#define TLSPOOL_LIB_H

#include "tlspool/starttls.h"
#include "tlspool/validate.h"

/* Record a failure for starttls_errstr(), set errno to err, return -1. */
int tp_fail(int err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* The same with a failure class other than the errno's default. */
int tp_failc(int err, starttls_class cls, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Change the class of the failure recorded last (keeping its text). */
void tp_set_class(starttls_class cls);
void tp_clear_error(void);

#endif
