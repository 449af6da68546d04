/*
 * Pacific time, as the Gemini API's daily quotas see it: a day ends at midnight in
 * America/Los_Angeles, with US daylight-saving rules (computed here: no TZ database, and
 * no setenv("TZ"), which is not thread-safe). Used by the relay's key pool and the simulator.
 */
#ifndef SKIFF_PACIFIC_H
#define SKIFF_PACIFIC_H

#include <stdint.h>

/* The Pacific UTC offset in seconds (-25200 in PDT, -28800 in PST) at a Unix time. */
int skiff_pacific_offset(int64_t unix_s);

/* The Pacific calendar day of a Unix time in ms, as days since 1970-01-01. */
int64_t skiff_pacific_day(int64_t now_ms);

/* The Unix time (ms) of the next midnight in America/Los_Angeles strictly after now_ms. */
int64_t skiff_pacific_next_midnight_ms(int64_t now_ms);

/* The Pacific date of now_ms as "YYYY-MM-DD" into out. */
void skiff_pacific_date(int64_t now_ms, char out[11]);

#endif
