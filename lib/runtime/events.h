/* events.h - wait lists and completion events for ops made of several
 * enqueues (events.c). */
#ifndef RETCL_RUNTIME_EVENTS_H
#define RETCL_RUNTIME_EVENTS_H

#include "retcl.h"

/* A marker that makes the queue wait for the caller's n events (none:
 * nothing enqueued). */
retcl_status retcl__wait_for(retcl_context *ctx, cl_uint n,
                             const cl_event *list);
/* The caller's event as a marker after everything enqueued so far (event
 * NULL: nothing enqueued). */
retcl_status retcl__signal_done(retcl_context *ctx, cl_event *event);

#endif
