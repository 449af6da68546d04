#include "gemini/pacific.h"

#include <stdio.h>
#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The year of a day count (the inverse of days_from_civil, year only). */
static int64_t
year_of_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return (int64_t)yoe + era * 400 + (m <= 2);
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int
weekday(int64_t days)
{
    return (int)(((days % 7) + 7 + 4) % 7);
}

/* The day of the n-th (1-based) Sunday of month m in year y. */
static int64_t
nth_sunday(int64_t y, unsigned m, int n)
{
    int64_t first = days_from_civil(y, m, 1);
    return first + (7 - weekday(first)) % 7 + 7 * (n - 1);
}

int
skiff_pacific_offset(int64_t unix_s)
{
    /*
     * US rules since 2007: daylight time from the second Sunday of March at 02:00 PST
     * (10:00 UTC) to the first Sunday of November at 02:00 PDT (09:00 UTC). The UTC year is
     * the Pacific year at both switches, which lie far from New Year.
     */
    int64_t y = year_of_days(floor_div(unix_s, 86400));
    int64_t start = nth_sunday(y, 3, 2) * 86400 + 10 * 3600;
    int64_t end = nth_sunday(y, 11, 1) * 86400 + 9 * 3600;
    return unix_s >= start && unix_s < end ? -7 * 3600 : -8 * 3600;
}

int64_t
skiff_pacific_day(int64_t now_ms)
{
    int64_t s = floor_div(now_ms, 1000);
    return floor_div(s + skiff_pacific_offset(s), 86400);
}

int64_t
skiff_pacific_next_midnight_ms(int64_t now_ms)
{
    int64_t s = floor_div(now_ms, 1000);
    int64_t local_midnight = (skiff_pacific_day(now_ms) + 1) * 86400;
    /*
     * The offset at the coming midnight may differ from now's when a switch lies between
     * (the switch days are 23 and 25 hours long); switches happen at 02:00, never at
     * midnight, so one correction settles it.
     */
    int64_t utc = local_midnight - skiff_pacific_offset(s);
    int off = skiff_pacific_offset(utc);
    utc = local_midnight - off;
    return utc * 1000;
}

void
skiff_pacific_date(int64_t now_ms, char out[11])
{
    /* civil_from_days (H. Hinnant), for the Pacific day. */
    int64_t z = skiff_pacific_day(now_ms) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
    char buf[32];
    snprintf(buf, sizeof buf, "%04d-%02u-%02u", (int)(y % 10000), m % 100, d % 100);
    memcpy(out, buf, 10);
    out[10] = '\0';
}
