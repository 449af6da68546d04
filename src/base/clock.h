/* Wall-clock time as the key pool, quotas and logs count it: Unix milliseconds. */
#ifndef SKIFF_CLOCK_H
#define SKIFF_CLOCK_H

#include <stdint.h>

/* Now, in Unix milliseconds (CLOCK_REALTIME: rests and quotas outlive the process). */
int64_t skiff_now_ms(void);

#endif
